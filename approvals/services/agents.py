"""An agent's own settings, changed by the agent: today its webhook URL (``PUT``/``DELETE /api/v1/webhook/``).

The change and its audit event are written in one transaction, as every other change (django-auditlog sees
the row change too, but the tamper-evident trail is what says who changed where events go).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.db import transaction

from approvals.models import AgentCredential
from approvals.services.base import agent_actor
from audit import services as audit
from audit.services import Where


def _origin(url: str) -> str:
    """Where a callback goes (scheme and host), not its path or query: a callback URL often carries its own
    secret there, and the trail is read by more people than the agent's owner."""
    if not url:
        return ""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


@transaction.atomic
def agent_webhook_set(*, agent: AgentCredential, url: str, where: Where) -> AgentCredential:
    """Set (or, with ``url=""``, remove) the agent's callback URL, already checked by the caller
    (``webhooks.check_callback_url``), and audit it as ``agent.webhook_set`` / ``agent.webhook_removed``."""
    locked = AgentCredential.objects.select_for_update(of=("self",)).select_related("tenant").get(pk=agent.pk)
    previous = locked.webhook_url
    locked.webhook_url = url
    locked.save(update_fields=["webhook_url"])
    agent.webhook_url = url
    audit.record(
        tenant=locked.tenant.slug,
        actor=agent_actor(locked),
        action="agent.webhook_set" if url else "agent.webhook_removed",
        where=where,
        subject_type="agent",
        subject_id=str(locked.pk),
        data={"origin": _origin(url), "previous_origin": _origin(previous)},
    )
    return agent
