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

import copy
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from django.conf import settings
from pydantic import BaseModel, ValidationError

from adapters import connections, http
from adapters.errors import InvalidArgs, UnknownTool
from audit import metrics
from audit.tracing import span

if TYPE_CHECKING:
    from adapters.policy import PolicyRule

Kind = Literal["read", "write"]
Risk = Literal["low", "medium", "high"]


@dataclass(frozen=True)
class Context:
    """Who is asking, in plain data: the integration layer knows tenants and agents only by name."""

    tenant: str
    agent: str = ""
    allowed_tools: tuple[str, ...] = ("*",)
    # Policy rules as plain data (adapters.policy.PolicyRule); empty means the defaults.
    policy: tuple[PolicyRule, ...] = ()
    # Count of this agent's recent proposals for a tool (for rate policies), supplied by the caller.
    recent_count: Callable[[str, int], int] | None = None


@dataclass(frozen=True)
class Preview:
    summary: str
    changes: list[dict[str, Any]]
    # What the commit must find unchanged (e.g. {"updated_at": "..."} of a ticket); opaque to callers.
    snapshot: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # What the content itself warrants (e.g. a Slack message that pings a whole channel): the proposal's risk
    # is raised to it, never lowered. Not part of ``as_dict``: the proposal's own ``risk`` shows it.
    risk: Risk | None = None
    # The existing record a change is made to, as the reviewer needs to recognise it, read at the preview:
    # {"key", "system", "id", "title", "requester", "url", "read_at"}. ``key`` is the same for every proposal
    # touching that record (what flags two pending changes of one ticket). Never compared at commit.
    target: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "changes": self.changes,
            "snapshot": self.snapshot,
            "notes": self.notes,
            **({"target": self.target} if self.target else {}),
        }


@dataclass(frozen=True)
class Prepared:
    tool: Tool
    args: dict[str, Any]
    args_hash: str
    risk: Risk
    preview: Preview


@dataclass(frozen=True)
class Outcome:
    system: str
    external_id: str
    summary: dict[str, Any]
    attempts: int = 1
    url: str = ""
    # The write was found already applied (by an earlier attempt or run whose answer was lost) instead of
    # being done now: the receipt and the audit say so.
    reconciled: bool = False


@dataclass(frozen=True)
class Step:
    """One step of a multi-step tool. ``run(args, results, idempotency_key, snapshot)`` gets the results of
    the steps before it (by name) and the approved preview's snapshot (what the reviewer saw it would send),
    and returns its own result (JSON-able); ``compensate(args, result)`` undoes a write. ``tool``: the tool
    whose policy and rate limits the step runs under (a workflow is no way around them)."""

    name: str
    kind: Kind
    description: str
    run: Callable[[Any, dict[str, dict[str, Any]], str, dict[str, Any]], dict[str, Any]]
    compensate: Callable[[Any, dict[str, Any]], None] | None = None
    tool: str = ""


@dataclass(frozen=True)
class Tool:
    name: str
    kind: Kind
    description: str
    args_model: type[BaseModel]
    risk: Risk
    system: str
    # write tools: preview(args_model_instance) -> Preview (``preview(args, ctx)`` with ``preview_takes_context``,
    # for a preview that depends on the agent's policy); execute(args, idempotency_key, snapshot) -> Outcome
    preview: Callable[[BaseModel], Preview] | None = None
    preview_takes_context: bool = False
    # The outside system the preview reads live (e.g. "crm" for a ticket's diff): each such read is budgeted
    # per agent and per connection (adapters.preview_reads) before it is sent.
    reads_at_preview: str = ""
    execute: Callable[[BaseModel, str, dict[str, Any]], Outcome] | None = None
    # read tools: run(args_model_instance, ctx) -> dict
    run: Callable[[BaseModel, Context], dict[str, Any]] | None = None
    # multi-step tools (sagas): approved once as a whole, run step by step by the domain (see adapters.saga)
    steps: tuple[Step, ...] = ()
    # A write the outside system does not deduplicate by Idempotency-Key (a Zendesk PUT): its execute also
    # takes ``resumed`` (an earlier run of this commit may have sent it), to tell its write from another's.
    takes_resumed: bool = False
    # A write that changes or removes what exists (an update), not only adds (MCP's destructiveHint).
    destructive: bool = False
    # The tool's args fit OpenAI's strict mode (every field required, no union but with null): its
    # function definition is published with ``strict: true`` and ``strict_parameters()``.
    strict: bool = False

    @property
    def requires_approval(self) -> bool:
        return self.kind == "write"

    @property
    def safe_name(self) -> str:
        return safe_name(self.name)

    def parameters(self) -> dict[str, Any]:
        return self.args_model.model_json_schema()

    def strict_parameters(self) -> dict[str, Any]:
        """The parameters in the subset of JSON Schema that OpenAI's strict mode accepts (``STRICT_KEYWORDS``).
        A constraint strict mode cannot carry (a length) is said in the description instead; the args are
        still checked against ``parameters()`` when the call arrives."""
        return _strict(copy.deepcopy(self.parameters()))


# OpenAI's rule for function names (Chat Completions and Responses), which MCP clients follow too.
SAFE_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

# JSON Schema keywords OpenAI's strict mode supports (its Structured Outputs guide, "Supported schemas").
STRICT_KEYWORDS = frozenset(
    {
        "type",
        "description",
        "title",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "$defs",
        "$ref",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
    }
)
# Formats strict mode knows; another ``format`` is dropped (the server still checks it).
STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)

_REGISTRY: dict[str, Tool] = {}
_BY_SAFE_NAME: dict[str, str] = {}


def safe_name(name: str) -> str:
    """The OpenAI-safe spelling of a tool name: dots become underscores."""
    return name.replace(".", "_")


def register(tool: Tool) -> Tool:
    if tool.name in _REGISTRY:
        raise ValueError(f"tool {tool.name} declared twice")
    if not SAFE_NAME.match(tool.safe_name):
        raise ValueError(f"tool {tool.name}: {tool.safe_name!r} is not a valid function name")
    if tool.safe_name in _BY_SAFE_NAME or tool.safe_name in _REGISTRY:
        raise ValueError(f"tool {tool.name}: its safe name {tool.safe_name} is another tool's")
    _REGISTRY[tool.name] = tool
    _BY_SAFE_NAME[tool.safe_name] = tool.name
    return tool


def tools() -> list[Tool]:
    return sorted(_REGISTRY.values(), key=lambda t: t.name)


def canonical(name: str) -> str:
    """The dotted name of a tool named either way; any other string (``*``, an unknown name) as it is."""
    if name in _REGISTRY:
        return name
    return _BY_SAFE_NAME.get(name, name)


def get(name: str) -> Tool:
    try:
        return _REGISTRY[canonical(name)]
    except KeyError:
        raise UnknownTool(name=name, allowed=sorted(_REGISTRY)) from None


def _strict(node: Any) -> Any:
    if isinstance(node, list):
        return [_strict(n) for n in node]
    if not isinstance(node, dict):
        return node
    said: list[str] = []
    if "minLength" in node and node["minLength"] > 1:
        said.append(f"at least {node['minLength']} characters")
    if "maxLength" in node:
        said.append(f"at most {node['maxLength']} characters")
    if node.get("format") not in (None, *STRICT_FORMATS):
        said.append(f"format {node['format']}")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in STRICT_KEYWORDS or (key == "format" and value not in STRICT_FORMATS):
            continue
        if key in ("properties", "$defs"):
            out[key] = {name: _strict(sub) for name, sub in value.items()}
        else:
            out[key] = _strict(value)
    if said:
        out["description"] = (
            "; ".join([*([out["description"]] if out.get("description") else []), *said]) + "."
        )
    if out.get("type") == "object":
        out["additionalProperties"] = False
    return out


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
    from adapters import policy, preview_reads

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
    from adapters import ratelimit

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
    from adapters import policy

    tool = get(name)
    if tool.run is None:
        raise ValueError(f"{name} is not a read tool")
    from adapters import ratelimit

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
