"""The gateway's tools as an MCP server (the official ``mcp`` SDK's low-level ``Server``).

* ``tools/list``: the agent's own tools under their OpenAI-safe names (``crm_create_ticket``; MCP clients and
  the models behind them expect ``^[a-zA-Z0-9_-]{1,64}$`` names too), ``inputSchema`` from each tool's args
  contract, honest annotations, plus ``get_proposal``.
* ``tools/call`` of a write tool makes a proposal through ``services.proposal_submit``, exactly as ``POST
  /api/v1/proposals/`` does (the derived idempotency key makes an identical repeated call the same proposal)
  and returns at once with ``pending_approval``: a reviewer may take hours, and no client keeps a tool call
  open that long. The text tells the model not to retry and to call ``get_proposal``.
* ``tools/call`` of a read tool runs it (``reads.tool_read``) and returns its result.
* Refusals (invalid args, policy, rate limits, idempotency conflicts) are tool errors (``isError``) whose
  text is the REST API's own error body for the same call (``approvals.api.errors.exception_handler``), so
  the model reads the same words a REST client does, and can fix its call.

The handlers are coroutines (the SDK is anyio), but Django's ORM is synchronous: each handler runs its work
with ``sync_to_async(thread_sensitive=True)``, which under ``approvals.mcp.http`` is the WSGI request's own
thread (see there), with its own database connection.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError
from django.urls import reverse
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPError

from adapters import registry
from adapters.errors import UnknownTool
from approvals import reads, selectors, services, waiting
from approvals.api.errors import ApiError, exception_handler, retry_after_seconds
from approvals.models import AgentCredential, Proposal, Receipt, Status
from audit.services import Where

GET_PROPOSAL = "get_proposal"


@dataclass(frozen=True)
class Caller:
    """Who is calling, set by the HTTP door for the request it serves."""

    agent: AgentCredential
    where: Where
    base_url: str


CALLER: ContextVar[Caller] = ContextVar("acme_mcp_caller")

# What the model reads. Each tells it what to do next, in the terms of its own tools.
PENDING_TEXT = (
    "Proposal {id} was submitted and is waiting for a person to approve it; nothing has been done yet. "
    "Do not call {tool} again for this: an identical call returns this same proposal. Call get_proposal "
    'with {{"proposal_id": "{id}"}} (add "wait": 30 to wait up to 30 seconds for the decision) to learn '
    "whether it was approved and done. Review page: {review_url}"
)
STATUS_TEXT = {
    Status.PENDING: "Proposal {id} is still waiting for a reviewer. Call get_proposal again later "
    '(with "wait": 30 to wait for the decision).',
    Status.APPROVED: "Proposal {id} was approved and is being carried out. Call get_proposal again "
    "to see it committed.",
    Status.COMMITTING: "Proposal {id} was approved and is being carried out. Call get_proposal again "
    "to see it committed.",
    Status.COMMITTED: "Done: proposal {id} was approved and committed to {system} ({external_id}).",
    Status.REJECTED: "Proposal {id} was rejected by a reviewer. Reason: {reason}. Do not resubmit the same "
    "call: it would be refused again. Change what the reason asks for, or tell the user.",
    Status.CHANGES_REQUESTED: "A reviewer asked for changes to proposal {id} instead of approving it. "
    "Reason: {reason}. Nothing was done and this proposal is closed. Call the same tool again with the args "
    "corrected as the reason asks: the corrected call is a new proposal (a new key) for a person to approve. "
    "Repeating the old call unchanged only returns this proposal.",
    Status.CANCELLED: "Proposal {id} was cancelled; nothing was done.",
    Status.EXPIRED: "Proposal {id} expired before anyone decided on it; nothing was done. Propose it again "
    "only if it is still wanted.",
    Status.FAILED: "Proposal {id} was approved but could not be carried out: {reason}. Nothing more will "
    "happen unless an operator retries it.",
    Status.STALE: "Proposal {id} was approved, but its target changed before it was carried out, so nothing "
    "was done: {reason}. Propose it again against the current state if it is still wanted.",
}
OTHER_STATUS_TEXT = "Proposal {id} is {status}. {reason}"
NO_SUCH_PROPOSAL = "No proposal {id!r} of this agent. Pass the proposal_id a write tool returned."


def _write_description(tool: registry.Tool) -> str:
    return (
        f"{tool.description} Needs a person's approval: the call returns at once with a proposal_id "
        "(status pending_approval); call get_proposal to learn the decision."
    )


def _annotations(tool: registry.Tool) -> types.ToolAnnotations:
    """Hints, set honestly: a read changes nothing; a write is idempotent (an identical repeated call is the
    same proposal, never a second change) and destructive only if it changes what exists."""
    if not tool.requires_approval:
        return types.ToolAnnotations(
            title=tool.name, read_only_hint=True, open_world_hint=tool.system != "warehouse"
        )
    return types.ToolAnnotations(
        title=tool.name,
        read_only_hint=False,
        destructive_hint=tool.destructive,
        idempotent_hint=True,
        open_world_hint=True,
    )


GET_PROPOSAL_TOOL = types.Tool(
    name=GET_PROPOSAL,
    title="Get a proposal's status",
    description="The status of a proposal made by one of the write tools: pending (waiting for a person), "
    "approved, committed (done, with the receipt), rejected (with the reviewer's reason), changes_requested "
    "(the reviewer's reason: call the tool again with corrected args), or another final "
    "status. With wait (seconds, at most 30) it answers as soon as the proposal is decided.",
    input_schema={
        "type": "object",
        "properties": {
            "proposal_id": {"type": "string", "description": "The proposal_id a write tool returned."},
            "wait": {
                "type": "integer",
                "minimum": 0,
                "maximum": waiting.MAX_WAIT,
                "description": "Seconds to wait for a decision (0 to 30).",
            },
        },
        "required": ["proposal_id"],
        "additionalProperties": False,
    },
    annotations=types.ToolAnnotations(
        title="Get a proposal's status", read_only_hint=True, open_world_hint=False
    ),
)


def list_tools_for(agent: AgentCredential) -> list[types.Tool]:
    from approvals.api.views import tools_of

    listed = [
        types.Tool(
            name=tool.safe_name,
            title=tool.name,
            description=_write_description(tool) if tool.requires_approval else tool.description,
            input_schema=tool.parameters(),
            annotations=_annotations(tool),
        )
        for tool in tools_of(agent)
    ]
    return [*listed, GET_PROPOSAL_TOOL]


async def _list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=list_tools_for(CALLER.get().agent))


async def _call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    caller = CALLER.get()
    arguments = params.arguments or {}
    if params.name == GET_PROPOSAL:
        return await sync_to_async(get_proposal, thread_sensitive=True)(caller, arguments)
    try:
        tool = registry.get(params.name)
    except UnknownTool:
        raise MCPError(
            types.INVALID_PARAMS, f"Unknown tool {params.name!r}; tools/list names this agent's tools."
        ) from None
    return await sync_to_async(call_tool, thread_sensitive=True)(caller, tool, arguments)


def call_tool(caller: Caller, tool: registry.Tool, arguments: dict[str, Any]) -> types.CallToolResult:
    try:
        if tool.requires_approval:
            return _propose(caller, tool, arguments)
        result = reads.tool_read(agent=caller.agent, tool=tool.name, args=arguments, where=caller.where)
    except Exception as exc:
        refused = refusal(exc)
        if refused is None:
            raise
        return refused
    return types.CallToolResult(
        content=[types.TextContent(text=json.dumps(result, default=str))], structured_content=result
    )


def _propose(caller: Caller, tool: registry.Tool, arguments: dict[str, Any]) -> types.CallToolResult:
    wait = services.intake_allowed(tool=tool.name)
    if wait is not None:
        seconds = retry_after_seconds(wait)
        raise ApiError(
            429,
            "backpressure",
            f"The commit queue is backed up; retry in {seconds} seconds.",
            retry_after=seconds,
        )
    submitted = services.proposal_submit(
        agent=caller.agent, tool=tool.name, args=arguments, where=caller.where
    )
    proposal = submitted.proposal
    if proposal.status != Status.PENDING:
        # An identical call made earlier, already decided: say what became of it.
        return _proposal_result(caller, proposal)
    review_url = caller.base_url + reverse("proposal-review", kwargs={"pk": proposal.pk})
    body = {
        "status": "pending_approval",
        "proposal_id": str(proposal.pk),
        "review_url": review_url,
        "expires_at": proposal.expires_at.isoformat(),
    }
    text = PENDING_TEXT.format(id=proposal.pk, tool=tool.safe_name, review_url=review_url)
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=body)


def get_proposal(caller: Caller, arguments: dict[str, Any]) -> types.CallToolResult:
    raw_id, raw_wait = arguments.get("proposal_id"), arguments.get("wait", 0)
    if not isinstance(raw_wait, int) or isinstance(raw_wait, bool) or not 0 <= raw_wait <= waiting.MAX_WAIT:
        return _error({"error": "invalid_parameter", "detail": waiting.BAD_WAIT, "parameter": "wait"})

    def read() -> Proposal:
        try:
            return selectors.proposals_visible_to(caller.agent).get(pk=str(raw_id))
        except (Proposal.DoesNotExist, ValueError, TypeError, ValidationError):
            raise LookupError from None

    try:
        proposal = read()
        if raw_wait and not waiting.settled(proposal.status, since=proposal.status):
            try:
                proposal = waiting.wait(proposal.pk, seconds=raw_wait, read=read)
            except waiting.NoSlot:
                pass  # no room to wait in this process: the current state, at once
    except LookupError:
        return _error({"error": "not_found", "detail": NO_SUCH_PROPOSAL.format(id=str(raw_id)[:64])})
    return _proposal_result(caller, proposal)


def _proposal_result(caller: Caller, proposal: Proposal) -> types.CallToolResult:
    decision = proposal.decisions.select_related("reviewer").order_by("-at").first()
    receipt = None
    if proposal.status == Status.COMMITTED:
        try:
            stored = proposal.receipt
        except Receipt.DoesNotExist:
            stored = None
        if stored is not None:
            receipt = {
                "system": stored.system,
                "external_id": stored.external_id,
                "url": stored.external_url,
                "committed_at": stored.committed_at.isoformat(),
            }
    reason = (decision.reason if decision is not None and decision.reason else "") or proposal.status_reason
    body = {
        "status": proposal.status,
        "decision": decision.verdict if decision is not None else None,
        "reason": reason,
        "receipt": receipt,
        "proposal_id": str(proposal.pk),
        "tool": registry.safe_name(proposal.tool),
    }
    template = STATUS_TEXT.get(proposal.status, OTHER_STATUS_TEXT)  # type: ignore[call-overload]
    text = template.format(
        id=proposal.pk,
        status=proposal.status,
        reason=reason or "no reason given",
        system=(receipt or {}).get("system", ""),
        external_id=(receipt or {}).get("external_id", ""),
    )
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=body)


def refusal(exc: Exception) -> types.CallToolResult | None:
    """A refusal as a tool error, in the words (and the body) the REST API answers the same call with; None
    for what is not a refusal (a bug: the SDK answers it as an internal error)."""
    response = exception_handler(exc, {})
    if response is None or (response.status_code >= 500 and response.status_code not in (502, 503)):
        return None
    return _error(dict(response.data or {}))


def _error(body: dict[str, Any]) -> types.CallToolResult:
    lines = [str(body.get("detail", ""))]
    for error in body.get("errors", []) or []:
        where = ".".join(str(part) for part in error.get("loc", []))
        lines.append(f"- {where}: {error.get('msg', '')}" if where else f"- {error.get('msg', '')}")
    if body.get("retry_after"):
        lines.append(f"Retry after {body['retry_after']} seconds.")
    return types.CallToolResult(
        content=[types.TextContent(text="\n".join(lines))], structured_content=body, is_error=True
    )


def build_server() -> Server[Any]:
    server: Server[Any] = Server(
        "acme-integration-gateway",
        version="1",
        instructions="Tools of the ACME Integration Gateway. Read tools answer at once. Write tools never act "
        "directly: each call becomes a proposal that a person approves or rejects; the call returns a "
        "proposal_id at once, and get_proposal tells what became of it.",
        on_list_tools=_list_tools,
        on_call_tool=_call_tool,
    )
    return server


SERVER = build_server()
