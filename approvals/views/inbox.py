"""The inbox: the proposals of this person's tenants, filtered, counted per status (capped) and paged by
keyset; and what its page polls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KT
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from adapters import registry
from approvals import selectors
from approvals.models import AgentCredential, Proposal, Risk, Status
from approvals.views.base import _person
from approvals.views.for_you import for_you_groups, quorum_rows

PAGE_SIZE = 50
# Status counts are exact up to here, then shown as "1000+" (see _status_counts).
COUNT_CAP = 1000


@dataclass(frozen=True)
class Filters:
    status: str = ""
    tool: str = ""
    agent: str = ""
    risk: str = ""

    @classmethod
    def from_query(cls, params: Any) -> Filters:
        """Unknown values are ignored rather than answered with an error page."""
        status = params.get("status", "")
        tool = registry.canonical(params.get("tool", ""))  # either spelling (crm_create_ticket)
        agent = params.get("agent", "")
        risk = params.get("risk", "")
        return cls(
            status=status if status in Status.values else "",
            tool=tool if tool in {t.name for t in registry.tools()} else "",
            agent=agent if agent.isdigit() else "",
            risk=risk if risk in Risk.values else "",
        )

    def apply(self, qs: QuerySet[Proposal]) -> QuerySet[Proposal]:
        """Every filter but the status (the status counts are per status of this selection)."""
        if self.tool:
            qs = qs.filter(tool=self.tool)
        if self.agent:
            qs = qs.filter(agent_id=int(self.agent))
        if self.risk:
            qs = qs.filter(risk=self.risk)
        return qs

    def query(self, **override: str) -> str:
        values = {
            "status": self.status,
            "tool": self.tool,
            "agent": self.agent,
            "risk": self.risk,
            **override,
        }
        return urlencode({k: v for k, v in values.items() if v})

    @property
    def any(self) -> bool:
        return bool(self.status or self.tool or self.agent or self.risk)


# Keyset pagination in two phases, each served by an index and none needing a COUNT:
#   "p" — pending, oldest first (the work queue): ``proposal_inbox`` (tenant, status, created_at);
#   "d" — everything else, newest first (the record): ``proposal_tenant_recent`` (tenant, -created_at, id).
# A cursor is "<phase>|<created_at ISO>|<id>" of the last row shown.


def _cursor(phase: str, proposal: Proposal) -> str:
    return f"{phase}|{proposal.created_at.isoformat()}|{proposal.pk}"


def _parse_cursor(raw: str) -> tuple[str, datetime, UUID] | None:
    try:
        phase, at, pk = raw.split("|")
        if phase not in ("p", "d"):
            return None
        parsed = datetime.fromisoformat(at)
        return phase, parsed, UUID(pk)
    except ValueError:
        return None


def _page(qs: QuerySet[Proposal], status: str, raw_cursor: str) -> tuple[list[Proposal], str]:
    """One page (at most two queries, each ``LIMIT page+1``: the extra row says whether there is a next)."""
    cursor = _parse_cursor(raw_cursor) if raw_cursor else None
    phases = [p for p in ("p", "d") if not status or (p == "p") == (status == Status.PENDING)]
    if cursor and cursor[0] == "d":
        phases = ["d"] if "d" in phases else []
    rows: list[tuple[str, Proposal]] = []
    for phase in phases:
        want = PAGE_SIZE + 1 - len(rows)
        if want <= 0:
            break
        after = cursor if cursor and cursor[0] == phase else None
        if phase == "p":
            part = qs.filter(status=Status.PENDING).order_by("created_at", "id")
            if after:
                part = part.filter(Q(created_at__gt=after[1]) | Q(created_at=after[1], id__gt=after[2]))
        else:
            part = (qs.filter(status=status) if status else qs.exclude(status=Status.PENDING)).order_by(
                "-created_at", "id"
            )
            if after:
                part = part.filter(Q(created_at__lt=after[1]) | Q(created_at=after[1], id__gt=after[2]))
        rows.extend((phase, p) for p in part[:want])
    next_cursor = ""
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        next_cursor = _cursor(*rows[-1])
    return [p for _, p in rows], next_cursor


def _status_counts(selection: QuerySet[Proposal]) -> dict[str, int]:
    """Rows per status, each counted only up to COUNT_CAP + 1, in one statement.

    A GROUP BY would read every row of the tenant on every page view (tens of ms at 100,000 proposals, and
    growing); a capped count reads at most COUNT_CAP + 1 index entries per status, however large the table.
    Past the cap the inbox says "1000+", which is all a reviewer needs from the count of committed ones.
    """
    parts: list[str] = []
    params: list[Any] = []
    for i, status in enumerate(Status.values):
        capped = selection.filter(status=status).order_by().values("pk")[: COUNT_CAP + 1]
        try:
            sql, sub_params = capped.query.sql_with_params()
        except EmptyResultSet:  # ``tenant_id IN ()``: a person in no tenant (e.g. a bare superuser)
            return dict.fromkeys(Status.values, 0)
        # ``sql`` is compiled by Django with placeholders; the values travel separately in ``params``.
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS c{i})")  # noqa: S608
        params.extend(sub_params)
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        row = cursor.fetchone()
    return dict(zip(Status.values, row, strict=True))


def _shown(count: int) -> str:
    return f"{COUNT_CAP}+" if count > COUNT_CAP else str(count)


def _total(counts: dict[str, int]) -> str:
    total = sum(min(n, COUNT_CAP) for n in counts.values())
    return f"{total}+" if any(n > COUNT_CAP for n in counts.values()) else str(total)


def _age(delta: timedelta) -> str:
    seconds = max(int(delta.total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return "just now"


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    scope = selectors.PersonScope.of(_person(request))
    filters = Filters.from_query(request.GET)
    selection = filters.apply(Proposal.objects.filter(scope.q(_person(request))))
    counts = _status_counts(selection)
    rows_qs = (
        selection.select_related("agent", "tenant", "review_group")
        .defer("args", "preview", "rationale", "status_reason", "agent__allowed_tools")
        .annotate(summary=KT("preview__summary"))
    )
    rows, next_cursor = _page(rows_qs, filters.status, request.GET.get("after", ""))
    now = timezone.now()
    for row in rows:
        row.age = _age(now - row.created_at)  # type: ignore[attr-defined]
    quorum_rows(rows)
    # "For you" heads the first page of the work queue (not of a page further on, nor of decided ones).
    show_for_you = (
        bool(scope.review) and not request.GET.get("after") and filters.status in ("", Status.PENDING)
    )
    for_you, for_you_count = for_you_groups(_person(request), selection) if show_for_you else ([], 0)
    agents = AgentCredential.objects.filter(tenant_id__in=scope.review + scope.requester).select_related(
        "tenant"
    )
    status_tabs = [
        {
            "value": s.value,
            "label": s.label,
            "count": _shown(counts[s.value]),
            "query": filters.query(status=s.value),
        }
        for s in Status
    ]
    return render(
        request,
        "approvals/inbox.html",
        {
            "rows": rows,
            "for_you": for_you,
            "for_you_count": for_you_count,
            "show_for_you": show_for_you,
            "filters": filters,
            "status_tabs": status_tabs,
            "total": _total(counts),
            "all_query": filters.query(status=""),
            "first_query": filters.query(),
            "next_query": filters.query(after=next_cursor) if next_cursor else "",
            "is_first_page": not request.GET.get("after"),
            # The tab's title counts what waits for this person (inbox.js keeps it current).
            "pending_count": _shown(
                counts[Status.PENDING]
                if not filters.any
                else _status_counts(Proposal.objects.filter(scope.q(_person(request))))[Status.PENDING]
            ),
            "tools": [t.name for t in registry.tools() if t.requires_approval],
            "agents": sorted(agents, key=lambda a: (a.tenant.slug, a.name)),
            "risks": Risk.values,
            "statuses": Status.choices,
            "many_tenants": len(scope.review) + len(scope.requester) > 1,
            "no_tenant": not (scope.review or scope.requester),
        },
    )


@login_required
@require_GET
def inbox_live(request: HttpRequest) -> JsonResponse:
    """What the inbox polls (inbox.js): the capped counts per status of the same selection as the page (so
    a new proposal or a decision changes them, and the page then reloads its list), and the pending count
    for the tab's title. The same capped counts the page reads: bounded however large the table."""
    scope = selectors.PersonScope.of(_person(request))
    filters = Filters.from_query(request.GET)
    counts = _status_counts(filters.apply(Proposal.objects.filter(scope.q(_person(request)))))
    mine = _status_counts(Proposal.objects.filter(scope.q(_person(request))))
    response = JsonResponse({"pending": _shown(mine[Status.PENDING]), "counts": counts})
    response["Cache-Control"] = "no-store"
    return response
