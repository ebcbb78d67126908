"""A proposal's events in the audit trail: what each one records of the proposal.

django-auditlog keeps no field history of proposals, decisions and receipts: the hash-chained trail is their
history. ``proposal_event`` builds the event of anything that happens to a proposal (its tool, status and
``status_reason``, and the fields that change saved); ``receipt_data`` is a receipt as its
``proposal.committed`` event records it. ``approvals.lifecycle.transition`` and the services append them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import models

from approvals.models import Decision, Proposal, Receipt
from audit import services as audit
from audit.models import AuditEvent
from audit.services import Actor, Where

# What the audit trail keeps of a proposal's own fields (django-auditlog no longer keeps a field history of
# proposals, decisions and receipts: the trail is their history). Every event of a proposal says its status and
# ``status_reason``; the fields a change saved are in ``data["fields"]``, except the args (the events that
# set them carry them: ``args``, ``edits``), the preview (derived from the args), the ``args_hash`` (the
# event's own column) and the lease's bookkeeping (``lease_until``, ``next_attempt_at``: timers, not facts).
NOT_IN_TRAIL = frozenset({"args", "preview", "args_hash", "lease_until", "next_attempt_at", "updated_at"})
# The fields of a new proposal that its ``proposal.submitted`` event records (beside args, tool and status).
SUBMITTED_FIELDS = (
    "risk",
    "rationale",
    "idempotency_key",
    "expires_at",
    "on_behalf_of",
    "submitted_args_hash",
    "approvals_required",
    "review_group",
    "approval_rule",
    "assignee",
)


def _field_values(proposal: Proposal, names: Sequence[str]) -> dict[str, Any]:
    """``names``' values on ``proposal`` as the trail stores them: a related row by its key, a time in ISO
    8601."""
    values: dict[str, Any] = {}
    for name in names:
        if name in NOT_IN_TRAIL or name in ("status", "status_reason"):
            continue
        field = Proposal._meta.get_field(name)
        value = getattr(proposal, field.attname if isinstance(field, models.Field) else name)
        values[name] = value.isoformat() if isinstance(value, datetime) else value
    return values


def receipt_data(receipt: Receipt) -> dict[str, Any]:
    """A receipt as the ``proposal.committed`` event records it: every field of the row."""
    return {
        "system": receipt.system,
        "external_id": receipt.external_id,
        "external_url": receipt.external_url,
        "attempts": receipt.attempts,
        "args_hash": receipt.args_hash,
        "response_summary": receipt.response_summary,
    }


def proposal_event(
    proposal: Proposal,
    *,
    actor: Actor,
    action: str,
    where: Where,
    result: str = "ok",
    data: dict[str, Any] | None = None,
    decision: Decision | None = None,
    fields: Sequence[str] = (),
) -> AuditEvent:
    """The audit event of something that happened to ``proposal``: its tool, current status and
    ``status_reason`` included, and the values of ``fields`` (the fields this change saved) in
    ``data["fields"]``."""
    saved = _field_values(proposal, fields)
    return audit.event(
        tenant=proposal.tenant.slug,
        actor=actor,
        action=action,
        where=where,
        subject_type="proposal",
        subject_id=str(proposal.pk),
        result=result,
        data={
            "tool": proposal.tool,
            "status": proposal.status,
            "status_reason": proposal.status_reason,
            **({"fields": saved} if saved else {}),
            **(data or {}),
        },
        decision_id=str(decision.pk) if decision else "",
        args_hash=proposal.args_hash,
    )
