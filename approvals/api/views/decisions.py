"""A reviewer's decision on one proposal: approve (optionally with edited args), reject, request changes.

The three share one shape (``DecisionView.post``): the proposal the caller may see, a person (never an agent),
a body that must be a JSON object, one service call, the proposal JSON. Each names its body and its service.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import services
from approvals.api import serializers as s
from approvals.api.views.base import ERROR, _get_visible, _require_person, _valid, where
from approvals.models import Proposal, Status
from audit.services import Where

FINAL = {200: s.ProposalOut, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR}


# No docstring on purpose: drf-spectacular would publish it as every subclass's description.
class DecisionView(APIView):
    # One reviewer's decision on one proposal: ``body`` validates the request, ``decide`` calls the service.

    body: type[serializers.Serializer]

    def decide(self, proposal: Proposal, reviewer: Any, data: dict[str, Any], where: Where) -> Proposal:
        raise NotImplementedError

    def answer_status(self, decided: Proposal) -> int:
        return 200

    def post(self, request: Request, pk: Any) -> Response:
        proposal = _get_visible(request, pk, to_decide=True)
        reviewer = _require_person(request)
        # No body at all parses to an empty dict (approve: "as proposed"; reject and request changes then
        # miss their reason). Any body must be an object: ``false``, ``0``, ``""``, ``[]`` or ``null`` are
        # refused, never read as "no body".
        data = _valid(self.body, request.data)
        decided = self.decide(proposal, reviewer, data, where(request))
        return Response(s.proposal_out(decided, request), status=self.answer_status(decided))


@extend_schema_view(
    post=extend_schema(
        request=s.ApproveIn,
        responses={
            202: s.ProposalOut,
            200: s.ProposalOut,
            400: ERROR,
            401: ERROR,
            403: ERROR,
            404: ERROR,
            409: ERROR,
            502: ERROR,
            503: ERROR,
        },
        summary="Approve (optionally with edited args); the commit runs in the background.",
        description="202 when this approval decides the proposal (its quorum is met: the commit runs in the "
        "background); 200 when it is recorded and the proposal still waits for other reviewers "
        "(`approvals.missing`). 409 `already_approved` when you already approved these args; 403 "
        "`not_in_review_group` when it is routed to a group you are not in. 409 `args_changed` when `args_hash` "
        "is not the proposal's current one (another reviewer edited it since). 409 `invalid_state` unless "
        "pending. With `args` (edit-then-approve) the edit is checked like a submission and previewed again: "
        "409 `target_changed` when that fresh read of the target differs from the stored preview (nothing is "
        "approved); an edit restarts the count (the others approved other args).",
    )
)
class ProposalApproveView(DecisionView):
    body = s.ApproveIn

    def decide(self, proposal: Proposal, reviewer: Any, data: dict[str, Any], where: Where) -> Proposal:
        return services.proposal_approve(
            proposal=proposal,
            reviewer=reviewer,
            where=where,
            comment=data.get("comment") or "",
            args=data.get("args"),
            args_hash=data.get("args_hash"),
        )

    def answer_status(self, decided: Proposal) -> int:
        # 202: decided, the commit runs in the background. 200: the approval is recorded, the quorum is not
        # met yet (the proposal stays pending; its ``approvals`` say how many are missing).
        return 200 if decided.status == Status.PENDING else 202


@extend_schema_view(post=extend_schema(request=s.RejectIn, responses=FINAL, summary="Reject, with a reason."))
class ProposalRejectView(DecisionView):
    body = s.RejectIn

    def decide(self, proposal: Proposal, reviewer: Any, data: dict[str, Any], where: Where) -> Proposal:
        return services.proposal_reject(
            proposal=proposal, reviewer=reviewer, reason=data["reason"], where=where
        )


@extend_schema_view(
    post=extend_schema(
        request=s.RequestChangesIn,
        responses=FINAL,
        summary="Ask the agent for a corrected call, with a reason (final: status changes_requested).",
    )
)
class ProposalRequestChangesView(DecisionView):
    body = s.RequestChangesIn

    def decide(self, proposal: Proposal, reviewer: Any, data: dict[str, Any], where: Where) -> Proposal:
        return services.proposal_request_changes(
            proposal=proposal, reviewer=reviewer, reason=data["reason"], where=where
        )
