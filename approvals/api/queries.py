"""``POST /api/v1/queries/`` (contract 5): a warehouse query plan in, one page of the caller's rows out.

Who may ask: an agent (its own tenant; the agent needs ``warehouse.query`` among its tools) or a person
with the reviewer or admin role. A person reviewing one tenant queries that tenant; a person reviewing
several must name it with a ``tenant`` field (a slug) next to the plan. ``GET`` lists the datasets and
their columns, so a plan can be grounded before it is sent.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import extend_schema, inline_serializer
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from adapters.registry import Context
from adapters.warehouse import schema
from adapters.warehouse.plan import Plan
from adapters.warehouse.service import max_limit, warehouse_query
from approvals import selectors
from approvals.api.errors import ApiError, query_errors
from approvals.api.views.base import ERROR, where
from approvals.models import AgentCredential, Tenant
from approvals.services import agent_actor, user_actor

NOT_A_REVIEWER = "Only agents and reviewers can query the warehouse."
NAME_THE_TENANT = 'You review several tenants; name one with a "tenant" field: {slugs}.'
NOT_YOUR_TENANT = "You cannot query tenant {slug}."


class QueryIn(Plan):
    """The plan, and for people who review several tenants, which one."""

    model_config = ConfigDict(title="WarehouseQuery")

    tenant: str | None = Field(default=None, description="A tenant slug; only for people reviewing several.")


class QueryOut(BaseModel):
    model_config = ConfigDict(title="WarehouseQueryResult")

    columns: list[str] = Field(description="Output names, in the order of the plan's select.")
    rows: list[list[JsonValue]] = Field(description="Values in the order of columns; date-times in ISO 8601.")
    next_cursor: str | None = Field(
        description="Send it back as cursor, with the same plan, for the next page."
    )
    truncated: bool = Field(description="True when more rows follow (next_cursor is set).")


def _oas30(node: Any) -> Any:
    """pydantic writes JSON Schema 2020-12 (``anyOf: [X, {"type": "null"}]``); the API document is OpenAPI
    3.0, which says ``nullable: true`` instead."""
    if isinstance(node, list):
        return [_oas30(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _oas30(v) for k, v in node.items()}
    options = node.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        node.pop("anyOf")
        if len(rest) == 1:
            node.update({"allOf": rest} if "$ref" in rest[0] else rest[0])
        else:
            node["anyOf"] = rest
        node["nullable"] = True
    return node


class _PlanDocs(OpenApiSerializerExtension):
    """The request and response models in the OpenAPI document, from their pydantic JSON Schema."""

    target_class = "approvals.api.queries.QueryIn"
    priority = 1

    def get_name(self, auto_schema: Any, direction: Any) -> str:
        return str(self.target.model_config.get("title") or self.target.__name__)

    def map_serializer(self, auto_schema: Any, direction: Any) -> Any:
        document = _oas30(self.target.model_json_schema(ref_template="#/components/schemas/{model}"))
        for name, sub in document.pop("$defs", {}).items():
            auto_schema.registry.register_on_missing(
                ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=sub)
            )
        return document


class _ResultDocs(_PlanDocs):
    target_class = "approvals.api.queries.QueryOut"


CATALOGUE = inline_serializer(
    "WarehouseCatalogue",
    fields={
        "datasets": serializers.DictField(child=serializers.DictField()),
        "max_limit": serializers.IntegerField(),
    },
)


def _tenant_of(request: Request, requested: Any) -> Tenant:
    principal: Any = request.user
    if requested is not None and not isinstance(requested, str):
        raise ApiError(
            400,
            "invalid_query",
            "tenant must be a tenant's slug (a string).",
            errors=[{"loc": ["tenant"], "msg": "must be a string", "type": "string_type"}],
        )
    if isinstance(principal, AgentCredential):
        if requested not in (None, principal.tenant.slug):
            raise ApiError(403, "forbidden", NOT_YOUR_TENANT.format(slug=repr(requested)[:70]))
        return principal.tenant
    tenants = list(Tenant.objects.filter(id__in=selectors.reviewer_tenant_ids(principal)).order_by("slug"))
    if not tenants:
        raise ApiError(403, "forbidden", NOT_A_REVIEWER)
    if requested is not None:
        for tenant in tenants:
            if tenant.slug == requested:
                return tenant
        raise ApiError(403, "forbidden", NOT_YOUR_TENANT.format(slug=repr(requested)[:70]))
    if len(tenants) > 1:
        slugs = [t.slug for t in tenants]
        raise ApiError(
            400,
            "invalid_query",
            NAME_THE_TENANT.format(slugs=", ".join(slugs)),
            allowed=slugs,
            errors=[{"loc": ["tenant"], "msg": "required", "type": "missing"}],
        )
    return tenants[0]


def _context(request: Request, tenant: Tenant) -> tuple[Context, Any]:
    principal: Any = request.user
    if isinstance(principal, AgentCredential):
        tools = tuple(principal.allowed_tools or ())
        return Context(tenant=tenant.slug, agent=principal.name, allowed_tools=tools), agent_actor(principal)
    return Context(tenant=tenant.slug), user_actor(principal)


class QueriesView(APIView):
    @extend_schema(
        request=QueryIn,
        responses={200: QueryOut, 400: ERROR, 401: ERROR, 403: ERROR, 429: ERROR},
        summary="Run a warehouse query plan (never SQL) over the caller's tenant's rows.",
        description="400 `invalid_query` names what is unknown and lists what is allowed (`allowed`); "
        "`query_too_expensive` and `query_timeout` are the quotas. Pages: send `next_cursor` back as `cursor`.",
    )
    def post(self, request: Request) -> Response:
        body = request.data
        if not isinstance(body, dict):
            raise ApiError(
                400,
                "invalid_query",
                "The query plan must be a JSON object.",
                errors=[{"loc": [], "msg": "must be a JSON object", "type": "dict_type"}],
            )
        body = dict(body)
        tenant = _tenant_of(request, body.pop("tenant", None))
        ctx, actor = _context(request, tenant)
        with query_errors():
            page = warehouse_query(raw_plan=body, ctx=ctx, actor=actor, where=where(request))
        return Response(page)

    @extend_schema(
        responses={200: CATALOGUE, 401: ERROR},
        summary="The datasets and columns a query plan may name (introspected from the warehouse).",
    )
    def get(self, request: Request) -> Response:
        return Response({"datasets": schema.current().describe(), "max_limit": max_limit()})
