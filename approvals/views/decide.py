"""The reviewer's verdicts from the proposal page: approve, reject, request changes (each through
``approvals.services``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from approvals import errors, services
from approvals.forms import ApproveForm, RejectForm, RequestChangesForm
from approvals.models import Proposal, Status
from approvals.views.base import _forbidden, _person, _visible, _where
from approvals.views.review import _conflict, _review_context, quorum

APPROVED = "Approved. A worker is committing it now."
RECORDED = "Your approval is recorded: {count} of {required} approvals. It is committed once {missing} more {who} it."


def approved_message(proposal: Proposal, done: str = APPROVED) -> str:
    """What the reviewer is told after approving: ``done``, or, while the proposal's quorum is not met yet
    (it is still pending), that their approval is recorded and how many more it needs."""
    state = quorum(proposal) if proposal.status == Status.PENDING else None
    if state is None:
        return done
    missing = state["missing"]
    return RECORDED.format(
        count=state["count"],
        required=state["required"],
        missing=missing,
        who="reviewers approve" if missing > 1 else "reviewer approves",
    )


# One verdict on one proposal, from the form's cleaned data; returns the sentence shown after it.
Act = Callable[[Proposal, dict[str, Any]], str]


def _verdict(request: HttpRequest, pk: Any, form_class: type[Form], form_name: str, act: Act) -> HttpResponse:
    """What every verdict view does around its service call: the visible proposal, its form (an invalid one
    shows the page again, 400, with the form's errors under ``form_name``), the service's refusals as the
    403 page or the page again with a 409, and after a verdict the page with its message."""
    proposal = _visible(request, pk)
    form = form_class(request.POST)
    if not form.is_valid():
        context = _review_context(request, proposal, **{form_name: form})
        return render(request, "approvals/proposal.html", context, status=400)
    try:
        done = act(proposal, form.cleaned_data)
    except errors.NotAllowed as exc:
        return _forbidden(request, exc.detail)
    except (errors.AgentRevoked, errors.AlreadyApproved, errors.ArgsChanged) as exc:
        return _conflict(request, pk, exc.detail)
    except errors.InvalidTransition:
        return _conflict(request, pk)
    messages.success(request, done)
    return redirect("proposal-review", pk=pk)


@login_required
@require_POST
def proposal_approve(request: HttpRequest, pk: Any) -> HttpResponse:
    def act(proposal: Proposal, data: dict[str, Any]) -> str:
        approved = services.proposal_approve(
            proposal=proposal,
            reviewer=_person(request),
            where=_where(request),
            comment=data["comment"],
            args_hash=data["args_hash"] or None,
        )
        return approved_message(approved)

    return _verdict(request, pk, ApproveForm, "approve_form", act)


@login_required
@require_POST
def proposal_reject(request: HttpRequest, pk: Any) -> HttpResponse:
    def act(proposal: Proposal, data: dict[str, Any]) -> str:
        services.proposal_reject(
            proposal=proposal, reviewer=_person(request), reason=data["reason"], where=_where(request)
        )
        return "Rejected. The agent will see your reason."

    return _verdict(request, pk, RejectForm, "reject_form", act)


@login_required
@require_POST
def proposal_request_changes(request: HttpRequest, pk: Any) -> HttpResponse:
    def act(proposal: Proposal, data: dict[str, Any]) -> str:
        services.proposal_request_changes(
            proposal=proposal, reviewer=_person(request), reason=data["reason"], where=_where(request)
        )
        return "Changes requested. The agent will read your reason and propose a corrected call."

    return _verdict(request, pk, RequestChangesForm, "changes_form", act)
