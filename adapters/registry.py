"""The tool registry: every tool is declared once and the rest of the product asks it.

The domain calls four functions and knows nothing else of the outside world:

* ``prepare(name, raw_args, ctx)`` -> ``Prepared``: validate (strict pydantic), normalize, apply
  policy, compute the preview. Raises ``UnknownTool``, ``InvalidArgs``, ``PolicyDenied``.
* ``execute(name, args, idempotency_key=..., snapshot=..., resumed=...)`` -> ``Outcome``: perform a write
  exactly as approved. Raises ``Deferred``, ``StaleTarget``, ``TransientFailure``, ``PermanentFailure``.
* ``read(name, raw_args, ctx)`` -> dict: run a read tool (no approval).
* ``tools()``: the declared tools, for ``GET /api/v1/tools/``.

Every tool also answers to its OpenAI-safe name (dots become underscores: ``crm_create_ticket``), because
OpenAI's function names must match ``^[a-zA-Z0-9_-]{1,64}$`` and MCP clients expect the same. ``get`` and
``canonical`` accept both spellings; everything stored (proposals, policies, audit) uses the dotted name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from pydantic import BaseModel, ValidationError

from adapters import connections, http, policy, preview_reads, ratelimit
from adapters.catalog import canonical, find, get, register, tools
from adapters.errors import InvalidArgs
from adapters.types import (
    SAFE_NAME,
    STRICT_FORMATS,
    STRICT_KEYWORDS,
    Context,
    Kind,
    Outcome,
    PolicyRule,
    Prepared,
    Preview,
    Risk,
    Step,
    Tool,
    safe_name,
)
from audit import metrics
from audit.tracing import span

# The shared types and the tool store live in adapters.types and adapters.catalog (so that adapters.policy
# needs neither this module nor a function-level import); callers keep importing them from here.
__all__ = [
    "SAFE_NAME",
    "STRICT_FORMATS",
    "STRICT_KEYWORDS",
    "Context",
    "Kind",
    "Outcome",
    "PolicyRule",
    "Prepared",
    "Preview",
    "Risk",
    "Step",
    "Tool",
    "args_hash",
    "canonical",
    "compensate_step",
    "execute",
    "find",
    "get",
    "prepare",
    "read",
    "register",
    "run_step",
    "safe_name",
    "tools",
    "validate",
]


def args_hash(args: dict[str, Any]) -> str:
    """Hash of normalized args: canonical JSON (sorted keys, no spaces), sha256 hex."""
    canonical = json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def validate(tool: Tool, raw_args: Any) -> BaseModel:
    with span("adapter.validate", tool=tool.name):
        return _validate(tool, raw_args)


def _message(error: Any) -> str:
    """The sentence for a person: a normalizer's own message as it wrote it (pydantic prefixes a ValueError's
    with "Value error, "), pydantic's for the rest."""
    raised = (error.get("ctx") or {}).get("error")
    return str(raised) if error["type"] == "value_error" and isinstance(raised, ValueError) else error["msg"]


def _validate(tool: Tool, raw_args: Any) -> BaseModel:
    if not isinstance(raw_args, dict):
        raise InvalidArgs(errors=[{"loc": ["args"], "msg": "must be a JSON object", "type": "dict_type"}])
    try:
        return tool.args_model.model_validate(raw_args)
    except ValidationError as exc:
        errors = [
            {"loc": ["args", *[str(p) for p in e["loc"]]], "msg": _message(e), "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise InvalidArgs(errors=errors) from None


def prepare(name: str, raw_args: Any, ctx: Context) -> Prepared:
    tool = get(name)
    model = validate(tool, raw_args)
    with span("adapter.map", tool=name):
        args = model.model_dump(mode="json", exclude_none=True)
    with span("adapter.policy", tool=name):
        risk = policy.check(tool, args, ctx)
    with span("adapter.preview", tool=name):
        if tool.preview is None:
            preview = Preview(summary=f"{tool.name}", changes=[])
        else:
            # Someone is waiting on this answer: a live read for the preview gets a short, total deadline
            # (a slow downstream is a 503 to retry, never a request hanging for the commit's retry budget).
            # The read goes to the tenant's own connection (adapters.connections).
            # The live read is labelled with its tool in /metrics (not tool="none").
            with (
                http.deadline(float(getattr(settings, "ACME_PREVIEW_DEADLINE", 2.0))),
                connections.using(ctx.tenant),
                metrics.tool_scope(name),
            ):
                if tool.reads_at_preview:
                    # Before the read, whatever becomes of the submission: a refused or failing one costs
                    # the outside system (and the shared token) a read all the same.
                    preview_reads.take(ctx, tool.reads_at_preview)
                if tool.preview_takes_context:
                    with_context: Callable[[BaseModel, Context], Preview] = tool.preview  # type: ignore[assignment]
                    preview = with_context(model, ctx)
                else:
                    preview = tool.preview(model)
    if preview.risk is not None and policy.RISK_ORDER[preview.risk] > policy.RISK_ORDER[risk]:
        risk = preview.risk
    return Prepared(tool=tool, args=args, args_hash=args_hash(args), risk=risk, preview=preview)


def execute(
    name: str,
    args: dict[str, Any],
    *,
    idempotency_key: str,
    snapshot: dict[str, Any] | None = None,
    tenant: str = "",
    resumed: bool = False,
) -> Outcome:
    """``resumed``: the caller ran this commit before (a worker died holding it, or an earlier run spent
    attempts), so the write may already be done; only tools that declare ``takes_resumed`` hear of it."""
    tool = get(name)
    if tool.execute is None:
        raise ValueError(f"{name} is not a write tool")
    # The tool scope labels the HTTP door's metrics with this tool; the span holds the mapping to the
    # outside system's payload and the call(s) it makes.
    with (
        metrics.tool_scope(name),
        span("adapter.execute", tool=name, system=tool.system),
        connections.using(tenant),
    ):
        model = validate(tool, args)
        # Rate limits (per tool / tenant / arg such as a Slack channel) are shared buckets in Redis; over the
        # limit raises Deferred before anything is sent, so the caller reschedules instead of failing.
        ratelimit.enforce(
            name,
            model.model_dump(mode="json", exclude_none=True),
            tenant=tenant,
            connection=_connection_key(tool),
        )
        if tool.takes_resumed:
            execute: Callable[..., Outcome] = tool.execute  # ``Tool.execute`` types the common signature
            return execute(model, idempotency_key, snapshot or {}, resumed=resumed)
        return tool.execute(model, idempotency_key, snapshot or {})


def read(name: str, raw_args: Any, ctx: Context) -> dict[str, Any]:
    tool = get(name)
    if tool.run is None:
        raise ValueError(f"{name} is not a read tool")
    model = validate(tool, raw_args)
    args = model.model_dump(mode="json", exclude_none=True)
    policy.check(tool, args, ctx)
    with connections.using(ctx.tenant):
        ratelimit.enforce(tool.name, args, tenant=ctx.tenant, connection=_connection_key(tool))
        with metrics.tool_scope(tool.name), span("adapter.read", tool=tool.name, system=tool.system):
            return tool.run(model, ctx)


def _connection_key(tool: Tool) -> str:
    """The current tenant's own connection to the tool's system ("" for the environment default): a rate
    limit's buckets are per connection, as a Slack workspace's channel limit is that workspace's."""
    if tool.system not in connections.SYSTEMS:
        return ""
    conn = connections.current(tool.system)
    return conn.key if conn.own else ""


def run_step(
    name: str,
    args: dict[str, Any],
    index: int,
    results: dict[str, dict[str, Any]],
    *,
    idempotency_key: str,
    tenant: str = "",
    snapshot: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one step of a multi-step tool on ``tenant``'s connections; ``snapshot``: the approved preview's."""
    tool = get(name)
    with connections.using(tenant), metrics.tool_scope(name):  # /metrics: the workflow's calls, by its name
        return tool.steps[index].run(validate(tool, args), results, idempotency_key, snapshot or {})


def compensate_step(
    name: str, args: dict[str, Any], index: int, result: dict[str, Any], *, tenant: str = ""
) -> bool:
    """Undo a step's write on ``tenant``'s connections; False when the step declares no compensation."""
    tool = get(name)
    step = tool.steps[index]
    if step.compensate is None:
        return False
    with connections.using(tenant), metrics.tool_scope(name):
        step.compensate(validate(tool, args), result)
    return True
