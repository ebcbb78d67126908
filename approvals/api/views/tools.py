"""The tool catalogue (``GET /api/v1/tools/``) and direct read calls (``POST /api/v1/tools/<name>/call/``)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from adapters import registry
from approvals import reads
from approvals.api import tool_serializers as ts
from approvals.api.errors import ApiError, query_errors
from approvals.api.views.base import ERROR, _require_agent, _valid, where
from approvals.models import AgentCredential


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
                    [ts.ToolsOut, ts.OpenAIFunction(many=True)],
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
        request=ts.ToolCallIn,
        responses={
            200: ts.ToolCallOut,
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
        data = _valid(ts.ToolCallIn, request.data, code="invalid_args")
        with query_errors():
            result = reads.tool_read(agent=agent, tool=name, args=data["args"], where=where(request))
        return Response({"tool": registry.get(name).name, "result": result})
