"""A commit's lease: short, renewed by a heartbeat while the commit runs, and fenced by a token.

The claim sets ``lease_until`` to now + ``ACME_COMMIT_LEASE`` and raises ``lease_token`` (the fencing
token). While the commit's outside calls run, a heartbeat thread renews the lease every
``ACME_COMMIT_HEARTBEAT`` seconds with one conditional ``UPDATE … WHERE id = … AND lease_token = <token>
AND status = 'committing'``: a live worker keeps a long commit (a 429 asking for 30 s) however long it
takes, and a dead worker's lease runs out within ``ACME_COMMIT_LEASE`` seconds, when the housekeeping
sweep re-stages it and another worker takes it over (a new token).

Every finishing step (receipt + committed, failed, stale, deferred) locks the row and checks ``fenced``:
still committing under the same token. A worker that stalled past its lease (a long GC pause, a frozen
VM) and was taken over finds another token: its late result is discarded, with an audit event that
says what it was, instead of overwriting the outcome of the worker that took over. Discarding is safe
because a retry of the same commit never doubles the write (the CRM's idempotency key; Slack posts are
looked up by their metadata before being sent again).

Why a thread and not RQ's own heartbeat: RQ renews its job's key in Redis, which says nothing to the
database row the claim protocol reads. The thread uses its own database connection (Django's are per
thread) and closes it when the commit ends; a commit shorter than one interval never opens it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections
from django.utils import timezone

from approvals.lifecycle import proposal_event
from approvals.models import Proposal, Status
from audit import services as audit

logger = logging.getLogger(__name__)

DISCARDED_ACTION = "proposal.commit_discarded"


def expiry() -> Any:
    return timezone.now() + timedelta(seconds=settings.ACME_COMMIT_LEASE)


def renew(proposal_id: Any, token: int) -> bool:
    """Push the lease out, if this token still holds it. False: the commit ended or was taken over."""
    held = Proposal.objects.filter(pk=proposal_id, lease_token=token, status=Status.COMMITTING)
    return held.update(lease_until=expiry()) == 1


@contextmanager
def heartbeat(proposal_id: Any, token: int) -> Iterator[None]:
    """Renew the lease of ``proposal_id`` every ``ACME_COMMIT_HEARTBEAT`` seconds until the block ends."""
    stop = threading.Event()
    interval = float(settings.ACME_COMMIT_HEARTBEAT)

    def beat() -> None:
        try:
            while not stop.wait(interval):
                try:
                    if not renew(proposal_id, token):
                        # Taken over (or already finished): the finishing step's fence decides what happens.
                        logger.warning("commit of %s lost its lease (token %d)", proposal_id, token)
                        return
                except DatabaseError as exc:
                    # The lease outlives a couple of missed beats; keep trying, on a new connection (the
                    # old one may have been cut).
                    logger.warning("lease renewal of %s failed (%s)", proposal_id, type(exc).__name__)
                    connections.close_all()
        finally:
            connections.close_all()  # this thread's own connections only

    thread = threading.Thread(target=beat, name=f"lease-{proposal_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        # A renewal in flight when the commit ended matches no row once the outcome is recorded (its status
        # is no longer committing), so there is no need to wait for it long.
        thread.join(timeout=interval)


def fenced(locked: Proposal, token: int) -> bool:
    """The locked proposal is still this claim's to finish: committing, under the same token."""
    return locked.status == Status.COMMITTING and locked.lease_token == token


def discard(locked: Proposal, token: int, *, outcome: str, data: dict[str, Any]) -> None:
    """Audit a stale worker's late result, dropped because another claim owns the proposal now."""
    audit.append(
        proposal_event(
            locked,
            actor=audit.SYSTEM,
            action=DISCARDED_ACTION,
            where=audit.WORKER,
            result="stale",
            data={
                "outcome": outcome,
                "token": token,
                "current_token": locked.lease_token,
                **data,
            },
        )
    )
