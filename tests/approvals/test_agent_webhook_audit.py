"""The agent's webhook URL is changed through a service that writes the audit event (not a bare save)."""

from __future__ import annotations

from typing import Any

import pytest

from approvals.models import AgentCredential
from audit.models import AuditEvent
from audit.services import verify

HOOK = "https://hooks.example.com/acme/secret-path?token=abc"


@pytest.fixture(autouse=True)
def _public_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    # The callback check resolves the host; hooks.example.com is taken as public here.
    monkeypatch.setattr("approvals.webhooks.check_callback_url", lambda url: url)


@pytest.mark.django_db
def test_setting_and_removing_the_webhook_are_audited(acme: Any) -> None:
    put = acme.agent_client.put("/api/v1/webhook/", {"url": HOOK}, format="json")
    delete = acme.agent_client.delete("/api/v1/webhook/")

    assert put.status_code == 200 and delete.status_code == 204
    assert AgentCredential.objects.get(pk=acme.agent.pk).webhook_url == ""
    events = list(
        AuditEvent.objects.filter(
            subject_type="agent", subject_id=str(acme.agent.pk), action__startswith="agent.webhook"
        ).order_by("id")
    )
    assert [e.action for e in events] == ["agent.webhook_set", "agent.webhook_removed"]
    assert all(e.actor_type == "agent" and e.actor_id == str(acme.agent.pk) for e in events)
    assert all(e.channel == "api" and e.tenant == acme.tenant.slug for e in events)
    # Where events go, not the path or query a callback URL may carry its own secret in.
    assert events[0].data == {"origin": "https://hooks.example.com", "previous_origin": ""}
    assert events[1].data == {"origin": "", "previous_origin": "https://hooks.example.com"}
    assert verify() is None
