"""Bulk review (``POST /api/v1/proposals/bulk/``): one reviewer's verdict on several proposals, each decided
on its own by ``services.proposals_bulk_decide`` (every rule applies to each; see that module)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from approvals import services
from approvals.api import serializers as s
from approvals.api.views.base import ERROR, _require_person, _valid, where


class ProposalBulkView(APIView):
    @extend_schema(
        request=s.BulkIn,
        responses={200: s.BulkOut, 400: ERROR, 401: ERROR, 403: ERROR},
        summary="Approve or reject several proposals (reviewers): one result per proposal.",
        operation_id="proposals_bulk",
        description="Each proposal is decided alone, under every rule (group, quorum, state, expiry): an "
        "approval short of the quorum is `decided` and stays `pending`. With `args_hashes`, a proposal whose "
        "args changed since is skipped `args_changed`; an id you cannot see is skipped `not_found`.",
    )
    def post(self, request: Request) -> Response:
        reviewer = _require_person(request)
        data = _valid(s.BulkIn, request.data, code="invalid_args")
        results = services.proposals_bulk_decide(
            reviewer=reviewer,
            ids=data["ids"],
            verdict=data["verdict"],
            reason=data.get("reason") or "",
            args_hashes=data.get("args_hashes") or None,
            where=where(request),
        )
        return Response({"results": results})
