"""What is sent: a proposal's event becomes a ``WebhookDelivery`` row with its payload (the decision, the
args, the receipt), staged in the outbox inside the transaction that changed the proposal."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from approvals import outbox
from approvals.models import OutboxMessage, Proposal, Receipt, WebhookDelivery

EVENTS = ("proposal.decided", "proposal.committed", "proposal.failed", "proposal.expired", "proposal.stale")


def stage(proposal: Proposal, event: str) -> WebhookDelivery | None:
    """Call inside the transaction that changed the proposal."""
    agent = proposal.agent
    if not agent.webhook_url:
        return None
    payload = {
        "event": event,
        "proposal": {
            "id": str(proposal.pk),
            "tenant": proposal.tenant.slug,
            "tool": proposal.tool,
            "status": proposal.status,
            "status_reason": proposal.status_reason,
            "args_hash": proposal.args_hash,
            # What an agent needs to act without fetching again: the decision (a rejection's reason, the
            # reviewer's edits), the args that will be (or were) sent, and the receipt once committed.
            "args": proposal.args,
            "decision": _decision(proposal),
            "receipt": _receipt(proposal),
        },
        "occurred_at": timezone.now().isoformat(),
    }
    delivery = WebhookDelivery.objects.create(
        agent=agent, event=event, payload=payload, url=agent.webhook_url
    )
    delivery.payload["id"] = str(delivery.pk)
    delivery.save(update_fields=["payload"])
    outbox.stage(OutboxMessage.Kind.WEBHOOK, {"delivery_id": str(delivery.pk)})
    return delivery


def _decision(proposal: Proposal) -> dict[str, Any] | None:
    """The latest decision as the API shows it, with the reviewer's edits (field, before, after)."""
    decision = proposal.decisions.select_related("reviewer").order_by("-at", "-pk").first()
    if decision is None:
        return None
    return {
        "verdict": decision.verdict,
        "by": decision.reviewer.get_username(),
        "at": decision.at.isoformat(),
        "reason": decision.reason,
        "edits": decision.edited_from or [],
    }


def _receipt(proposal: Proposal) -> dict[str, Any] | None:
    receipt = Receipt.objects.filter(proposal=proposal).first()
    if receipt is None:
        return None
    return {
        "system": receipt.system,
        "external_id": receipt.external_id,
        "external_url": receipt.external_url,
        "committed_at": receipt.committed_at.isoformat(),
        "attempts": receipt.attempts,
    }
