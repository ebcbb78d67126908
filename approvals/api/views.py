"""REST API (contract 3). Views are thin: validate input, call one service or selector, render.

One of three ``views.py``; this one is the REST API (JSON, bearer tokens; contract 3). The others --
``approvals/views.py``: the reviewers' web pages (HTML, session login); ``audit/views.py``: ``GET /metrics``
(Prometheus).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch
from django.http import Http404, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from adapters import registry
from approvals import reads, selectors, services, waiting
from approvals.api import serializers as s
from approvals.api.errors import ApiError, query_errors, retry_after_seconds
from approvals.models import AgentCredential, Decision, Proposal, Receipt, Status
from audit.services import Where
from audit.where import where_from

ERROR = inline_serializer(
    "Error",
    fields={"error": serializers.CharField(), "detail": serializers.CharField()},
)


def where(request: Request) -> Where:
    channel = (
        "web"
        if getattr(request, "successful_authenticator", None).__class__.__name__ == "SessionAuthentication"
        else "api"
    )
    return where_from(request, channel=channel)


def _valid(
    serializer_class: type[serializers.Serializer], data: Any, code: str = "invalid_request"
) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ApiError(
            400,
            code,
            "The request body must be a JSON object.",
            errors=[{"loc": [], "msg": "must be a JSON object", "type": "dict_type"}],
        )
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        from approvals.api.errors import _flatten

        raise ApiError(400, code, "The request body is not valid.", errors=_flatten(serializer.errors))
    return dict(serializer.validated_data)


def _require_agent(request: Request) -> AgentCredential:
    if not isinstance(request.user, AgentCredential):
        raise ApiError(403, "forbidden", "Only an agent token can do this.")
    return request.user


def _require_person(request: Request) -> Any:
    if isinstance(request.user, AgentCredential):
        raise ApiError(403, "forbidden", "Agents cannot decide on proposals; a reviewer must.")
    return request.user


def _get_visible(request: Request, pk: Any, *, to_decide: bool = False) -> Proposal:
    """The proposal if the caller may see it, else 404. ``to_decide``: only the row, for a service that reads
    it again under its lock and returns the proposal to answer with (no related rows to read here)."""
    visible = selectors.proposals_visible_to(request.user)
    if to_decide:
        visible = visible.select_related(None)
    try:
        return visible.get(pk=pk)
    except Proposal.DoesNotExist:
        raise Http404 from None


class ToolsView(APIView):
    # The catalogue holds no tenant data; an agent token narrows it to the tools that agent may use.
    permission_classes = [AllowAny]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "format",
                str,
                enum=["openai"],
                required=False,
                description="`openai` returns the function-calling shape.",
            )
        ],
        responses={
            200: OpenApiResponse(
                PolymorphicProxySerializer(
                    "ToolsList",
                    [s.ToolsOut, s.OpenAIFunction(many=True)],
                    resource_type_field_name=None,
                    many=False,
                ),
                description='`{"tools": [...]}`; with `?format=openai`, a list of OpenAI function definitions.',
            ),
            400: ERROR,
            401: ERROR,
        },
        summary="The tools an agent can use, with a JSON Schema for each one's args.",
    )
    def get(self, request: Request) -> Response:
        fmt = request.query_params.get("format")
        if fmt is not None and fmt != "openai":
            raise ApiError(400, "invalid_request", f"Unknown format {fmt[:50]!r}.", allowed=["openai"])
        tools = tools_of(request.user)
        if fmt == "openai":
            # OpenAI's function names allow no dots: the safe names, which the API accepts as well. A tool
            # whose args fit strict mode is published strict, its parameters in strict mode's subset.
            return Response(
                [
                    {
                        "type": "function",
                        "function": {
                            "name": t.safe_name,
                            "description": t.description,
                            "parameters": t.strict_parameters() if t.strict else t.parameters(),
                            "strict": t.strict,
                        },
                    }
                    for t in tools
                ]
            )
        return Response(
            {
                "tools": [
                    {
                        "name": t.name,
                        "safe_name": t.safe_name,
                        "kind": t.kind,
                        "description": t.description,
                        "parameters": t.parameters(),
                        "requires_approval": t.requires_approval,
                        "risk": t.risk,
                        "call": how_to_call(t, request),
                    }
                    for t in tools
                ]
            }
        )


def tools_of(principal: Any) -> list[registry.Tool]:
    """The tools ``principal`` may use: an agent's own list (either spelling), everything for others."""
    tools = registry.tools()
    if isinstance(principal, AgentCredential) and "*" not in (principal.allowed_tools or []):
        allowed = {registry.canonical(name) for name in principal.allowed_tools}
        tools = [t for t in tools if t.name in allowed]
    return tools


def how_to_call(tool: registry.Tool, request: Request) -> dict[str, str]:
    """How an agent calls ``tool``: a write is proposed (and waits for a reviewer), a read is called."""
    if tool.requires_approval:
        return {
            "how": "propose",
            "method": "POST",
            "url": request.build_absolute_uri(reverse("api-proposals")),
            "body": f'{{"tool": "{tool.name}", "args": {{...}}}}',
        }
    return {
        "how": "call",
        "method": "POST",
        "url": request.build_absolute_uri(reverse("api-tool-call", kwargs={"name": tool.name})),
        "body": '{"args": {...}}',
    }


class ToolCallView(APIView):
    @extend_schema(
        request=s.ToolCallIn,
        responses={
            200: s.ToolCallOut,
            400: ERROR,
            401: ERROR,
            403: ERROR,
            429: ERROR,
            502: ERROR,
            503: ERROR,
        },
        summary="Call a read tool at once (agents); a write tool is 400 `write_tool`: propose it.",
        description="Runs under the agent's tools, the tenant's policy, the tool's rate limits and the audit, "
        "like a proposal. `warehouse.query` takes the plan of `POST /api/v1/queries/` as its args. The tool "
        "may be named either way (`crm.get_customer` or `crm_get_customer`).",
    )
    def post(self, request: Request, name: str) -> Response:
        agent = _require_agent(request)
        data = _valid(s.ToolCallIn, request.data, code="invalid_args")
        with query_errors():
            result = reads.tool_read(agent=agent, tool=name, args=data["args"], where=where(request))
        return Response({"tool": registry.get(name).name, "result": result})


class StrictCursorPagination(CursorPagination):
    """A cursor that cannot be read is the client's mistake (400), not a missing resource (DRF says 404)."""

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ApiError(
                400,
                "invalid_request",
                "The cursor is not valid: send back a next/previous link as is.",
                errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value_error"}],
            ) from None


class ProposalPagination(StrictCursorPagination):
    # Keyset pagination: no COUNT(*), stable under inserts, fast at any depth.
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


def check_page_size(request: Request) -> None:
    """DRF's paginator silently ignores a page_size it cannot read; the document says it is an integer."""
    raw = request.query_params.get("page_size")
    if raw is not None and not (raw.isascii() and raw.isdigit() and 1 <= int(raw)):
        raise ApiError(
            400,
            "invalid_request",
            "page_size must be a positive integer.",
            errors=[{"loc": ["query", "page_size"], "msg": "a positive integer", "type": "int_type"}],
        )


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
        page = paginator.paginate_queryset(qs.prefetch_related(decisions, "saga_steps"), request, view=self)
        return paginator.get_paginated_response(s.proposals_out(page or [], request))

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
            # Just created: it has no decision, so the serializer need not ask the database.
            submitted.proposal.prefetched_decisions = []  # type: ignore[attr-defined]
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


@csrf_exempt  # it changes nothing; a POST to a wrong path must get this 404, not the CSRF page
def not_found(request: Any, path: str = "") -> JsonResponse:
    """Any path under /api/v1/ that names no endpoint (or an id that is not a UUID): the error shape, not the
    HTML 404 page of the reviewer UI."""
    return JsonResponse({"error": "not_found", "detail": "No such endpoint or object."}, status=404)
