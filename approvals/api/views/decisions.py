"""A reviewer's decision on one proposal: approve (optionally with edited args), reject, request changes."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import services
from approvals.api import serializers as s
from approvals.api.views.base import ERROR, _get_visible, _require_person, _valid, where


class ProposalApproveView(APIView):
    @extend_schema(
        request=s.ApproveIn,
        responses={
            202: s.ProposalOut,
            400: ERROR,
            401: ERROR,
            403: ERROR,
            404: ERROR,
            409: ERROR,
            502: ERROR,
            503: ERROR,
        },
        summary="Approve (optionally with edited args); the commit runs in the background.",
        description="409 `invalid_state` unless pending. With `args` (edit-then-approve) the edit is "
        "checked like a submission and previewed again: 409 `target_changed` when that "
        "fresh read of the target differs from the stored preview (nothing is approved).",
    )
    def post(self, request: Request, pk: Any) -> Response:
        proposal = _get_visible(request, pk, to_decide=True)
        reviewer = _require_person(request)
        # No body at all parses to an empty dict, and means "approve as proposed". Any body must be an
        # object: ``false``, ``0``, ``""``, ``[]`` or ``null`` are refused, never read as "no body".
        data = _valid(s.ApproveIn, request.data)
        approved = services.proposal_approve(
            proposal=proposal,
            reviewer=reviewer,
            where=where(request),
            comment=data.get("comment") or "",
            args=data.get("args"),
        )
        return Response(s.proposal_out(approved, request), status=202)


class ProposalRejectView(APIView):
    @extend_schema(
        request=s.RejectIn,
        responses={200: s.ProposalOut, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR},
        summary="Reject, with a reason.",
    )
    def post(self, request: Request, pk: Any) -> Response:
        proposal = _get_visible(request, pk, to_decide=True)
        reviewer = _require_person(request)
        data = _valid(s.RejectIn, request.data)
        rejected = services.proposal_reject(
            proposal=proposal, reviewer=reviewer, reason=data["reason"], where=where(request)
        )
        return Response(s.proposal_out(rejected, request))


class ProposalRequestChangesView(APIView):
    @extend_schema(
        request=s.RequestChangesIn,
        responses={200: s.ProposalOut, 400: ERROR, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR},
        summary="Ask the agent for a corrected call, with a reason (final: status changes_requested).",
    )
    def post(self, request: Request, pk: Any) -> Response:
        proposal = _get_visible(request, pk, to_decide=True)
        reviewer = _require_person(request)
        data = _valid(s.RequestChangesIn, request.data)
        asked = services.proposal_request_changes(
            proposal=proposal, reviewer=reviewer, reason=data["reason"], where=where(request)
        )
        return Response(s.proposal_out(asked, request))
