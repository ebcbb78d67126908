"""Login is throttled per username + IP (reviewer and admin logins); bearer tokens are looked up by digest,
never compared raw."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from approvals.login_throttle import TOO_MANY_ATTEMPTS
from approvals.models import AgentCredential, UserToken

PASSWORD = "pw-12345678"  # conftest's make_party


def login(client: Client, username: str, password: str, url: str = "/accounts/login/") -> Any:
    return client.post(url, {"username": username, "password": password})


@pytest.fixture
def few_attempts(settings: Any) -> int:
    settings.ACME_LOGIN_MAX_FAILURES = 3
    settings.ACME_LOGIN_WINDOW = 60
    return 3


@pytest.mark.django_db
class TestReviewerLogin:
    def test_refuses_after_n_failures_even_with_the_right_password(self, acme, few_attempts):
        client = Client()
        for _ in range(few_attempts):
            assert (
                login(client, acme.reviewer.username, "wrong").status_code == 200
            )  # the form, with its error

        refused = login(client, acme.reviewer.username, PASSWORD)

        assert refused.status_code == 429
        assert TOO_MANY_ATTEMPTS.split(".")[0] in refused.content.decode()
        assert "_auth_user_id" not in client.session

    def test_below_the_limit_a_success_clears_the_count(self, acme, few_attempts):
        client = Client()
        for _ in range(few_attempts - 1):
            login(client, acme.reviewer.username, "wrong")
        assert login(client, acme.reviewer.username, PASSWORD).status_code == 302
        client.post("/accounts/logout/")
        for _ in range(few_attempts - 1):
            login(client, acme.reviewer.username, "wrong")

        assert login(client, acme.reviewer.username, PASSWORD).status_code == 302

    def test_the_count_is_per_username_and_ip(self, acme, globex, few_attempts):
        attacker = Client(REMOTE_ADDR="203.0.113.9")
        for _ in range(few_attempts):
            login(attacker, acme.reviewer.username, "wrong")

        assert login(attacker, acme.reviewer.username, PASSWORD).status_code == 429
        # The same person from their own address, and another person from the attacker's: unaffected.
        assert login(Client(REMOTE_ADDR="198.51.100.7"), acme.reviewer.username, PASSWORD).status_code == 302
        assert login(attacker, globex.reviewer.username, PASSWORD).status_code == 302

    def test_the_window_ends(self, acme, few_attempts):
        from adapters.redis import get_redis
        from approvals.login_throttle import _key

        client = Client()
        for _ in range(few_attempts):
            login(client, acme.reviewer.username, "wrong")
        get_redis().expire(_key(acme.reviewer.username, "127.0.0.1"), 0)  # the window has passed

        assert login(client, acme.reviewer.username, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_admin_login_is_throttled_too(few_attempts):
    get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    client = Client()
    for _ in range(few_attempts):
        login(client, "root", "wrong", url="/admin/login/")

    refused = login(client, "root", PASSWORD, url="/admin/login/")

    assert TOO_MANY_ATTEMPTS.split(".")[0] in refused.content.decode()
    assert client.get("/admin/").status_code == 302  # not logged in


@pytest.mark.django_db
class TestBearerTokens:
    def test_the_lookup_sends_only_the_digest_to_the_database(self, acme):
        for token in (acme.agent_token, acme.reviewer_token, "agt_" + "x" * 43):
            with CaptureQueriesContext(connection) as queries:
                APIClient(HTTP_AUTHORIZATION=f"Bearer {token}").get("/api/v1/proposals/")
            sql = "\n".join(q["sql"] for q in queries.captured_queries)

            assert token not in sql  # the raw secret is never part of a query (hence of any comparison)
            assert hashlib.sha256(token.encode()).hexdigest() in sql

    def test_no_raw_token_is_stored(self, acme):
        stored = [
            *AgentCredential.objects.values_list(flat=False),
            *UserToken.objects.values_list(flat=False),
        ]

        for token in (acme.agent_token, acme.reviewer_token, acme.requester_token):
            assert all(token not in str(value) for row in stored for value in row)

    def test_the_digest_column_is_a_unique_index(self):
        for model in (AgentCredential, UserToken):
            assert model._meta.get_field("token_hash").unique
