"""Sending: one attempt per job (POSTed through the project's HTTP door), retried with backoff through the
outbox until a 2xx or the attempts run out; an admin's redelivery; re-staging deliveries whose job was lost."""

from __future__ import annotations

import json
import random
import time
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from adapters import http
from approvals import outbox
from approvals.models import OutboxMessage, WebhookDelivery
from approvals.webhooks.callback_url import _private_allowed, check_callback_url
from approvals.webhooks.signing import SIGNATURE_HEADER, secret_for, sign
from audit import services as audit


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
