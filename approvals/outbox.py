"""The transactional outbox: jobs are handed to Redis only from rows committed in PostgreSQL/SQLite.

``stage_commit`` writes the row inside the caller's transaction and asks for an immediate hand-off once
that transaction commits; ``drain`` (run by every worker's housekeeping loop) hands off whatever is left,
e.g. rows staged while Redis was down. Rows are claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` so
several dispatchers can run, and marked dispatched only after the enqueue succeeded.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals.models import OutboxMessage

logger = logging.getLogger(__name__)


def stage(kind: str, payload: dict[str, Any], *, available_at: datetime | None = None) -> OutboxMessage:
    """Write the message in the caller's transaction; hand it off right after the commit when it is due."""
    message = OutboxMessage.objects.create(kind=kind, payload=payload, available_at=available_at or timezone.now())
    if available_at is None or available_at <= timezone.now():
        transaction.on_commit(lambda: drain(only_id=message.pk))
    return message


def stage_commit(proposal_id: Any, *, available_at: datetime | None = None) -> OutboxMessage:
    return stage(OutboxMessage.Kind.COMMIT, {"proposal_id": str(proposal_id)}, available_at=available_at)


def _hand_off(message: OutboxMessage) -> None:
    from approvals import jobs

    if message.kind == OutboxMessage.Kind.COMMIT:
        jobs.enqueue_commit(message.payload["proposal_id"])
    elif message.kind == OutboxMessage.Kind.WEBHOOK:
        jobs.enqueue_webhook(message.payload["delivery_id"])
    else:  # pragma: no cover - a kind without a handler is a programming error
        raise ValueError(f"no handler for outbox kind {message.kind}")


def drain(*, limit: int = 100, only_id: int | None = None) -> int:
    """Hand off due messages; return how many were dispatched. Never raises on a Redis outage."""
    dispatched = 0
    try:
        with transaction.atomic():
            rows = OutboxMessage.objects.select_for_update(skip_locked=True).filter(
                dispatched_at__isnull=True, available_at__lte=timezone.now()
            )
            if only_id is not None:
                rows = rows.filter(pk=only_id)
            for message in rows.order_by("id")[:limit]:
                try:
                    _hand_off(message)
                except Exception as exc:  # Redis down: leave the row for the next pass
                    message.attempts += 1
                    message.last_error = f"{type(exc).__name__}: {exc}"[:1000]
                    message.save(update_fields=["attempts", "last_error"])
                    logger.warning("outbox hand-off failed; will retry", extra={"outbox_id": message.pk})
                    break
                message.dispatched_at = timezone.now()
                message.attempts += 1
                message.save(update_fields=["dispatched_at", "attempts"])
                dispatched += 1
    except Exception:
        logger.exception("outbox drain failed")
    return dispatched
