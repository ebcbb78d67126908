"""Writing the audit trail. Callers are the domain's services, inside their own transaction."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditEvent


@dataclass(frozen=True)
class Actor:
    type: str  # "user" | "agent" | "system"
    id: str = ""
    label: str = ""


@dataclass(frozen=True)
class Where:
    channel: str  # "api" | "web" | "worker" | "cli"
    ip: str | None = None
    user_agent: str = ""


SYSTEM = Actor(type="system", label="acme")
WORKER = Where(channel="worker")


def event_hash(event: AuditEvent) -> str:
    body = {
        "tenant": event.tenant,
        "actor": [event.actor_type, event.actor_id, event.actor_label],
        "action": event.action,
        "subject": [event.subject_type, event.subject_id],
        "at": event.at.isoformat(),
        "where": [event.channel, event.ip or "", event.user_agent],
        "result": event.result,
        "data": event.data,
        "decision_id": event.decision_id,
        "args_hash": event.args_hash,
        "prev": event.prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lock_chain(tenant: str) -> None:
    # Appends to one tenant's chain are serialized so each row links to the row before it. SQLite needs
    # nothing: its writers are already serialized (IMMEDIATE transactions).
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ["audit:" + tenant])


def record(
    *,
    tenant: str,
    actor: Actor,
    action: str,
    where: Where,
    subject_type: str = "",
    subject_id: str = "",
    result: str = "ok",
    data: dict[str, Any] | None = None,
    decision_id: str = "",
    args_hash: str = "",
) -> AuditEvent:
    # No savepoint: callers record inside their own transaction, and the event lives or dies with it.
    with transaction.atomic(savepoint=False):
        _lock_chain(tenant)
        prev = AuditEvent.objects.filter(tenant=tenant).order_by("-id").values_list("hash", flat=True).first()
        event = AuditEvent(
            tenant=tenant,
            actor_type=actor.type,
            actor_id=str(actor.id),
            actor_label=actor.label[:150],
            action=action,
            subject_type=subject_type,
            subject_id=str(subject_id),
            at=timezone.now(),
            channel=where.channel,
            ip=where.ip or None,
            user_agent=(where.user_agent or "")[:256],
            result=result,
            data=data or {},
            decision_id=str(decision_id or ""),
            args_hash=args_hash,
            prev_hash=prev or "",
        )
        event.hash = event_hash(event)
        event.save(force_insert=True)
        return event


@dataclass(frozen=True)
class Break:
    event_id: int
    tenant: str
    reason: str


def verify(tenant: str | None = None, batch: int = 5000) -> Break | None:
    """Walk each tenant's chain in order; return the first broken link, or None."""
    tenants = [tenant] if tenant is not None else list(
        AuditEvent.objects.order_by().values_list("tenant", flat=True).distinct()
    )
    for slug in sorted(tenants):
        prev = ""
        for event in AuditEvent.objects.filter(tenant=slug).order_by("id").iterator(chunk_size=batch):
            if event.prev_hash != prev:
                return Break(event.id, slug, "prev_hash does not match the previous event (a row was removed or reordered)")
            if event_hash(event) != event.hash:
                return Break(event.id, slug, "content does not match its hash (the row was altered)")
            prev = event.hash
    return None
