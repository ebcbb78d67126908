"""Signed events to agents (outbound) and from the CRM (inbound).

Outbound: an agent registers a callback URL; every decision, commit, failure, expiry and staleness of its
proposals becomes a ``WebhookDelivery`` row, staged in the outbox in the same transaction as the change,
POSTed by a worker with ``X-Acme-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``
and ``X-Acme-Event-Id``, retried with backoff until a 2xx or the attempts run out. Agents deduplicate on the
event id (a delivery whose answer was lost is sent again).

Inbound (the CRM's signed events) is ``approvals.inbound``; its names are re-exported here.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import socket
import time
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from adapters import http
from approvals import outbox
from approvals.inbound import (
    FOREIGN_EVENT as FOREIGN_EVENT,
)
from approvals.inbound import (
    NAMES_ANOTHER as NAMES_ANOTHER,
)
from approvals.inbound import (
    NOT_BOUND as NOT_BOUND,
)
from approvals.inbound import (
    TOLERANCE as TOLERANCE,
)
from approvals.inbound import (
    BadSignature as BadSignature,
)
from approvals.inbound import (
    ForeignEvent as ForeignEvent,
)
from approvals.inbound import (
    InboundKey as InboundKey,
)
from approvals.inbound import (
    _parse_timestamp as _parse_timestamp,
)
from approvals.inbound import (
    check_bound as check_bound,
)
from approvals.inbound import (
    inbound_key as inbound_key,
)
from approvals.inbound import (
    inbound_record as inbound_record,
)
from approvals.inbound import (
    verify_inbound as verify_inbound,
)
from approvals.inbound import (
    zendesk_signature as zendesk_signature,
)
from approvals.models import (
    AgentCredential,
    OutboxMessage,
    Proposal,
    Receipt,
    WebhookDelivery,
)
from audit import services as audit

logger = logging.getLogger(__name__)

EVENTS = ("proposal.decided", "proposal.committed", "proposal.failed", "proposal.expired", "proposal.stale")
SIGNATURE_HEADER = "X-Acme-Signature"


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
