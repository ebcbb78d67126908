"""Scrape-time figures for ``/metrics``: read from Redis and the database when Prometheus asks, so every
web process answers the same and nothing is kept in process memory (see audit.metrics).

* ``acme_breaker_state{downstream,state}`` — 1 for the breaker's current state (closed / half_open /
  open), a state set; ``acme_breaker_trips_total{downstream}`` — times it opened (kept in Redis).
* ``acme_queue_jobs{queue,state}`` — RQ jobs queued / started / scheduled / deferred / failed.
* ``acme_dead_letters{tool}`` — failed commits not discarded (they wait for a requeue).
* ``acme_proposals_pending{tool}``, ``acme_proposal_oldest_pending_age_seconds{tool}``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from adapters import breaker, registry
from approvals import lifecycle, queues
from approvals.models import Proposal, Status
from audit import metrics

BREAKER_STATES = ("closed", "half_open", "open")
# Downstreams behind the HTTP door (and so behind a breaker): not the warehouse (read in-process) nor
# workflows (made of crm and slack calls).
_NOT_HTTP = {"warehouse", "workflow"}


def downstreams() -> list[str]:
    return sorted({tool.system for tool in registry.tools()} - _NOT_HTTP)


# --- plain figures (also what the operator dashboard shows) ---------------------------------------------


def breaker_snapshot() -> dict[str, dict[str, Any]]:
    return {name: {"state": breaker.state(name), "trips": breaker.trips(name)} for name in downstreams()}


def queue_snapshot() -> dict[str, dict[str, int]]:
    figures: dict[str, dict[str, int]] = {}
    for name in settings.ACME_QUEUES:
        queue = queues.get_queue(name)
        figures[name] = {
            "queued": queue.count,
            "started": queue.started_job_registry.count,
            "scheduled": queue.scheduled_job_registry.count,
            "deferred": queue.deferred_job_registry.count,
            "failed": queue.failed_job_registry.count,
        }
    return figures


def _of_tenants(queryset: Any, tenants: set[str] | None) -> Any:
    """``tenants`` None: every tenant (/metrics, a superuser's /ops/); else only those (a tenant admin's)."""
    return queryset if tenants is None else queryset.filter(tenant__slug__in=sorted(tenants))


def dead_letter_snapshot(tenants: set[str] | None = None) -> dict[str, int]:
    rows = (
        _of_tenants(Proposal.objects.filter(lifecycle.DEAD_LETTERS), tenants)
        .order_by()
        .values("tool")
        .annotate(n=Count("pk"))
    )
    return {row["tool"]: row["n"] for row in rows}


def pending_snapshot(now: Any = None, tenants: set[str] | None = None) -> dict[str, dict[str, float]]:
    now = now or timezone.now()
    rows = (
        _of_tenants(Proposal.objects.filter(status=Status.PENDING), tenants)
        .order_by()
        .values("tool")
        .annotate(n=Count("pk"), first=Min("created_at"))
    )
    return {
        row["tool"]: {"count": row["n"], "oldest_age": max(0.0, (now - row["first"]).total_seconds())}
        for row in rows
    }


# --- metric families ---------------------------------------------------------------------------------


def breaker_figures() -> list[Any]:
    state = GaugeMetricFamily(
        "acme_breaker_state",
        "Circuit breaker state per downstream (1 for the current state).",
        labels=["downstream", "state"],
    )
    trips = CounterMetricFamily("acme_breaker_trips", "Times the breaker opened.", labels=["downstream"])
    for name, figures in breaker_snapshot().items():
        for candidate in BREAKER_STATES:
            state.add_metric([name, candidate], 1.0 if candidate == figures["state"] else 0.0)
        trips.add_metric([name], float(figures["trips"]))
    return [state, trips]


def queue_figures() -> list[Any]:
    family = GaugeMetricFamily("acme_queue_jobs", "RQ jobs by queue and state.", labels=["queue", "state"])
    for name, states in queue_snapshot().items():
        for state, count in states.items():
            family.add_metric([name, state], float(count))
    return [family]


def proposal_figures() -> list[Any]:
    dead = GaugeMetricFamily(
        "acme_dead_letters", "Failed commits not discarded, waiting for a requeue.", labels=["tool"]
    )
    for tool, count in dead_letter_snapshot().items():
        dead.add_metric([tool], float(count))
    pending = GaugeMetricFamily(
        "acme_proposals_pending", "Proposals waiting for a decision.", labels=["tool"]
    )
    oldest = GaugeMetricFamily(
        "acme_proposal_oldest_pending_age_seconds", "Age of the oldest pending proposal.", labels=["tool"]
    )
    for tool, figures in pending_snapshot().items():
        pending.add_metric([tool], float(figures["count"]))
        oldest.add_metric([tool], figures["oldest_age"])
    return [dead, pending, oldest]


class _Section:
    """One group of figures; a failure (Redis down) drops that group only (audit.metrics guards it)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def collect(self) -> Iterator[Any]:
        yield from self.fn()


class BreakerCollector(_Section):
    def __init__(self) -> None:
        super().__init__(breaker_figures)


class QueueCollector(_Section):
    def __init__(self) -> None:
        super().__init__(queue_figures)


class ProposalCollector(_Section):
    def __init__(self) -> None:
        super().__init__(proposal_figures)


def register() -> None:
    for collector in (BreakerCollector(), QueueCollector(), ProposalCollector()):
        metrics.register_scrape_collector(collector)
