"""``tools/list``: the agent's own tools as MCP describes them (safe names, ``inputSchema`` from each tool's
args contract, honest annotations), plus ``get_proposal``."""

from __future__ import annotations

import mcp_types as types

from adapters import registry
from approvals import waiting
from approvals.models import AgentCredential

GET_PROPOSAL = "get_proposal"


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
