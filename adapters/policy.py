"""Policy hooks. Minimal for now: the agent's allowed tools. Issue 3 grows this into data-driven rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters.errors import PolicyDenied

if TYPE_CHECKING:
    from adapters.registry import Context, Risk, Tool


def check(tool: Tool, args: dict[str, Any], ctx: Context) -> Risk:
    if "*" not in ctx.allowed_tools and tool.name not in ctx.allowed_tools:
        raise PolicyDenied(
            policy="allowed_tools",
            detail=f"This agent may not use {tool.name}; it may use: {', '.join(ctx.allowed_tools) or 'no tools'}.",
        )
    return tool.risk
