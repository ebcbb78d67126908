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

Here: the server and its two handlers. ``approvals.mcp.tools`` is what ``tools/list`` answers;
``approvals.mcp.answers`` is what the model reads back (a proposal's status, a refusal).
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
from approvals.api.errors import ApiError, retry_after_seconds
from approvals.mcp.answers import (
    NO_SUCH_PROPOSAL,
    OTHER_STATUS_TEXT,
    PENDING_TEXT,
    STATUS_TEXT,
    _error,
    _proposal_result,
    refusal,
)
from approvals.mcp.tools import GET_PROPOSAL, GET_PROPOSAL_TOOL, list_tools_for
from approvals.models import AgentCredential, Proposal, Status
from audit.services import Where

# What the listing (approvals.mcp.tools) and the answers (approvals.mcp.answers) define, importable from here.
__all__ = [
    "CALLER",
    "GET_PROPOSAL",
    "GET_PROPOSAL_TOOL",
    "NO_SUCH_PROPOSAL",
    "OTHER_STATUS_TEXT",
    "PENDING_TEXT",
    "SERVER",
    "STATUS_TEXT",
    "Caller",
    "build_server",
    "call_tool",
    "get_proposal",
    "list_tools_for",
    "refusal",
]


@dataclass(frozen=True)
class Caller:
    """Who is calling, set by the HTTP door for the request it serves."""

    agent: AgentCredential
    where: Where
    base_url: str


CALLER: ContextVar[Caller] = ContextVar("acme_mcp_caller")


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
