"""The reviewer's web UI (placeholder until the inbox lands): the review page agents link to."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from approvals import selectors
from approvals.models import Proposal


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    proposals = selectors.proposal_list(principal=request.user)[:50]
    return render(request, "approvals/inbox.html", {"proposals": proposals})


@login_required
def proposal_review(request: HttpRequest, pk: Any) -> HttpResponse:
    try:
        proposal = selectors.proposals_visible_to(request.user).get(pk=pk)
    except Proposal.DoesNotExist:
        raise Http404 from None
    return render(request, "approvals/proposal.html", {"proposal": proposal})
