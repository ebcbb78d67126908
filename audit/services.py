"""Writing the audit trail. Callers are the domain's services, inside their own transaction."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ParamSpec

from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditEvent
from audit.prepared_writes import PreparedInsert

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


# The gateway's own processes (the worker, commands): labelled as such, never a name a tenant could have.
SYSTEM = Actor(type="system", label="gateway (system)")
WORKER = Where(channel="worker")


def _stored_text(value: str) -> str:
    """A string as PostgreSQL stores it: jsonb and text refuse NUL, and a lone surrogate is no UTF-8."""
    return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def _stored_number(value: float) -> Any:
    """A float as jsonb stores it and reads back: jsonb keeps the decimal value Python's repr writes, without
    an exponent, so ``1e16`` comes back as the integer ``10000000000000000`` (and ``1.5e-07`` as the same
    float); ``-0.0`` as ``0.0``; NaN and infinities, which JSON has not, as their name."""
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return 0.0
    text = repr(value)
    if "e+" in text:  # no fractional digits left once the exponent is applied: an integer to jsonb
        return int(Decimal(text))
    return value


def _stored_key(key: Any) -> str:
    """A dict key as JSON writes it (json.dumps's rules: ``True`` -> ``"true"``, ``1.5`` -> ``"1.5"``)."""
    if isinstance(key, str):
        return _stored_text(key)
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)
    return _stored_text(str(key))


def stored_json(value: Any) -> Any:
    """``value`` as it reads back from a JSON column, on PostgreSQL (jsonb) and SQLite alike: JSON types only
    (tuples become lists, keys strings, anything else its ``str()``), numbers and strings as jsonb keeps
    them. An event's ``data`` is this, so its hash is over exactly what is stored and ``verify`` recomputes
    the same hash from the row it reads."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return _stored_number(value)
    if isinstance(value, str):
        return _stored_text(value)
    if isinstance(value, dict):
        # A later duplicate key wins, as in jsonb.
        return {_stored_key(k): stored_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [stored_json(v) for v in value]
    return _stored_text(str(value))


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
        cursor.execute(
            "SELECT hash FROM audit_auditevent WHERE tenant = %s ORDER BY id DESC LIMIT 1", [tenant]
        )
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
    # Every field as the database will store it (see stored_json), so the hash append() computes is the one
    # verify() recomputes from the row: a value an agent chose cannot make the intact record look tampered.
    return AuditEvent(
        tenant=_stored_text(tenant),
        actor_type=_stored_text(actor.type),
        actor_id=_stored_text(str(actor.id)),
        actor_label=_stored_text(actor.label[:150]),
        action=_stored_text(action),
        subject_type=_stored_text(subject_type),
        subject_id=_stored_text(str(subject_id)),
        at=timezone.now(),
        channel=_stored_text(where.channel),
        ip=_stored_ip(where.ip),
        user_agent=_stored_text((where.user_agent or "")[:256]),
        result=_stored_text(result),
        data=stored_json(data or {}),
        decision_id=_stored_text(str(decision_id or "")),
        args_hash=_stored_text(args_hash),
    )


def _stored_ip(ip: str | None) -> str | None:
    """An address as the database keeps it (PostgreSQL's inet writes IPv6 in its compressed lower-case form)."""
    if not ip:
        return None
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        return None


_INSERT_EVENT = PreparedInsert(AuditEvent)  # compiled once per thread: every write appends an event


def append(*events: AuditEvent) -> list[AuditEvent]:
    """Link events of one tenant to its chain, in order, and insert them (one lock and one head read for all
    of them). Callers append inside their own transaction: the events live or die with it."""
    tenants = {e.tenant for e in events}
    if len(tenants) != 1:
        raise ValueError("append() takes the events of exactly one tenant")
    with transaction.atomic(savepoint=False):
        prev = _lock_chain(tenants.pop())
        for e in events:
            e.prev_hash = prev
            e.hash = prev = event_hash(e)
        if len(events) <= 4:  # one compiled INSERT each: cheaper than compiling a bulk one for a few
            for e in events:
                _INSERT_EVENT.insert(e)
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


@dataclass
class ChainReport:
    """One tenant's chain, walked to its end: how many events were expected (counted before the walk) and
    found, and every broken link."""

    tenant: str
    expected: int = 0
    checked: int = 0
    breaks: list[Break] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.breaks and self.checked == self.expected


BROKEN_LINK = "prev_hash does not match the previous event (a row was removed or reordered)"
ALTERED = "content does not match its hash (the row was altered)"


def verify_chains(tenant: str | None = None, batch: int = 5000) -> list[ChainReport]:
    """Walk every tenant's chain (or ``tenant``'s) to its end and report every break, not only the first: a
    row altered early must not hide a later one, nor one tenant's break another tenant's."""
    tenants = (
        [tenant]
        if tenant is not None
        else list(AuditEvent.objects.order_by().values_list("tenant", flat=True).distinct())
    )
    reports = []
    for slug in sorted(tenants):
        # The chain as it stood when the walk began: rows appended meanwhile are the next walk's.
        rows = AuditEvent.objects.filter(tenant=slug)
        last = rows.order_by("-id").values_list("id", flat=True).first()
        rows = rows.filter(id__lte=last or 0)
        report = ChainReport(tenant=slug, expected=rows.count())
        prev = ""
        for event in rows.order_by("id").iterator(chunk_size=batch):
            report.checked += 1
            if event.prev_hash != prev:
                report.breaks.append(Break(event.id, slug, BROKEN_LINK))
            if event_hash(event) != event.hash:
                report.breaks.append(Break(event.id, slug, ALTERED))
            # Go on from the row as it is: each later row is judged against its own predecessor.
            prev = event.hash
        reports.append(report)
    return reports


def verify(tenant: str | None = None, batch: int = 5000) -> Break | None:
    """The first broken link of every tenant's chain (or ``tenant``'s), or None. ``verify_chains`` has all."""
    for report in verify_chains(tenant, batch):
        if report.breaks:
            return report.breaks[0]
    return None
