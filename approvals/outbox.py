"""The transactional outbox: jobs are handed to Redis only from rows committed in PostgreSQL/SQLite.

``stage_commit`` writes the row inside the caller's transaction and hands it off once that transaction
commits; ``drain`` (run by every worker's housekeeping loop) hands off whatever is left, e.g. rows staged
while Redis was down. ``drain`` claims rows with ``SELECT … FOR UPDATE SKIP LOCKED`` so several
dispatchers can run. The immediate hand-off is on the path of every approval, so it claims its one row
with a single conditional ``UPDATE … WHERE dispatched_at IS NULL`` instead of a transaction: whichever of
it and a drain marks the row first hands it off, the other does nothing. It marks before it enqueues; a
failed enqueue unmarks the row for the next drain, and a process that dies in between leaves a marked
row with no job, which the sweeps for lost jobs re-stage (``services.commits_redispatch``,
``webhooks.redispatch``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import connections, router, transaction
from django.utils import timezone

from approvals import queues
from approvals.models import OutboxMessage
from audit.prepared_writes import PreparedInsert

logger = logging.getLogger(__name__)
_INSERT = PreparedInsert(
    OutboxMessage
)  # compiled once (audit.prepared_writes): every state change stages one


def stage(kind: str, payload: dict[str, Any], *, available_at: datetime | None = None) -> OutboxMessage:
    """Write the message in the caller's transaction; hand it off right after the commit when it is due."""
    message = _INSERT.insert(
        OutboxMessage(kind=kind, payload=payload, available_at=available_at or timezone.now())
    )
    if available_at is None or available_at <= timezone.now():
        transaction.on_commit(lambda: _hand_off_now(message))
    return message


def stage_commit(proposal_id: Any, *, available_at: datetime | None = None) -> OutboxMessage:
    return stage(OutboxMessage.Kind.COMMIT, {"proposal_id": str(proposal_id)}, available_at=available_at)


def _hand_off(message: OutboxMessage) -> None:
    if message.kind == OutboxMessage.Kind.COMMIT:
        queues.enqueue_commit(message.payload["proposal_id"])
    elif message.kind == OutboxMessage.Kind.WEBHOOK:
        queues.enqueue_webhook(message.payload["delivery_id"])
    elif message.kind == OutboxMessage.Kind.SLACK:
        queues.enqueue_slack(message.pk)
    elif message.kind == OutboxMessage.Kind.EMAIL:
        queues.enqueue_email(message.payload["email_id"])
    else:  # pragma: no cover - a kind without a handler is a programming error
        raise ValueError(f"no handler for outbox kind {message.kind}")


def _claim(message: OutboxMessage) -> bool:
    """Mark ``message`` dispatched unless a drain did first: ``filter(pk=…, dispatched_at__isnull=True)
    .update(dispatched_at=now, attempts=F("attempts") + 1)``, written out once per engine (building that
    query cost a tenth of an approval's CPU); the value is the field's own database form."""
    connection = connections[router.db_for_write(OutboxMessage)]
    meta = OutboxMessage._meta
    qn = connection.ops.quote_name
    table, pk, at, attempts = (qn(n) for n in (meta.db_table, meta.pk.column, "dispatched_at", "attempts"))
    sql = f"UPDATE {table} SET {at} = %s, {attempts} = {attempts} + 1 WHERE {pk} = %s AND {at} IS NULL"  # noqa: S608 (quoted names of the model, no input)
    now = meta.get_field("dispatched_at").get_db_prep_save(timezone.now(), connection)
    own_transaction = not connection.in_atomic_block
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if (
            own_transaction
            and connection.vendor == "postgresql"
            and message.kind == OutboxMessage.Kind.COMMIT
        ):
            # A commit's mark is not waited for on disk (a flush costs a millisecond or more on the path from
            # approved to committed): lost in a crash, it only lets the drain hand the commit off again, and
            # a commit job claims its proposal under a row lock (a second run is a no-op). Other kinds (a
            # reminder, an ephemeral answer) would be sent twice: their mark is flushed.
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        cursor.execute(sql, [now, meta.pk.get_db_prep_value(message.pk, connection)])
        return bool(cursor.rowcount == 1)


def _hand_off_now(message: OutboxMessage) -> None:
    """Right after the staging transaction committed. Never raises: a failed hand-off stays for ``drain``."""
    try:
        if not _claim(message):
            return  # a drain got there first
        try:
            _hand_off(message)
        except Exception as exc:  # Redis down: unmark the row for the next drain
            OutboxMessage.objects.filter(pk=message.pk).update(
                dispatched_at=None, last_error=f"{type(exc).__name__}: {exc}"[:1000]
            )
            logger.warning("outbox hand-off failed; will retry", extra={"outbox_id": message.pk})
    except Exception:
        logger.exception("outbox hand-off failed")


def drain(*, limit: int = 100) -> int:
    """Hand off due messages; return how many were dispatched. Never raises on a Redis outage."""
    dispatched = 0
    try:
        with transaction.atomic():
            rows = OutboxMessage.objects.select_for_update(skip_locked=True).filter(
                dispatched_at__isnull=True, available_at__lte=timezone.now()
            )
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
