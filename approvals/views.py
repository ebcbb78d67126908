"""The reviewer's web UI: inbox, proposal page, approve / reject / edit-then-approve, live commit status.

Views stay thin: they read through scoped queries and change nothing themselves — every decision goes
through ``approvals.services`` (which locks the row, checks the status and the reviewer, and audits).

One of three ``views.py``; this one is the reviewers' web pages (HTML, session login). The others --
``approvals/api/views.py``: the REST API (JSON, bearer tokens; contract 3); ``audit/views.py``:
``GET /metrics`` (Prometheus).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core import signing
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Q, QuerySet
from django.db.models.fields.json import KT
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST

from adapters import errors as adapter_errors
from adapters import registry
from adapters.slack import messages as slack_messages
from approvals import errors, lifecycle, notifications, selectors, services
from approvals.forms import ApproveForm, ArgsForm, RejectForm, RequestChangesForm
from approvals.models import AgentCredential, Decision, Proposal, Receipt, Risk, Status
from approvals.reveal import reveal_json
from audit.models import AuditEvent
from audit.services import Where
from audit.where import where_from

PAGE_SIZE = 50
# Status counts are exact up to here, then shown as "1000+" (see _status_counts).
COUNT_CAP = 1000
ALREADY_DECIDED = "Nothing was done: this proposal is already {status}."
EDIT_EXPIRED = "The edit could not be confirmed (it was changed or is too old); please review it again."
# Statuses the live panel keeps polling for, and how often (ms): an approved proposal's commit is about to
# happen; a pending one may be decided meanwhile by another reviewer (or over the API), and the page must
# not keep offering a decision that is no longer possible.
POLL_MS = {Status.PENDING: 5000, Status.APPROVED: 1000, Status.COMMITTING: 1000}
EDIT_SALT = "approvals.edit"
EDIT_MAX_AGE = 3600


def _person(request: HttpRequest) -> User:
    """The logged-in person (every view here is behind login_required)."""
    return cast(User, request.user)


def _where(request: HttpRequest) -> Where:
    return where_from(request, channel="web")


# --- Inbox -----------------------------------------------------------------------------------------------


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
        selection.select_related("agent", "tenant")
        .defer("args", "preview", "rationale", "status_reason", "agent__allowed_tools")
        .annotate(summary=KT("preview__summary"))
    )
    rows, next_cursor = _page(rows_qs, filters.status, request.GET.get("after", ""))
    now = timezone.now()
    for row in rows:
        row.age = _age(now - row.created_at)  # type: ignore[attr-defined]
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


# --- Proposal page ---------------------------------------------------------------------------------------


def _visible(request: HttpRequest, pk: Any) -> Proposal:
    """The proposal if this person may see it, else 404 (another tenant's proposal does not exist for them)."""
    try:
        return selectors.proposals_visible_to(request.user).get(pk=pk)
    except Proposal.DoesNotExist:
        raise Http404("No such proposal, or not one of your tenants'.") from None


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def diff_rows(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Changes as the template shows them: kind ``added`` (nothing before), ``removed`` or ``changed``."""
    rows = []
    for change in changes:
        before, after = change.get("before"), change.get("after")
        kind = "added" if before is None else "removed" if after is None else "changed"
        rows.append(
            {
                "field": change.get("field", ""),
                "before": _display(before),
                "after": _display(after),
                "kind": kind,
            }
        )
    return rows


def _receipt(proposal: Proposal) -> Receipt | None:
    try:
        return proposal.receipt
    except Receipt.DoesNotExist:
        return None


def _refused_for_good(proposal: Proposal) -> bool:
    """A failed commit the outside system refused itself (its last outbound call, as the worker audited it,
    says ``permanent``): sent again it fails again, so no requeue is offered."""
    if proposal.status != Status.FAILED:
        return False
    last = (
        AuditEvent.objects.filter(
            subject_type="proposal", subject_id=str(proposal.pk), action="outbound.call"
        )
        .order_by("-id")
        .values_list("data", flat=True)
        .first()
    )
    return isinstance(last, dict) and last.get("permanent") is True


def _status_context(proposal: Proposal) -> dict[str, Any]:
    return {
        "proposal": proposal,
        "receipt": _receipt(proposal),
        "final": not lifecycle.is_live(proposal),
        "poll_ms": POLL_MS.get(Status(proposal.status), 0),
        "waiting": lifecycle.is_waiting(proposal),
        "refused_for_good": _refused_for_good(proposal),
        "is_workflow": _tool_is(proposal, lambda tool: tool.is_workflow),
    }


def _tool_is(proposal: Proposal, asked: Callable[[registry.Tool], bool]) -> bool:
    """What the registry says of the proposal's tool (its kind, its system), never guessed from its name;
    False for a tool no longer declared."""
    tool = registry.find(proposal.tool)
    return tool is not None and asked(tool)


# At most this many other pending proposals of the same record are listed on a review page.
CONFLICTS_SHOWN = 10


def _target(preview: dict[str, Any]) -> dict[str, Any] | None:
    """The record an update changes, as its preview read it (``adapters.registry.Preview.target``)."""
    target = preview.get("target")
    if not isinstance(target, dict) or not target.get("key"):
        return None
    read_at = target.get("read_at")
    return {**target, "read_at": parse_datetime(read_at) if isinstance(read_at, str) else None}


def _conflicts(proposal: Proposal, target: dict[str, Any] | None) -> list[Proposal]:
    """The tenant's other pending proposals that change the same record: approving one makes the others
    stale at their commit, so each page names the others."""
    if target is None:
        return []
    others = (
        Proposal.objects.filter(
            tenant_id=proposal.tenant_id, status=Status.PENDING, preview__target__key=target["key"]
        )
        .exclude(pk=proposal.pk)
        .select_related("agent")
        .order_by("created_at")
    )
    return list(others[:CONFLICTS_SHOWN])


def _review_context(request: HttpRequest, proposal: Proposal, **extra: Any) -> dict[str, Any]:
    can_review = selectors.may_review(_person(request), proposal.tenant_id)
    own = proposal.on_behalf_of_id is not None and proposal.on_behalf_of_id == request.user.pk
    decisions = list(Decision.objects.filter(proposal=proposal).select_related("reviewer").order_by("at"))
    events = list(
        AuditEvent.objects.filter(subject_type="proposal", subject_id=str(proposal.pk)).order_by("id")
    )
    for decision in decisions:
        decision.edits = diff_rows(decision.edited_from or [])  # type: ignore[attr-defined]
    preview = proposal.preview or {}
    target = _target(preview)
    return {
        **_status_context(proposal),
        "target": target,
        "conflicts": _conflicts(proposal, target),
        "summary": preview.get("summary") or proposal.tool,
        "changes": diff_rows(preview.get("changes") or []),
        "notes": preview.get("notes") or [],
        "is_message": _tool_is(proposal, lambda tool: tool.system == "slack"),
        # As Slack will show it: the characters as typed (escaped when sent), or links and mentions spelled
        # out where the policy let them through (the change table shows the exact text sent).
        "message_text": slack_messages.render(
            str((proposal.args or {}).get("text", "")),
            markup=(preview.get("snapshot") or {}).get("slack_markup") is True,
        ).display,
        # Every character outside printable ASCII as its marked escape: a homoglyph cannot pass for a letter.
        "args_json": reveal_json(proposal.args),
        "decisions": decisions,
        "events": events,
        "can_decide": proposal.status == Status.PENDING and can_review and not own,
        "own": own and proposal.status == Status.PENDING,
        "approve_form": extra.pop("approve_form", None) or ApproveForm(),
        "reject_form": extra.pop("reject_form", None) or RejectForm(),
        "changes_form": extra.pop("changes_form", None) or RequestChangesForm(),
        **extra,
    }


@login_required
@require_GET
def proposal_review(request: HttpRequest, pk: Any) -> HttpResponse:
    proposal = _visible(request, pk)
    return render(request, "approvals/proposal.html", _review_context(request, proposal))


@require_GET
def proposal_open(request: HttpRequest, pk: Any) -> HttpResponse:
    """The link in a reviewer's email: a valid signed token leads to the review page, which asks for a login
    like any page (the token logs nobody in); a forged, altered, expired or misdirected one is a 404."""
    if notifications.read_link(request.GET.get("t", ""), pk) is None:
        raise Http404("This link is not valid (altered or expired); open the proposal from your inbox.")
    return redirect("proposal-review", pk=pk)


@login_required
@require_GET
def proposal_status(request: HttpRequest, pk: Any) -> HttpResponse:
    """The live status panel alone (polled by review.js while the proposal is pending or being committed)."""
    proposal = _visible(request, pk)
    response = render(request, "approvals/_status.html", _status_context(proposal))
    response["Cache-Control"] = "no-store"
    return response


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "403.html", {"message": message}, status=403)


def _conflict(request: HttpRequest, pk: Any, reason: str = "") -> HttpResponse:
    proposal = _visible(request, pk)
    message = reason or ALREADY_DECIDED.format(status=proposal.status)
    return render(
        request, "approvals/proposal.html", _review_context(request, proposal, error=message), status=409
    )


@login_required
@require_POST
def proposal_approve(request: HttpRequest, pk: Any) -> HttpResponse:
    proposal = _visible(request, pk)
    form = ApproveForm(request.POST)
    if not form.is_valid():
        context = _review_context(request, proposal, approve_form=form)
        return render(request, "approvals/proposal.html", context, status=400)
    try:
        services.proposal_approve(
            proposal=proposal,
            reviewer=_person(request),
            where=_where(request),
            comment=form.cleaned_data["comment"],
        )
    except errors.NotAllowed as exc:
        return _forbidden(request, exc.detail)
    except errors.AgentRevoked as exc:
        return _conflict(request, pk, exc.detail)
    except errors.InvalidTransition:
        return _conflict(request, pk)
    messages.success(request, "Approved. A worker is committing it now.")
    return redirect("proposal-review", pk=pk)


@login_required
@require_POST
def proposal_reject(request: HttpRequest, pk: Any) -> HttpResponse:
    proposal = _visible(request, pk)
    form = RejectForm(request.POST)
    if not form.is_valid():
        context = _review_context(request, proposal, reject_form=form)
        return render(request, "approvals/proposal.html", context, status=400)
    try:
        services.proposal_reject(
            proposal=proposal,
            reviewer=_person(request),
            reason=form.cleaned_data["reason"],
            where=_where(request),
        )
    except errors.NotAllowed as exc:
        return _forbidden(request, exc.detail)
    except errors.InvalidTransition:
        return _conflict(request, pk)
    messages.success(request, "Rejected. The agent will see your reason.")
    return redirect("proposal-review", pk=pk)


@login_required
@require_POST
def proposal_request_changes(request: HttpRequest, pk: Any) -> HttpResponse:
    proposal = _visible(request, pk)
    form = RequestChangesForm(request.POST)
    if not form.is_valid():
        context = _review_context(request, proposal, changes_form=form)
        return render(request, "approvals/proposal.html", context, status=400)
    try:
        services.proposal_request_changes(
            proposal=proposal,
            reviewer=_person(request),
            reason=form.cleaned_data["reason"],
            where=_where(request),
        )
    except errors.NotAllowed as exc:
        return _forbidden(request, exc.detail)
    except errors.InvalidTransition:
        return _conflict(request, pk)
    messages.success(
        request, "Changes requested. The agent will read your reason and propose a corrected call."
    )
    return redirect("proposal-review", pk=pk)


# --- Edit, then approve ------------------------------------------------------------------------------------


@login_required
def proposal_edit(request: HttpRequest, pk: Any) -> HttpResponse:
    """Step 1 (GET): the args form. Step 2 (POST ``step=preview``): validate through the tool's contract and
    policy and show the edit as a diff. Step 3 (POST ``step=confirm``): approve exactly the previewed args."""
    proposal = _visible(request, pk)
    try:
        services.require_reviewer(proposal, _person(request))
    except errors.NotAllowed as exc:
        return _forbidden(request, exc.detail)
    if proposal.status != Status.PENDING:
        return _conflict(request, pk)
    tool = registry.get(proposal.tool)
    context: dict[str, Any] = {"proposal": proposal}
    step = request.POST.get("step") if request.method == "POST" else None
    if step == "confirm":
        return _edit_confirm(request, proposal, tool)
    if step == "preview":
        form = ArgsForm(tool, request.POST)
        form.is_valid()
        try:
            prepared = registry.prepare(proposal.tool, form.raw_args(), services.edit_context(proposal.agent))
        except adapter_errors.InvalidArgs as exc:
            form.add_contract_errors(exc.errors)
        except adapter_errors.PolicyDenied as exc:
            form.add_error(None, f"Refused by policy ({exc.policy}): {exc.detail}")
        except adapter_errors.DownstreamError as exc:
            # The preview of an update reads the live record: the outside system is down or refused the read.
            form.add_error(None, _downstream_message(exc))
            context["form"] = form
            return render(request, "approvals/edit.html", context, status=503)
        else:
            context.update(
                {
                    "prepared": prepared,
                    "edits": diff_rows(services.args_changes(proposal.args, prepared.args)),
                    "new_changes": diff_rows(prepared.preview.changes),
                    "new_notes": prepared.preview.notes,
                    # The snapshot is the state of the target this preview showed: the approval must find it
                    # unchanged (services.proposal_approve), or the reviewer approved a diff that no longer holds.
                    "signed_args": signing.dumps(
                        {
                            "pk": str(proposal.pk),
                            "from": proposal.args_hash,
                            "args": prepared.args,
                            "snapshot": prepared.preview.snapshot or {},
                        },
                        salt=EDIT_SALT,
                    ),
                    "args_json": reveal_json(prepared.args),
                    "approve_form": ApproveForm(initial={"comment": request.POST.get("comment", "")}),
                }
            )
        context["form"] = form
        return render(request, "approvals/edit.html", context, status=200 if "prepared" in context else 400)
    context["form"] = ArgsForm(tool, current=proposal.args)
    return render(request, "approvals/edit.html", context)


def _downstream_message(exc: adapter_errors.DownstreamError) -> str:
    return (
        f"The outside system could not be read to preview the edit ({exc}). Nothing was approved; try again."
    )


def _edit_confirm(request: HttpRequest, proposal: Proposal, tool: registry.Tool) -> HttpResponse:
    try:
        signed = signing.loads(request.POST.get("signed_args", ""), salt=EDIT_SALT, max_age=EDIT_MAX_AGE)
    except signing.BadSignature:
        signed = None
    if not signed or signed.get("pk") != str(proposal.pk) or signed.get("from") != proposal.args_hash:
        messages.error(request, EDIT_EXPIRED)
        return redirect("proposal-edit", pk=proposal.pk)
    form = ApproveForm(request.POST)
    comment = form.cleaned_data["comment"] if form.is_valid() else ""
    try:
        # The service re-validates the args through the same contract and policy, and records the edit.
        services.proposal_approve(
            proposal=proposal,
            reviewer=_person(request),
            where=_where(request),
            comment=comment,
            args=signed["args"],
            seen_snapshot=signed.get("snapshot"),
        )
    except errors.NotAllowed as exc:
        return _forbidden(request, exc.detail)
    except errors.AgentRevoked as exc:
        return _conflict(request, proposal.pk, exc.detail)
    except errors.InvalidTransition:
        return _conflict(request, proposal.pk)
    except (
        adapter_errors.InvalidArgs,
        adapter_errors.PolicyDenied,
        errors.TargetChanged,
        adapter_errors.DownstreamError,
    ) as exc:
        # The edit was checked again at the confirmation and failed: nothing was recorded. Back to the form
        # with the reviewer's edits, to preview them again.
        if isinstance(exc, errors.TargetChanged):
            text, status = exc.detail, 409
        elif isinstance(exc, adapter_errors.DownstreamError):
            text, status = _downstream_message(exc), 503
        else:
            text, status = f"The edit no longer passes the tool's checks: {exc}", 400
        messages.error(request, text)
        form_again = ArgsForm(tool, current=signed["args"])
        return render(
            request, "approvals/edit.html", {"proposal": proposal, "form": form_again}, status=status
        )
    messages.success(request, "Approved with your edits. A worker is committing it now.")
    return redirect("proposal-review", pk=proposal.pk)
