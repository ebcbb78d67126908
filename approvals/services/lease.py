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
database row the claim protocol reads. One thread per process beats for every commit in flight in it, on
its own database connection (Django's are per thread), closed whenever no commit is in flight; a commit
shorter than one interval never opens it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
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


class _Heartbeats:
    """One thread per process renews the leases of every commit in flight in it, each every
    ``ACME_COMMIT_HEARTBEAT`` seconds from when its commit began. A thread per commit cost more to start
    (about a millisecond and a half of a commit of ten, under load) than the whole beat it ran."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """A fresh state: at start, and in a forked child (the parent's thread is not running there, and its
        lock may have been held at the fork by that thread, forever, as far as the child can tell)."""
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._due: dict[tuple[Any, int], tuple[float, float]] = {}  # (proposal, token) -> (due, interval)
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._running: tuple[Any, int] | None = None  # the beat being made (outside the lock)

    def add(self, key: tuple[Any, int], interval: float) -> None:
        with self._lock:
            self._due[key] = (time.monotonic() + interval, interval)
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="acme-lease-heartbeat", daemon=True)
                self._thread.start()
            self._wake.notify()

    def remove(self, key: tuple[Any, int]) -> None:
        """Stop beating for ``key``; a beat of it already under way is waited for (one interval at most: a
        beat stuck on a dead network must not hold the commit's end; its late renewal matches no row, as
        the proposal is no longer committing under this token)."""
        with self._lock:
            entry = self._due.pop(key, None)
            deadline = time.monotonic() + (entry[1] if entry else float(settings.ACME_COMMIT_HEARTBEAT))
            while self._running == key and (left := deadline - time.monotonic()) > 0:
                self._wake.wait(left)

    def _next(self) -> list[tuple[Any, int]]:
        """Wait for the next due beats; each is rescheduled one interval on before it runs."""
        with self._lock:
            while True:
                now = time.monotonic()
                due = [key for key, (at, _) in self._due.items() if at <= now]
                if due:
                    for key in due:
                        self._due[key] = (now + self._due[key][1], self._due[key][1])
                    return due
                if not self._due:
                    connections.close_all()  # nothing in flight: this thread's connection is not kept
                self._wake.wait(min((at for at, _ in self._due.values()), default=now + 60) - now)

    def _run(self) -> None:
        while True:
            for key in self._next():
                with self._lock:
                    if key not in self._due:
                        continue  # its commit ended meanwhile
                    self._running = key
                try:
                    self._beat(key)
                finally:
                    with self._lock:
                        self._running = None
                        self._wake.notify_all()

    def _beat(self, key: tuple[Any, int]) -> None:
        proposal_id, token = key
        try:
            if not renew(proposal_id, token):
                # Taken over (or already finished): the finishing step's fence decides what happens.
                logger.warning("commit of %s lost its lease (token %d)", proposal_id, token)
                with self._lock:
                    self._due.pop(key, None)
        except DatabaseError as exc:
            # The lease outlives a couple of missed beats; keep trying, on a new connection (the old one may
            # have been cut).
            logger.warning("lease renewal of %s failed (%s)", proposal_id, type(exc).__name__)
            connections.close_all()
        except Exception:  # the thread serves every commit of the process: it must not die
            logger.exception("lease renewal of %s crashed", proposal_id)


_HEARTBEATS = _Heartbeats()
os.register_at_fork(after_in_child=_HEARTBEATS._reset)


@contextmanager
def heartbeat(proposal_id: Any, token: int) -> Iterator[None]:
    """Renew the lease of ``proposal_id`` every ``ACME_COMMIT_HEARTBEAT`` seconds until the block ends."""
    key = (proposal_id, token)
    _HEARTBEATS.add(key, float(settings.ACME_COMMIT_HEARTBEAT))
    try:
        yield
    finally:
        # A renewal in flight when the commit ended matches no row once the outcome is recorded (its status
        # is no longer committing).
        _HEARTBEATS.remove(key)


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
