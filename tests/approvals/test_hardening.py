"""Hostile input at the API: a clear 4xx in the contract's error shape, never a 500, never a partial write."""

from __future__ import annotations

import logging

import pytest

from approvals.models import Proposal

URL = "/api/v1/proposals/"


def post_raw(party, body, content_type="application/json"):
    return party.agent_client.generic("POST", URL, body, content_type=content_type)


def assert_error_shape(response, status):
    assert response.status_code == status, response.content
    body = response.json()
    assert isinstance(body.get("error"), str) and isinstance(body.get("detail"), str)


@pytest.mark.django_db
class TestHostileBodies:
    def test_oversized_body_is_413(self, acme, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
        body = '{"tool": "crm.create_ticket", "args": {"subject": "' + "x" * 20_000 + '"}}'

        assert_error_shape(post_raw(acme, body), 413)
        assert Proposal.objects.count() == 0

    def test_deeply_nested_json_is_400(self, acme):
        body = '{"tool": "crm.create_ticket", "args": ' + "[" * 100_000 + "]" * 100_000 + "}"

        assert_error_shape(post_raw(acme, body), 400)

    def test_moderately_nested_json_is_400_not_a_crash(self, acme):
        body = '{"tool": "crm.create_ticket", "args": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}"

        assert_error_shape(post_raw(acme, body), 400)

    def test_duplicate_keys_are_refused(self, acme):
        body = '{"tool": "slack.post_message", "tool": "crm.create_ticket", "args": {}}'

        response = post_raw(acme, body)

        assert_error_shape(response, 400)
        assert "Duplicate key" in response.json()["detail"]

    def test_invalid_utf8_is_400(self, acme):
        assert_error_shape(post_raw(acme, b'{"tool": "\xff\xfe"}'), 400)

    def test_nan_is_400(self, acme):
        assert_error_shape(post_raw(acme, '{"tool": "crm.create_ticket", "args": {"x": NaN}}'), 400)

    @pytest.mark.parametrize(
        "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
    )
    def test_wrong_content_type_is_415(self, acme, content_type):
        assert_error_shape(post_raw(acme, "tool=crm.create_ticket", content_type=content_type), 415)

    def test_body_must_be_an_object(self, acme):
        for body in ("[]", "1", '"x"', "null"):
            assert_error_shape(post_raw(acme, body), 400)

    @pytest.mark.parametrize("field", ["tool", "rationale", "on_behalf_of"])
    def test_huge_strings_in_request_fields(self, acme, field):
        body = {
            "tool": "crm.create_ticket",
            "args": {"subject": "s", "description": "d"},
            field: "x" * 100_000,
        }

        response = acme.agent_client.post(URL, body, format="json")

        assert_error_shape(response, 400)
        assert response.json()["errors"][0]["loc"][0] == field
        assert Proposal.objects.count() == 0

    @pytest.mark.parametrize("field", ["subject", "description", "customer_email", "priority"])
    def test_huge_strings_in_every_arg(self, acme, field):
        args = {"subject": "s", "description": "d", "priority": "low", field: "x" * 100_000}

        response = acme.agent_client.post(URL, {"tool": "crm.create_ticket", "args": args}, format="json")

        assert_error_shape(response, 400)
        assert any(e["loc"][-1] == field for e in response.json()["errors"])

    def test_huge_idempotency_key(self, acme):
        response = acme.agent_client.post(
            URL,
            {"tool": "crm.create_ticket", "args": {"subject": "s", "description": "d"}},
            format="json",
            HTTP_IDEMPOTENCY_KEY="k" * 10_000,
        )

        assert_error_shape(response, 400)

    def test_inbound_webhook_oversized(self, acme, client, settings):
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

        response = client.post(
            "/api/v1/webhooks/crm/?tenant=acme", "x" * 5000, content_type="application/json"
        )

        assert_error_shape(response, 413)

    def test_no_token_or_pii_in_logs_on_errors(self, acme, caplog):
        caplog.set_level(logging.DEBUG)
        secret_email = "very.private.person@example.com"
        acme.agent_client.post(
            URL,
            {"tool": "crm.create_ticket", "args": {"subject": 5, "customer_email": secret_email}},
            format="json",
        )
        acme.client(acme.agent_token + "x").get(URL)

        handler = logging.getLogger().handlers[0]
        rendered = "\n".join(handler.format(r) for r in caplog.records if handler.filter(r))
        assert "Bad Request" in rendered and "Unauthorized" in rendered  # the errors were logged...
        assert acme.agent_token not in rendered  # ...without the token or the PII
        assert secret_email not in rendered
