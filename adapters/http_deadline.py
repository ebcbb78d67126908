"""Deadlines for outbound calls: ``deadline(seconds)`` bounds every call made inside it, in all.

A call someone is waiting on (a live preview at submission, Slack's ``auth.test`` when a connection is set)
must answer fast or not at all; commits keep the full retry schedule. The bound is a context variable, so it
follows the request or job that set it and no other. ``adapters.http`` reads it to stop retrying before the
deadline and to cut each attempt's socket timeout to what is left; ``adapters.http_attempt`` reads it to
turn a ``Retry-After`` that ends past the deadline into a ``Deferred``. Callers use ``http.deadline``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_DEADLINE: ContextVar[float | None] = ContextVar("acme_http_deadline", default=None)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Bound every call made inside to ``seconds`` in all (attempts, timeouts and waits): for calls someone
    is waiting on, such as a live preview at submission, where a slow downstream must answer fast or not
    at all. Commits keep the full retry schedule."""
    token = _DEADLINE.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _remaining() -> float | None:
    until = _DEADLINE.get()
    return None if until is None else max(0.0, until - time.monotonic())


def _attempt_timeout(timeout: float) -> float:
    remaining = _remaining()
    return timeout if remaining is None else max(0.05, min(timeout, remaining))
