"""The client's address: X-Forwarded-For is believed only through the proxies of ACME_TRUSTED_PROXIES, for
the login throttle, the audit trail, the decision and django-auditlog's entries alike."""

from __future__ import annotations

import json
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from approvals.models import Decision
from audit.models import AuditEvent
from audit.where import client_ip

PASSWORD = "pw-12345678"  # conftest's make_party
PROXY = "10.0.0.1"
ALICE, BOB, FORGED = "203.0.113.5", "198.51.100.9", "192.0.2.66"
TICKET = {"tool": "crm.create_ticket", "args": {"subject": "s", "description": "d"}}


@pytest.fixture
def few_attempts(settings: Any) -> int:
    settings.ACME_LOGIN_MAX_FAILURES = 3
    settings.ACME_LOGIN_WINDOW = 60
    return 3


@pytest.fixture
def behind_proxy(settings: Any) -> None:
    settings.ACME_TRUSTED_PROXIES = [PROXY]


def through_proxy(client_address: str) -> Client:
    """A browser whose requests reach us through the TLS proxy (the peer is the proxy)."""
    return Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=client_address)


def login(client: Client, username: str, password: str) -> Any:
    return client.post("/accounts/login/", {"username": username, "password": password})


def _ip(remote: str, forwarded: str | None = None) -> str | None:
    request = RequestFactory().get("/", REMOTE_ADDR=remote)
    if forwarded is not None:
        request.META["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_ip(request)


@pytest.mark.django_db
def test_behind_the_trusted_proxy_two_clients_are_throttled_separately(acme, behind_proxy, few_attempts):
    alice, bob = through_proxy(ALICE), through_proxy(BOB)
    for _ in range(few_attempts):
        assert login(alice, acme.reviewer.username, "wrong").status_code == 200

    # then: the guesser is refused, the person behind the same proxy is not
    assert login(alice, acme.reviewer.username, PASSWORD).status_code == 429
    assert login(bob, acme.reviewer.username, PASSWORD).status_code == 302


@pytest.mark.django_db
def test_without_trusted_proxies_a_forged_forwarded_for_does_not_escape_the_throttle(acme, few_attempts):
    for n in range(few_attempts):
        attacker = Client(REMOTE_ADDR=ALICE, HTTP_X_FORWARDED_FOR=f"192.0.2.{n + 1}")
        assert login(attacker, acme.reviewer.username, "wrong").status_code == 200

    again = Client(REMOTE_ADDR=ALICE, HTTP_X_FORWARDED_FOR="192.0.2.99")
    assert login(again, acme.reviewer.username, PASSWORD).status_code == 429


@pytest.mark.django_db
def test_behind_the_trusted_proxy_the_audit_trail_and_the_decision_carry_the_clients_address(
    acme, behind_proxy
):
    agent = APIClient(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=f"{FORGED}, {ALICE}")
    agent.credentials(HTTP_AUTHORIZATION=f"Bearer {acme.agent_token}")
    reviewer = APIClient(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=BOB)
    reviewer.credentials(HTTP_AUTHORIZATION=f"Bearer {acme.reviewer_token}")

    pid = agent.post("/api/v1/proposals/", TICKET, format="json").json()["id"]
    assert (
        reviewer.post(f"/api/v1/proposals/{pid}/reject/", {"reason": "no"}, format="json").status_code == 200
    )

    events = AuditEvent.objects.filter(subject_id=pid).order_by("id")
    # The agent's hop left of its own address was written by the agent: not believed.
    assert [(e.action, e.ip) for e in events] == [("proposal.submitted", ALICE), ("proposal.rejected", BOB)]
    assert Decision.objects.get(proposal_id=pid).ip == BOB


@pytest.mark.django_db
def test_without_trusted_proxies_the_audit_trail_ignores_a_forged_forwarded_for(acme):
    agent = APIClient(REMOTE_ADDR=ALICE, HTTP_X_FORWARDED_FOR=FORGED)
    agent.credentials(HTTP_AUTHORIZATION=f"Bearer {acme.agent_token}")

    pid = agent.post("/api/v1/proposals/", TICKET, format="json").json()["id"]

    assert AuditEvent.objects.get(subject_id=pid, action="proposal.submitted").ip == ALICE


@pytest.mark.django_db
def test_django_auditlog_entries_ignore_a_forged_forwarded_for(acme):
    admin = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    browser = Client(REMOTE_ADDR=ALICE, HTTP_X_FORWARDED_FOR=FORGED)
    browser.force_login(admin)

    response = browser.post(
        f"/admin/approvals/tenant/{acme.tenant.pk}/change/", {"slug": "acme", "name": "ACME"}
    )

    assert response.status_code == 302
    entry = LogEntry.objects.get_for_object(acme.tenant).filter(action=LogEntry.Action.UPDATE).get()
    assert entry.remote_addr == ALICE


def test_a_client_connecting_directly_cannot_pose_as_the_proxy(behind_proxy):
    # Not from the proxy: the header is the client's own words, whatever it names.
    assert _ip(ALICE, f"{FORGED}, {PROXY}") == ALICE


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "expected"),
    [
        ([], PROXY, ALICE, PROXY),  # unset: no header is read
        ([PROXY], PROXY, None, PROXY),  # from the proxy without a header: the proxy is all we know
        ([PROXY], PROXY, f"{FORGED}, {ALICE}", ALICE),  # the rightmost hop the proxy saw
        (["10.0.0.0/8"], "10.1.2.3", f"{FORGED}, {ALICE}, 10.9.9.9", ALICE),  # CIDR, a chain of proxies
        (["10.0.0.0/8"], "10.1.2.3", "10.2.2.2, 10.9.9.9", "10.2.2.2"),  # only proxies: the leftmost
        (["fd00::/8"], "fd00::1", "[2001:db8::7]:4711", "2001:db8::7"),  # IPv6, bracketed with a port
        (["::ffff:10.0.0.0/104"], PROXY, ALICE, ALICE),  # an IPv4-mapped range matches the IPv4 peer
        ([PROXY], PROXY, f"{ALICE}, not-an-ip", PROXY),  # a malformed header is not believed at all
        ([PROXY], f"::ffff:{ALICE}", FORGED, ALICE),  # a mapped peer, normalized; not the proxy
    ],
)
def test_client_ip(settings, trusted, remote, forwarded, expected):
    settings.ACME_TRUSTED_PROXIES = trusted
    assert _ip(remote, forwarded) == expected


def test_a_bad_proxy_entry_fails_loudly(settings):
    settings.ACME_TRUSTED_PROXIES = ["10.0.0.1", "proxy.internal"]
    with pytest.raises(ImproperlyConfigured, match=r"proxy\.internal"):
        _ip(PROXY, ALICE)


@pytest.mark.django_db
def test_the_admins_connection_and_revocation_records_carry_the_clients_address(acme, behind_proxy):
    """The admin's own audited services (a connection set, an agent revoked) take the address as the rest do."""
    root = get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)
    browser = through_proxy(ALICE)
    browser.force_login(root)

    added = browser.post(
        "/admin/adapters/connection/add/",
        {
            "tenant": acme.tenant.slug,
            "system": "slack",
            "base_url": "https://slack.example.test/api",
            "review_channel": "",
            "token": "xoxb-t",
            "signing_secret": "",
        },
    )
    assert added.status_code == 302
    agent = acme.agent
    revoked = browser.post(
        f"/admin/approvals/agentcredential/{agent.pk}/change/",
        {"tenant": acme.tenant.pk, "name": agent.name, "allowed_tools": json.dumps(agent.allowed_tools)},
    )
    assert revoked.status_code == 302

    events = AuditEvent.objects.filter(action__in=["connection.set", "agent.deactivated"])
    assert sorted((e.action, e.ip) for e in events) == [
        ("agent.deactivated", ALICE),
        ("connection.set", ALICE),
    ]
