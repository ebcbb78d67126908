"""What every reviewer page shares: the person, where the request came from, the proposal they may see, the
403 page."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from approvals import selectors
from approvals.models import Proposal
from audit.services import Where
from audit.where import where_from


def _person(request: HttpRequest) -> User:
    """The logged-in person (every view here is behind login_required)."""
    return cast(User, request.user)


def _where(request: HttpRequest) -> Where:
    return where_from(request, channel="web")


def _visible(request: HttpRequest, pk: Any) -> Proposal:
    """The proposal if this person may see it, else 404 (another tenant's proposal does not exist for them)."""
    try:
        return selectors.proposals_visible_to(request.user).get(pk=pk)
    except Proposal.DoesNotExist:
        raise Http404("No such proposal, or not one of your tenants'.") from None


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "403.html", {"message": message}, status=403)
