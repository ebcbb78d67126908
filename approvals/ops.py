"""The operator dashboard (``/ops/``, staff only): the /metrics figures as charts, for people who would
rather look than read.

Tenant admins see their tenants' figures only (contract section 6): approvals, outcomes, commit latency,
breaker deferrals, pending proposals and dead letters are counted over their tenants' audit events and
proposals. Breaker states and RQ queue depths live in Redis and are shared by every tenant, so only
superusers see them. A staff user who administers no tenant gets a 403.

Everything is computed on request from what every process shares: breaker state and queues in Redis,
the last 24 hours of audit events and receipts in the database (grouped by hour in SQL, using the
``at`` index). Charts are inline SVG made in Python (audit.charts): no JavaScript, no CDN.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.db.models.functions import TruncHour
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache

from approvals import metrics
from approvals.models import Receipt
from audit import charts
from audit.admin_scope import tenant_scope
from audit.models import AuditEvent

logger = logging.getLogger(__name__)

HOURS = 24
# Latency is computed from at most this many recent receipts (the newest): enough for an hourly p95.
LATENCY_SAMPLE = 20_000
NO_TENANTS = "You administer no tenant: the dashboard has nothing to show you."
FLOW_ACTIONS = {
    "proposal.approved": "approved",
    "proposal.rejected": "rejected",
    "proposal.committed": "committed",
    "proposal.failed": "failed",
}


def _hours(now: datetime) -> list[datetime]:
    end = now.replace(minute=0, second=0, microsecond=0)
    return [end - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]


def _hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _events(tenants: set[str] | None) -> Any:
    return (
        AuditEvent.objects.all() if tenants is None else AuditEvent.objects.filter(tenant__in=sorted(tenants))
    )


def flows_per_hour(since: datetime, tenants: set[str] | None = None) -> dict[str, dict[datetime, int]]:
    rows = (
        _events(tenants)
        .filter(at__gte=since, action__in=list(FLOW_ACTIONS))
        .annotate(hour=TruncHour("at"))
        .order_by()
        .values("hour", "action")
        .annotate(n=Count("id"))
    )
    flows: dict[str, dict[datetime, int]] = {name: {} for name in FLOW_ACTIONS.values()}
    for row in rows:
        flows[FLOW_ACTIONS[row["action"]]][_hour_of(row["hour"])] = row["n"]
    return flows


def breaker_deferrals_per_hour(since: datetime, tenants: set[str] | None = None) -> dict[datetime, int]:
    rows = (
        _events(tenants)
        .filter(at__gte=since, action="proposal.commit_deferred", data__reason="breaker_open")
        .annotate(hour=TruncHour("at"))
        .order_by()
        .values("hour")
        .annotate(n=Count("id"))
    )
    return {_hour_of(row["hour"]): row["n"] for row in rows}


def commit_latency_per_hour(
    since: datetime, tenants: set[str] | None = None
) -> dict[datetime, tuple[float, float]]:
    """Approval to receipt, in seconds: (median, p95) per hour of commit."""
    receipts = (
        Receipt.objects.all()
        if tenants is None
        else Receipt.objects.filter(proposal__tenant__slug__in=sorted(tenants))
    )
    pairs = (
        receipts.filter(committed_at__gte=since, proposal__decisions__verdict="approved")
        .order_by("-committed_at")
        .values_list("committed_at", "proposal__decisions__at")[:LATENCY_SAMPLE]
    )
    buckets: dict[datetime, list[float]] = {}
    for committed_at, approved_at in pairs:
        if approved_at is not None:
            buckets.setdefault(_hour_of(committed_at), []).append(
                (committed_at - approved_at).total_seconds()
            )
    result = {}
    for hour, values in buckets.items():
        values.sort()
        result[hour] = (values[len(values) // 2], values[min(len(values) - 1, int(len(values) * 0.95))])
    return result


def _safely(fn: Any, default: Any) -> Any:
    try:
        return fn()
    except Exception:  # Redis down: the page still shows what the database knows
        logger.exception("ops dashboard: %s failed", getattr(fn, "__name__", fn))
        return default


def dashboard_context(now: datetime | None = None, tenants: set[str] | None = None) -> dict[str, Any]:
    """The figures of ``tenants`` (None: every tenant, with the shared Redis figures)."""
    now = now or timezone.now()
    hours = _hours(now)
    since = hours[0]
    labels = [f"{h:%H}h" for h in hours]
    flows = flows_per_hour(since, tenants)
    latency = commit_latency_per_hour(since, tenants)
    deferrals = breaker_deferrals_per_hour(since, tenants)
    everyone = tenants is None
    # Shared by all tenants (one breaker per downstream, one set of queues): operators only.
    breakers = _safely(metrics.breaker_snapshot, None) if everyone else None
    queues = _safely(metrics.queue_snapshot, None) if everyone else None
    dead = metrics.dead_letter_snapshot(tenants)
    pending = metrics.pending_snapshot(now, tenants)
    queue_points = [
        (f"{name} {state}", float(count))
        for name, states in (queues or {}).items()
        for state, count in states.items()
        if state in ("queued", "started", "scheduled", "failed")
    ]
    return {
        "now": now,
        "everyone": everyone,
        "tenants": sorted(tenants) if tenants is not None else [],
        "breakers": breakers,
        "queues": queues,
        "dead_letters": dead,
        "dead_letter_total": sum(dead.values()),
        "pending": pending,
        "pending_total": sum(int(p["count"]) for p in pending.values()),
        "oldest_pending_age": max((p["oldest_age"] for p in pending.values()), default=0.0),
        "oldest_pending_wait": humanize_seconds(
            max((p["oldest_age"] for p in pending.values()), default=0.0)
        ),
        "charts": {
            "approvals": charts.bar_chart(
                [(label, float(flows["approved"].get(h, 0))) for label, h in zip(labels, hours, strict=True)],
                title="Approvals per hour, last 24 hours",
            ),
            "flows": charts.line_chart(
                labels,
                {
                    name: [float(flows[name].get(h, 0)) for h in hours]
                    for name in ("committed", "rejected", "failed")
                },
                title="Commits, rejections and failures per hour",
            ),
            "latency": charts.line_chart(
                labels,
                {
                    "median": [latency[h][0] if h in latency else None for h in hours],
                    "p95": [latency[h][1] if h in latency else None for h in hours],
                },
                title="Commit latency (approval to receipt), seconds",
                unit="s",
            ),
            "breaker": charts.bar_chart(
                [(label, float(deferrals.get(h, 0))) for label, h in zip(labels, hours, strict=True)],
                title="Commits held back by an open breaker, per hour",
                color=charts.PALETTE[1],
            ),
            "queues": charts.bar_chart(queue_points, title="Queue depth by state", color=charts.PALETTE[4])
            if queue_points
            else None,
            "dead_letters": charts.bar_chart(
                sorted((tool, float(n)) for tool, n in dead.items()),
                title="Dead letters by tool",
                color=charts.PALETTE[3],
            )
            if dead
            else None,
        },
    }


def humanize_seconds(seconds: float) -> str:
    """``334`` -> ``"5 min 34 s"``, ``7500`` -> ``"2 h 5 min"``, ``200000`` -> ``"2 d 7 h"``: two units at most."""
    total = int(seconds)
    units = [("d", 86400), ("h", 3600), ("min", 60), ("s", 1)]
    parts: list[str] = []
    for name, size in units:
        if total >= size or (name == "s" and not parts):
            amount, total = divmod(total, size)
            parts.append(f"{amount} {name}")
        if len(parts) == 2:
            break
    return " ".join(parts)


@never_cache
@staff_member_required
def dashboard(request: HttpRequest) -> HttpResponse:
    tenants = tenant_scope(request)  # the Django admin's scope: None for superusers
    if tenants is not None and not tenants:
        raise PermissionDenied(NO_TENANTS)
    return render(request, "ops/dashboard.html", dashboard_context(tenants=tenants))
