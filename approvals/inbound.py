"""Signed events from the CRM (the inbound half of ``approvals.webhooks``, which re-exports these names).

Inbound: ``POST /api/v1/webhooks/crm/?tenant=<slug>`` verifies Zendesk's webhook signature
(base64 HMAC-SHA256 over timestamp + body, headers ``X-Zendesk-Webhook-Signature`` and
``X-Zendesk-Webhook-Signature-Timestamp``) with that tenant's secret, refuses stale or malformed timestamps,
checks the event is bound to that tenant, and records each event id once across all tenants.

The tenant is bound into what is verified in one of two ways. A tenant whose CRM connection has its own
signing secret (``set_connection --signing-secret``; no two tenants may have the same one) is bound by the
key: an event signed for another tenant does not verify. A tenant without one shares ``CRM_WEBHOOK_SECRET``
with the others, so the signed body itself must name it: ``"tenant": "<slug>"``. Either way a body that
names another tenant is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from adapters import connections
from approvals.models import (
    InboundEvent,
    Tenant,
)
from audit import services as audit

logger = logging.getLogger(__name__)

TOLERANCE = 300  # seconds a signed timestamp stays acceptable, both ways


# --- the CRM's events -------------------------------------------------------------------------------------------


class BadSignature(Exception):
    pass


class ForeignEvent(Exception):
    """The event id is already recorded for another tenant: refused, recorded nowhere."""


NOT_BOUND = 'The event is not bound to this tenant: the signed body must name it ("tenant": "<slug>").'
NAMES_ANOTHER = "The signed event names another tenant."
FOREIGN_EVENT = "This event id was already received for another tenant; it is not recorded here."
# Unix seconds, digits only. ``float()`` would also take "nan" (outside no window at all: a signature that
# never expires), "inf", "1e9" and "-5".
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")


def zendesk_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def _parse_timestamp(value: str) -> float:
    """Unix seconds, or an ISO 8601 date-time with its offset (Zendesk's "2026-01-02T03:04:05Z");
    anything else is a ValueError."""
    if _UNIX_SECONDS.fullmatch(value):
        return float(value)
    if not value[:4].isdigit():
        raise ValueError(value)
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if when.tzinfo is None:  # a local time of unknown zone: its window cannot be checked
        raise ValueError(value)
    return when.timestamp()


@dataclass(frozen=True)
class InboundKey:
    """The secret a tenant's CRM events are signed with, and whether that secret alone binds the tenant."""

    secret: str
    bound_by_key: bool


def inbound_key(tenant_slug: str) -> InboundKey:
    conn = connections.resolve(tenant_slug, "crm")
    return InboundKey(secret=conn.signing_secret(), bound_by_key=conn.own_signing_secret)


def check_bound(*, key: InboundKey, tenant_slug: str, payload: dict[str, Any]) -> None:
    """Raise BadSignature unless the verified event is this tenant's (see the module docstring)."""
    named = payload.get("tenant")
    if named is not None and named != tenant_slug:
        raise BadSignature(NAMES_ANOTHER)
    if not key.bound_by_key and named != tenant_slug:
        raise BadSignature(NOT_BOUND)


def verify_inbound(
    *, secret: str, signature: str, timestamp: str, body: bytes, now: float | None = None
) -> None:
    if not signature or not timestamp:
        raise BadSignature("Missing X-Zendesk-Webhook-Signature or X-Zendesk-Webhook-Signature-Timestamp.")
    try:
        sent_at = _parse_timestamp(timestamp)
    except ValueError:
        raise BadSignature(
            "The signature timestamp is neither Unix seconds nor an ISO 8601 date-time."
        ) from None
    if abs((now or time.time()) - sent_at) > TOLERANCE:
        raise BadSignature("The signature timestamp is outside the accepted window.")
    if not hmac.compare_digest(zendesk_signature(secret, timestamp, body), signature):
        raise BadSignature("The signature does not match.")


def inbound_record(
    *, tenant: Tenant, source: str, payload: dict[str, Any], where: audit.Where
) -> tuple[InboundEvent, bool]:
    event_id = str(payload.get("id") or "")[:128]
    try:
        with transaction.atomic():
            event = InboundEvent.objects.create(
                tenant=tenant,
                source=source,
                event_id=event_id,
                type=str(payload.get("type") or "")[:64],
                payload=payload,
            )
            audit.record(
                tenant=tenant.slug,
                actor=audit.Actor(type="system", label=source),
                action="inbound.received",
                where=where,
                subject_type="inbound_event",
                subject_id=str(event.pk),
                data={"source": source, "type": event.type, "event_id": event_id},
            )
    except IntegrityError:
        existing = InboundEvent.objects.get(source=source, event_id=event_id)
        if existing.tenant_id != tenant.pk:
            raise ForeignEvent(FOREIGN_EVENT) from None
        return existing, False
    return event, True
