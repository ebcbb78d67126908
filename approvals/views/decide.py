"""The reviewer's verdicts from the proposal page: approve, reject, request changes (each through
``approvals.services``)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from approvals import errors, services
from approvals.forms import ApproveForm, RejectForm, RequestChangesForm
from approvals.views.base import _forbidden, _person, _visible, _where
from approvals.views.review import _conflict, _review_context


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
