"""Proposals: list and submit (``/api/v1/proposals/``), one proposal (with ``?wait=``), cancel, receipt."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from adapters import registry
from approvals import rules, selectors, services, waiting
from approvals.api import serializers as s
from approvals.api.errors import ApiError, retry_after_seconds
from approvals.api.views.base import (
    ERROR,
    StrictCursorPagination,
    _get_visible,
    _require_agent,
    _valid,
    check_page_size,
    where,
)
from approvals.models import Decision, Receipt, Status


class ProposalPagination(StrictCursorPagination):
    # Keyset pagination: no COUNT(*), stable under inserts, fast at any depth.
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class ProposalListView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=Status.values, required=False),
            OpenApiParameter("tool", str, required=False),
            OpenApiParameter("cursor", str, required=False),
            OpenApiParameter(
                "page_size",
                {"type": "integer", "minimum": 1},
                required=False,
                description="1 to 200 (larger values mean 200).",
            ),
        ],
        responses={
            200: inline_serializer(
                "ProposalPage",
                fields={
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": s.ProposalOut(many=True),
                },
            ),
            400: ERROR,
            401: ERROR,
        },
        summary="Proposals the caller can see, newest first.",
        operation_id="proposals_list",
    )
    def get(self, request: Request) -> Response:
        status = request.query_params.get("status")
        if status is not None and status not in Status.values:
            raise ApiError(400, "invalid_request", f"Unknown status {status[:50]!r}.", allowed=Status.values)
        check_page_size(request)
        tool = request.query_params.get("tool") or None
        qs = selectors.proposal_list(
            principal=request.user, status=status, tool=registry.canonical(tool) if tool else None
        )
        paginator = ProposalPagination()
        decisions = Prefetch(
            "decisions",
            queryset=Decision.objects.select_related("reviewer").order_by("-at"),
            to_attr="prefetched_decisions",
        )
        page = (
            paginator.paginate_queryset(qs.prefetch_related(decisions, "saga_steps"), request, view=self)
            or []
        )
        counted = rules.counted_approvals_of(page)  # one query for the page, not one per proposal
        for proposal in page:
            proposal.prefetched_approvals = counted[proposal.pk]  # type: ignore[attr-defined]
        return paginator.get_paginated_response(s.proposals_out(page, request))

    @extend_schema(
        request=s.SubmitIn,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False)],
        responses={
            201: s.ProposalOut,
            200: s.ProposalOut,
            400: ERROR,
            401: ERROR,
            403: ERROR,
            409: ERROR,
            429: ERROR,
            502: ERROR,
            503: ERROR,
        },
        summary="Submit a proposal (agents).",
    )
    def post(self, request: Request) -> Response:
        agent = _require_agent(request)
        data = _valid(s.SubmitIn, request.data, code="invalid_args")
        wait = services.intake_allowed(tool=data["tool"])
        if wait is not None:
            seconds = retry_after_seconds(wait)
            raise ApiError(
                429,
                "backpressure",
                "The commit queue is backed up; retry later.",
                retry_after=seconds,
                headers={"Retry-After": str(seconds)},
            )
        on_behalf_of = None
        if data.get("on_behalf_of"):
            on_behalf_of = selectors.tenant_member(tenant=agent.tenant, username=data["on_behalf_of"])
            if on_behalf_of is None:
                raise ApiError(
                    400,
                    "invalid_args",
                    "on_behalf_of must be the username of a person in this tenant.",
                    errors=[
                        {
                            "loc": ["on_behalf_of"],
                            "msg": "unknown person in this tenant",
                            "type": "unknown_user",
                        }
                    ],
                )
        key = request.headers.get("Idempotency-Key")
        if key is not None and not (1 <= len(key) <= 255 and key.isprintable()):
            raise ApiError(
                400,
                "invalid_args",
                "Idempotency-Key must be 1 to 255 printable characters.",
                errors=[
                    {
                        "loc": ["header", "Idempotency-Key"],
                        "msg": "1 to 255 printable characters",
                        "type": "value_error",
                    }
                ],
            )
        submitted = services.proposal_submit(
            agent=agent,
            tool=registry.canonical(data["tool"]),
            args=data["args"],
            rationale=data.get("rationale") or "",
            on_behalf_of=on_behalf_of,
            idempotency_key=key,
            where=where(request),
        )
        if submitted.created:
            # Just created: it has no decision nor approval, so the serializer need not ask the database.
            submitted.proposal.prefetched_decisions = []  # type: ignore[attr-defined]
            submitted.proposal.prefetched_approvals = []  # type: ignore[attr-defined]
        body = s.proposal_out(submitted.proposal, request)
        if submitted.created:
            return Response(body, status=201, headers={"Location": body["links"]["self"]})
        return Response(body, status=200, headers={"Idempotent-Replayed": "true"})


class ProposalDetailView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "wait",
                {"type": "integer", "minimum": 0, "maximum": waiting.MAX_WAIT},
                required=False,
                description="Seconds (at most 30) to wait for news: a pending proposal is answered as soon as it "
                "is decided, an approved one as soon as it is final (committed, failed, stale). Without news, "
                "the current state when the time is up. When the server has no room for another wait it "
                "answers at once, with `Retry-After`.",
            )
        ],
        responses={200: s.ProposalOut, 400: ERROR, 401: ERROR, 404: ERROR},
        summary="One proposal.",
    )
    def get(self, request: Request, pk: Any) -> Response:
        try:
            seconds = waiting.parse_wait(request.query_params.get("wait"))
        except ValueError:
            raise ApiError(
                400,
                "invalid_parameter",
                waiting.BAD_WAIT,
                parameter="wait",
                errors=[{"loc": ["query", "wait"], "msg": "0 to 30", "type": "int_type"}],
            ) from None
        proposal = _get_visible(request, pk)
        if seconds and not waiting.settled(proposal.status, since=proposal.status):
            try:
                proposal = waiting.wait(proposal.pk, seconds=seconds, read=lambda: _get_visible(request, pk))
            except waiting.NoSlot:
                return Response(
                    s.proposal_out(proposal, request),
                    headers={"Retry-After": str(waiting.NO_SLOT_RETRY_AFTER)},
                )
        return Response(s.proposal_out(proposal, request))


class ProposalCancelView(APIView):
    @extend_schema(
        request=None,
        responses={200: s.ProposalOut, 401: ERROR, 403: ERROR, 404: ERROR, 409: ERROR},
        summary="Cancel a pending proposal (the agent that made it).",
    )
    def post(self, request: Request, pk: Any) -> Response:
        proposal = _get_visible(request, pk, to_decide=True)
        agent = _require_agent(request)
        cancelled = services.proposal_cancel(proposal=proposal, agent=agent, where=where(request))
        cancelled.prefetched_decisions = []  # type: ignore[attr-defined]  # it was pending: nobody decided
        return Response(s.proposal_out(cancelled, request))


class ProposalReceiptView(APIView):
    @extend_schema(
        responses={200: s.ReceiptOut, 401: ERROR, 404: ERROR}, summary="The receipt, once committed."
    )
    def get(self, request: Request, pk: Any) -> Response:
        proposal = _get_visible(request, pk)
        try:
            receipt = proposal.receipt
        except Receipt.DoesNotExist:
            raise ApiError(
                404, "not_found", f"No receipt: the proposal is {proposal.status}.", status=proposal.status
            ) from None
        return Response(s.ReceiptOut(receipt).data)
