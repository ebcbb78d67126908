"""Prometheus metrics: the definitions, and the registry ``/metrics`` renders.

Two kinds of figures, kept apart on purpose:

* **Event counters and histograms** (outbound calls, latency, retries, rate-limit waits) are counted by
  the process where the event happens: a gunicorn worker, an ``acme_worker``. They use
  prometheus-client's multiprocess mode: every process writes its values to mmapped files under
  ``PROMETHEUS_MULTIPROC_DIR`` (settings points it under ``var/`` unless set), and ``/metrics``, in any web
  process, merges all of them with ``MultiProcessCollector``. The directory must be emptied when the
  whole group of processes starts (``acme_integration.run`` does it; a deployment's supervisor does the
  same), never by one process while others run.
* **State figures** (breaker state, queue depth, dead letters, pending proposals and their age) live in
  Redis and the database, shared by every machine. They are computed at scrape time by collectors
  registered with ``register_scrape_collector`` (``approvals.metrics`` registers the domain's), so no
  process keeps a copy that could disagree with the others.

Label values are tool names, downstream names and outcomes: small closed sets, never ids or tenants.
This module is the bottom room: adapters import it, it imports nothing of the product.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# Latency buckets for outbound HTTP (seconds): a sandbox answers in ms, a real CRM in 100s of ms, the
# timeout is 10 s.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# --- outbound calls (adapters.http) ---------------------------------------------------------------------
# One per logical call (all its retries included). outcome: ok | transient_failure (retries ran out) |
# permanent_failure (a 4xx, a malformed answer) | deferred (breaker open, long Retry-After).
# Success rate = rate(outcome="ok") / rate(all).
OUTBOUND_CALLS = Counter(
    "acme_outbound_calls",
    "Outbound calls by tool, downstream and outcome.",
    ["tool", "downstream", "outcome"],
)
# One per HTTP attempt that reached the wire (or failed to): the downstream's latency, p50/p95 via
# histogram_quantile().
OUTBOUND_LATENCY = Histogram(
    "acme_outbound_request_duration_seconds",
    "Duration of one outbound HTTP attempt.",
    ["tool", "downstream"],
    buckets=LATENCY_BUCKETS,
)
OUTBOUND_ATTEMPTS = Counter(
    "acme_outbound_attempts",
    "Outbound HTTP attempts by result (a status class, timeout or connection_error).",
    ["tool", "downstream", "result"],
)
OUTBOUND_RETRIES = Counter(
    "acme_outbound_retries", "Attempts beyond the first one of a call.", ["tool", "downstream"]
)

# --- rate limits (adapters.ratelimit) ------------------------------------------------------------------
RATELIMIT_WAITS = Counter(
    "acme_ratelimit_waits", "Calls held back by a rate limit (rescheduled, nothing sent).", ["tool"]
)
RATELIMIT_WAIT_SECONDS = Counter(
    "acme_ratelimit_wait_seconds", "Seconds of waiting the rate limits asked for.", ["tool"]
)

# The tool an outbound call is made for. adapters.registry sets it around a tool's execution, so the HTTP
# door (which only knows the downstream) can label its figures per tool.
_current_tool: ContextVar[str] = ContextVar("acme_metrics_tool", default="")


@contextlib.contextmanager
def tool_scope(tool: str) -> Iterator[None]:
    token = _current_tool.set(tool)
    try:
        yield
    finally:
        _current_tool.reset(token)


def current_tool() -> str:
    return _current_tool.get() or "none"


# --- scrape-time collectors ------------------------------------------------------------------------------
# Objects with a ``collect()`` returning metric families (prometheus-client's custom collector protocol).
_scrape_collectors: list[Any] = []


def register_scrape_collector(collector: Any) -> None:
    """Add a collector evaluated on every scrape (idempotent per collector class)."""
    if not any(type(c) is type(collector) for c in _scrape_collectors):
        _scrape_collectors.append(collector)


class _Guarded:
    """A failing scrape-time collector (Redis down, say) drops its own figures, not the whole page."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def collect(self) -> Iterable[Any]:
        try:
            return list(self.inner.collect())
        except Exception:
            logger.exception("metrics collector %s failed", type(self.inner).__name__)
            return []


def multiproc_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def prepare_multiproc_dir(path: str | os.PathLike[str], *, wipe: bool) -> Path:
    """Create the multiprocess directory; ``wipe`` empties it first. Only the process that owns a group
    of processes (the supervisor, before it starts them) may wipe: live processes keep their files open."""
    directory = Path(path)
    if wipe and directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def build_registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    directory = multiproc_dir()
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        MultiProcessCollector(registry, path=str(directory))
    else:  # single-process mode (no directory configured): this process's own values
        for collector in (
            OUTBOUND_CALLS,
            OUTBOUND_LATENCY,
            OUTBOUND_ATTEMPTS,
            OUTBOUND_RETRIES,
            RATELIMIT_WAITS,
            RATELIMIT_WAIT_SECONDS,
        ):
            registry.register(collector)
    for collector in _scrape_collectors:
        registry.register(_Guarded(collector))
    return registry


def render() -> bytes:
    """The exposition text of every metric, merged across processes."""
    return generate_latest(build_registry())


def safe(fn: Callable[..., None]) -> Callable[..., None]:
    """Metrics must never break the call path they observe."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:
            logger.debug("metrics update failed", exc_info=True)

    return wrapper


@safe
def observe_attempt(downstream: str, seconds: float, result: str) -> None:
    tool = current_tool()
    OUTBOUND_LATENCY.labels(tool, downstream).observe(seconds)
    OUTBOUND_ATTEMPTS.labels(tool, downstream, result).inc()


@safe
def observe_retry(downstream: str) -> None:
    OUTBOUND_RETRIES.labels(current_tool(), downstream).inc()


@safe
def observe_call(downstream: str, outcome: str) -> None:
    OUTBOUND_CALLS.labels(current_tool(), downstream, outcome).inc()


@safe
def observe_ratelimit_wait(tool: str, seconds: float) -> None:
    RATELIMIT_WAITS.labels(tool).inc()
    RATELIMIT_WAIT_SECONDS.labels(tool).inc(max(0.0, seconds))
