"""Waiting for a decision: ``GET /api/v1/proposals/{id}/?wait=N`` and MCP ``get_proposal``'s ``wait``.

How a wait works, and why this way:

* **The signal.** Whatever changes a proposal's status calls ``changed(id)`` inside its transaction; after
  the commit, one ``PUBLISH`` on the proposal's Redis channel tells every waiter, in any web process on any
  machine (Redis pub/sub: nothing is kept, nothing to clean up; a waiter that was not listening loses
  nothing because it reads the database after subscribing). PostgreSQL's LISTEN/NOTIFY would hold a
  database connection per waiting process and does not exist on SQLite; Redis is already everyone's.
* **No database connection while waiting.** The waiter subscribes, reads the proposal once, and if it must
  wait, closes its database connection before blocking on the channel; it reads again (a new connection)
  only when the channel speaks or the time is up. 50 agents waiting hold 50 threads and Redis connections,
  none of PostgreSQL's ``max_connections``.
* **No starving the other requests.** A gunicorn ``gthread`` worker serves as many requests at once as it
  has threads (8 by default), and a waiting request holds one. So at most ``ACME_WAIT_SLOTS`` requests of a
  process wait at a time (default: half its threads); a wait that finds no free slot answers at once with
  the proposal's current state and ``Retry-After`` (the agent asks again later), instead of taking the last
  threads that submissions, reads and reviewers need. More agents waiting at once: more threads
  (``ACME_WEB_THREADS``) and slots, or more processes; a waiting thread costs memory and one Redis
  connection, and no database connection.
* **Redis unreachable.** The wait polls the database once a second instead (closing the connection
  between polls), so it still answers as soon as the proposal is decided, only later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.db import connection, transaction

from adapters.redis import get_redis, key
from approvals.models import Proposal, Status

logger = logging.getLogger(__name__)

MAX_WAIT = 30
BAD_WAIT = "wait must be a whole number of seconds from 0 to 30."
POLL_SECONDS = 1.0
# What a wait refused for want of a slot suggests (Retry-After): long enough that agents turned away do not
# poll the server harder than waiting would have (bench/agents.py: at 1 s, 42 turned-away agents cost intake
# a third of its rate on two cores), short against the minutes a reviewer takes.
NO_SLOT_RETRY_AFTER = 5

# Not yet decided, and decided but still on its way to the outside system: the statuses a wait waits out.
# Any other status (committed, rejected, cancelled, expired, failed, stale, and whatever final status the
# lifecycle adds) ends a wait at once.
UNDECIDED = frozenset({Status.PENDING})
IN_FLIGHT = frozenset({Status.APPROVED, Status.COMMITTING})


def channel(proposal_id: Any) -> str:
    return key("proposal", str(proposal_id), "status")


def changed(proposal_id: Any) -> None:
    """Call where a proposal's status changes, inside its transaction: waiters hear of it once it is
    committed (never of a change that is rolled back)."""
    transaction.on_commit(lambda: notify(proposal_id))


def notify(proposal_id: Any) -> None:
    """Wake the waiters of ``proposal_id`` now. Best effort: a waiter also reads the database when its time
    is up, so a lost signal delays an answer, and never makes it wrong."""
    try:
        get_redis().publish(channel(proposal_id), b"1")
    except redis.RedisError:
        logger.warning("proposal %s changed; waiters not signalled (Redis unavailable)", proposal_id)


def parse_wait(raw: str | None) -> int | None:
    """``?wait=`` as seconds, None when absent; ValueError (BAD_WAIT) when it is not 0 to 30."""
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3 and int(raw) <= MAX_WAIT):
        raise ValueError(BAD_WAIT)
    return int(raw)


def settled(status: str, *, since: str) -> bool:
    """Whether a wait that began at status ``since`` is over at ``status``: a pending proposal's wait ends
    when it is decided; an approved one's when it reaches a final status."""
    if status in UNDECIDED:
        return False
    if status in IN_FLIGHT:
        return since in UNDECIDED
    return True


def _release_connection() -> None:
    """Hand the thread's database connection back before blocking (inside a transaction, as in a test
    case, there is nothing to hand back)."""
    if not connection.in_atomic_block:
        connection.close()


class _Slots:
    """This process's waits in progress, at most ``ACME_WAIT_SLOTS``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = 0

    def take(self) -> bool:
        with self._lock:
            if self._busy >= limit():
                return False
            self._busy += 1
            return True

    def give(self) -> None:
        with self._lock:
            self._busy -= 1

    @property
    def busy(self) -> int:
        return self._busy


SLOTS = _Slots()


def limit() -> int:
    return int(getattr(settings, "ACME_WAIT_SLOTS", 4))


class NoSlot(Exception):
    """Every wait slot of this process is taken: answer now, with ``Retry-After``."""


def wait(proposal_id: Any, *, seconds: float, read: Callable[[], Proposal]) -> Proposal:
    """``read()`` the proposal when it is settled (see ``settled``) or when ``seconds`` are up, whichever
    comes first. ``read`` returns the proposal as its caller may see it (it raises for one it may not).
    Raises NoSlot (with nothing read) when this process already has its share of waits."""
    if not SLOTS.take():
        raise NoSlot
    try:
        return _wait(proposal_id, seconds, read)
    finally:
        SLOTS.give()


def _wait(proposal_id: Any, seconds: float, read: Callable[[], Proposal]) -> Proposal:
    deadline = time.monotonic() + seconds
    pubsub = None
    try:
        pubsub = get_redis().pubsub(ignore_subscribe_messages=True)
        # Subscribe before reading: a change committed between the read and the subscription would
        # otherwise go unheard until the deadline.
        pubsub.subscribe(channel(proposal_id))
    except redis.RedisError:
        logger.warning("waiting on proposal %s by polling (Redis unavailable)", proposal_id)
        pubsub = None
    try:
        proposal = read()
        since = proposal.status
        while not settled(proposal.status, since=since):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return proposal
            _release_connection()
            if pubsub is not None:
                try:
                    if pubsub.get_message(timeout=remaining) is None and time.monotonic() < deadline:
                        continue  # the subscription's own confirmation: nothing changed
                except redis.RedisError:
                    pubsub = None
                    time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
            else:
                time.sleep(min(POLL_SECONDS, remaining))
            proposal = read()
        return proposal
    finally:
        if pubsub is not None:
            try:
                pubsub.close()
            except redis.RedisError:
                pass
