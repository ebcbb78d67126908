"""Signed events to agents (outbound) and from the CRM (inbound).

Outbound: an agent registers a callback URL; every decision, commit, failure, expiry and staleness of its
proposals becomes a ``WebhookDelivery`` row, staged in the outbox in the same transaction as the change,
POSTed by a worker with ``X-Acme-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``
and ``X-Acme-Event-Id``, retried with backoff until a 2xx or the attempts run out. Agents deduplicate on the
event id (a delivery whose answer was lost is sent again).

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
import json
import logging
import random
import re
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from adapters import connections, http
from approvals import outbox
from approvals.models import (
    AgentCredential,
    InboundEvent,
    OutboxMessage,
    Proposal,
    Receipt,
    Tenant,
    WebhookDelivery,
)
from audit import services as audit

logger = logging.getLogger(__name__)

EVENTS = ("proposal.decided", "proposal.committed", "proposal.failed", "proposal.expired", "proposal.stale")
SIGNATURE_HEADER = "X-Acme-Signature"
TOLERANCE = 300  # seconds a signed timestamp stays acceptable, both ways


# --- outbound ------------------------------------------------------------------------------------------


def secret_for(agent: AgentCredential) -> str:
    """The agent's signing secret, derived from SECRET_KEY (so it is never stored); rotate by bumping
    ``webhook_secret_version``."""
    material = f"acme-webhook:{agent.pk}:{agent.webhook_secret_version}".encode()
    return "whsec_" + hmac.new(settings.SECRET_KEY.encode(), material, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    secret: str, header: str, body: bytes, *, now: float | None = None, tolerance: int = TOLERANCE
) -> bool:
    """What a receiver does (documented in the README): check the timestamp window, then the HMAC."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


class UnsafeURL(ValueError):
    pass


def _private_allowed() -> bool:
    return bool(getattr(settings, "ACME_WEBHOOK_ALLOW_PRIVATE", settings.DEBUG))


def check_callback_url(url: str) -> str:
    """Only http(s), and (unless allowed for development) never an address inside our own network."""
    try:
        parts = urlsplit(url)
        port = parts.port  # urllib raises ValueError for a port past 65535 or not a number
    except ValueError:
        raise UnsafeURL("The callback URL cannot be parsed (check its host and port).") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL("The callback URL must be an http:// or https:// URL with a host.")
    if port == 0:
        raise UnsafeURL("The callback URL's port must be between 1 and 65535.")
    if _private_allowed():
        return url
    try:
        infos = socket.getaddrinfo(
            parts.hostname, port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP
        )
    except OSError:
        raise UnsafeURL("The callback URL's host does not resolve.") from None
    if not all(http.is_public_address(str(info[4][0])) for info in infos):
        raise UnsafeURL("The callback URL points into a private network; use a public address.")
    return url


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


def delivery_redeliver(*, delivery: WebhookDelivery, actor: audit.Actor, where: audit.Where) -> bool:
    """Send a delivery again (an admin's action): a given-up one, or a delivered one the receiver lost. It
    goes out as the same event (same id: the receiver deduplicates), at once, with a fresh attempt budget.
    False if it is still pending (its retries are already scheduled)."""
    with transaction.atomic():
        locked = (
            WebhookDelivery.objects.select_for_update().select_related("agent__tenant").get(pk=delivery.pk)
        )
        if locked.state == WebhookDelivery.State.PENDING:
            return False
        was = locked.state
        locked.state = WebhookDelivery.State.PENDING
        locked.attempts = 0
        locked.next_attempt_at = timezone.now()
        locked.save(update_fields=["state", "attempts", "next_attempt_at"])
        audit.append(
            audit.event(
                tenant=locked.agent.tenant.slug,
                actor=actor,
                action="webhook.redelivered",
                subject_type="webhook",
                subject_id=str(locked.pk),
                where=where,
                data={"event": locked.event, "was": was},
            )
        )
        outbox.stage(OutboxMessage.Kind.WEBHOOK, {"delivery_id": str(locked.pk)})
    return True


def _backoff(attempt: int) -> float:
    # Full jitter (AWS architecture blog), base 2 s, cap 10 minutes.
    return random.uniform(0, min(600.0, 2.0 * 2 ** (attempt - 1)))


def deliver(delivery_id: str) -> str:
    delivery = WebhookDelivery.objects.select_related("agent").filter(pk=delivery_id).first()
    if delivery is None or delivery.state != WebhookDelivery.State.PENDING:
        return "noop"
    body = json.dumps(delivery.payload, cls=DjangoJSONEncoder, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret_for(delivery.agent), timestamp, body),
        "X-Acme-Event-Id": str(delivery.pk),
        "X-Acme-Event": delivery.event,
    }
    error = ""
    try:
        check_callback_url(delivery.url)
        # The project's one HTTP door: mandatory timeout, no redirects. Retries are ours (outbox + backoff),
        # not inline, so a slow receiver never holds a worker. The check above is repeated by the connection
        # itself (public_only_session): the host's DNS may answer differently a moment later.
        session = http.make_session() if _private_allowed() else http.public_only_session()
        response = session.post(delivery.url, data=body, headers=headers)
        ok = 200 <= response.status_code < 300
        error = "" if ok else f"HTTP {response.status_code}"
    except Exception as exc:
        ok, error = False, type(exc).__name__
    with transaction.atomic():
        delivery = WebhookDelivery.objects.select_for_update().get(pk=delivery.pk)
        if delivery.state != WebhookDelivery.State.PENDING:
            return "noop"
        delivery.attempts += 1
        if ok:
            delivery.state = WebhookDelivery.State.DELIVERED
            delivery.delivered_at = timezone.now()
            delivery.last_error = ""
        elif delivery.attempts >= settings.ACME_WEBHOOK_MAX_ATTEMPTS:
            delivery.state = WebhookDelivery.State.FAILED
            delivery.last_error = error
        else:
            delivery.last_error = error
            delivery.next_attempt_at = timezone.now() + timedelta(seconds=_backoff(delivery.attempts))
            outbox.stage(
                OutboxMessage.Kind.WEBHOOK,
                {"delivery_id": str(delivery.pk)},
                available_at=delivery.next_attempt_at,
            )
        delivery.save(update_fields=["state", "attempts", "delivered_at", "last_error", "next_attempt_at"])
    return delivery.state


def redispatch(*, grace: int = 60, limit: int = 200) -> int:
    """Stage again the pending deliveries whose job was lost (e.g. Redis restarted without persistence):
    due for longer than ``grace`` seconds. The receiver deduplicates on the event id if both arrive."""
    now = timezone.now()
    ids = list(
        WebhookDelivery.objects.filter(
            state=WebhookDelivery.State.PENDING, next_attempt_at__lt=now - timedelta(seconds=grace)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        with transaction.atomic():
            WebhookDelivery.objects.filter(pk=pk).update(next_attempt_at=now)
            outbox.stage(OutboxMessage.Kind.WEBHOOK, {"delivery_id": str(pk)})
    return len(ids)


# --- inbound -------------------------------------------------------------------------------------------


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
