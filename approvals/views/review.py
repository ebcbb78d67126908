"""The proposal page: what the call will do (the preview's diff, the target, other pending changes of the
same record), its decisions and audit trail, the live status panel it polls, and the email link to it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET

from adapters import registry
from adapters.slack import messages as slack_messages
from approvals import lifecycle, notifications, rules, selectors
from approvals.forms import ApproveForm, RejectForm, RequestChangesForm
from approvals.models import Approval, Decision, Proposal, Receipt, Status
from approvals.reveal import reveal_json
from approvals.views.base import _person, _visible
from audit.models import AuditEvent

ALREADY_DECIDED = "Nothing was done: this proposal is already {status}."
# Statuses the live panel keeps polling for, and how often (ms): an approved proposal's commit is about to
# happen; a pending one may be decided meanwhile by another reviewer (or over the API), and the page must
# not keep offering a decision that is no longer possible.
POLL_MS = {Status.PENDING: 5000, Status.APPROVED: 1000, Status.COMMITTING: 1000}
# The snoozes the page offers (``approvals.views.triage.snooze_until``).
SNOOZES = {"1h": "1 hour", "4h": "4 hours", "tomorrow": "Until tomorrow 09:00"}


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


def quorum(proposal: Proposal, counted: Iterable[Approval] | None = None) -> dict[str, Any] | None:
    """How far the quorum is ("1 of 2 approvals") and who gave them (``rules.approvals_state``: the
    approvals on the current args; ``counted`` when a list already read them), for a proposal whose rule
    asks for more than one; None otherwise (one approval decides, as always)."""
    if proposal.approvals_required <= 1:
        return None
    state = rules.approvals_state(proposal, counted)
    return {**state, "count": len(state["given"]), "names": [a["by"] for a in state["given"]]}


def _status_context(proposal: Proposal) -> dict[str, Any]:
    return {
        "proposal": proposal,
        "quorum": quorum(proposal) if proposal.status == Status.PENDING else None,
        "review_group": proposal.review_group.name if proposal.review_group is not None else "",
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
    person = _person(request)
    can_review = selectors.may_review(person, proposal.tenant_id)
    own = proposal.on_behalf_of_id is not None and proposal.on_behalf_of_id == request.user.pk
    pending = proposal.status == Status.PENDING
    # Routed to a group this reviewer is not in: the page says so instead of offering a decision (which the
    # services would refuse, 403).
    outside_group = pending and can_review and not own and not rules.in_review_group(person, proposal)
    decisions = list(Decision.objects.filter(proposal=proposal).select_related("reviewer").order_by("at"))
    events = list(
        AuditEvent.objects.filter(subject_type="proposal", subject_id=str(proposal.pk)).order_by("id")
    )
    for decision in decisions:
        decision.edits = diff_rows(decision.edited_from or [])  # type: ignore[attr-defined]
    preview = proposal.preview or {}
    target = _target(preview)
    status = _status_context(proposal)
    return {
        **status,
        "you_approved": bool(status["quorum"]) and person.get_username() in status["quorum"]["names"],
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
        # rules.may_decide, with the review permission already read above.
        "can_decide": pending and can_review and not own and not outside_group,
        "own": own and pending,
        "outside_group": outside_group,
        # Snooze: whoever may decide. Reassign: its own page, which lists the tenant's reviewers and groups
        # (an admin outside the group may reassign; the service says who may).
        "can_reassign": pending and can_review,
        "snoozes": SNOOZES,
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


def _conflict(request: HttpRequest, pk: Any, reason: str = "") -> HttpResponse:
    proposal = _visible(request, pk)
    message = reason or ALREADY_DECIDED.format(status=proposal.status)
    return render(
        request, "approvals/proposal.html", _review_context(request, proposal, error=message), status=409
    )
