"""Writing the audit trail. Callers are the domain's services, inside their own transaction."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec

from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditEvent

P = ParamSpec("P")


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


def transaction_lock(name: str) -> None:
    """A lock on ``name`` held until the current transaction ends (a PostgreSQL advisory lock). SQLite
    needs none: its writers are already serialized (IMMEDIATE transactions)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])


def _lock_chain(tenant: str) -> str:
    """Take the tenant's chain lock and return the hash at the head of its chain ("" for a new chain).

    Appends to one tenant's chain are serialized so each row links to the row before it; the head is read
    in a statement of its own *after* the lock is granted, so its snapshot sees the previous holder's row.
    Plain SQL: these statements run on every state change, and the ORM would spend more time compiling
    them than the database spends running them."""
    transaction_lock("audit:" + tenant)
    with connection.cursor() as cursor:
        cursor.execute("SELECT hash FROM audit_auditevent WHERE tenant = %s ORDER BY id DESC LIMIT 1", [tenant])
        row = cursor.fetchone()
    return row[0] if row else ""


def event(
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
    """An event not yet in the chain: hand it to ``append``."""
    return AuditEvent(
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
    )


def append(*events: AuditEvent) -> list[AuditEvent]:
    """Link events of one tenant to its chain, in order, and insert them (one lock, one head read, one
    INSERT for all of them). Callers append inside their own transaction: the events live or die with it."""
    tenants = {e.tenant for e in events}
    if len(tenants) != 1:
        raise ValueError("append() takes the events of exactly one tenant")
    with transaction.atomic(savepoint=False):
        prev = _lock_chain(tenants.pop())
        for e in events:
            e.prev_hash = prev
            e.hash = prev = event_hash(e)
        if len(events) == 1:
            events[0].save(force_insert=True)
        else:
            AuditEvent.objects.bulk_create(events)
    return list(events)


def _appending_one(make: Callable[P, AuditEvent]) -> Callable[P, AuditEvent]:
    def record(*args: P.args, **kwargs: P.kwargs) -> AuditEvent:
        """Append one event (the fields of ``event``)."""
        return append(make(*args, **kwargs))[0]

    return record


record = _appending_one(event)


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
