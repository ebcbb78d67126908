"""The integration layer's shared types: what a tool is, what it is given and what it answers.

Plain data only, with no behaviour that needs the rest of ``adapters``: the registry (``adapters.registry``,
``adapters.catalog``), the policy engine (``adapters.policy``) and every tool module import these, and this
module imports none of them, so the registry may use the policy engine without either importing the other
from inside a function. ``adapters.registry`` re-exports every name here (callers import them from there).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

Kind = Literal["read", "write"]
Risk = Literal["low", "medium", "high"]


@dataclass(frozen=True)
class PolicyRule:
    """One rule, as plain data. ``None`` limits and an empty ``allowed_fields`` mean "no limit"."""

    name: str
    tool: str = "*"  # a tool name, or "*" for every tool
    agent: str = ""  # an agent's name, or "" for every agent of the tenant
    allowed_fields: tuple[str, ...] = ()
    max_per_hour: int | None = None
    max_items: int | None = None
    refuse_cards: bool = True
    risk_override: Risk | None = None
    # Slack: send a message's links and mentions (<url|label>, <!channel>, <@U123>) as Slack formatting
    # instead of escaping them to literal text (the preview then spells them out and raises the risk).
    allow_slack_markup: bool = False
    # Approval rules: the risk this rule is for (None: every risk; a rule for one risk only says who approves
    # and how many), the approvals required, and the caller's id of the reviewer group that decides (opaque
    # here; None: any reviewer). See ``adapters.policy.approval_rule``.
    risk: Risk | None = None
    approvals_required: int = 1
    review_group: int | None = None

    @property
    def specificity(self) -> tuple[bool, bool]:
        # An agent's own rule outranks any tenant-wide rule; within each, a named tool outranks "*".
        return (self.agent != "", self.tool != "*")


@dataclass(frozen=True)
class Context:
    """Who is asking, in plain data: the integration layer knows tenants and agents only by name."""

    tenant: str
    agent: str = ""
    allowed_tools: tuple[str, ...] = ("*",)
    # Policy rules as plain data (``PolicyRule``, read by adapters.policy); empty means the defaults.
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
    # multi-step tools (sagas): approved once as a whole, run step by step by the domain (approvals.services.sagas)
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
    def is_workflow(self) -> bool:
        """A multi-step tool (a saga): its proposal shows its steps. Asked of the tool, never of its name."""
        return bool(self.steps)

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


def safe_name(name: str) -> str:
    """The OpenAI-safe spelling of a tool name: dots become underscores."""
    return name.replace(".", "_")


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
