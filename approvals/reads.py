"""Direct reads (contract 7): a read tool runs at once for an agent, with no proposal and no reviewer.

``tool_read(agent=..., tool=..., args=..., where=...)`` is the one service behind ``POST
/api/v1/tools/{name}/call/`` and an MCP ``tools/call`` of a read tool. It runs the tool under everything a
proposal meets before it is stored: the agent's tools (its scopes), the tenant's policy rules, the tool's
rate limits (Redis buckets, per tenant and connection), the tenant's own connection; and it is audited
(``tool.read``; ``where.channel`` says which door). ``warehouse.query`` goes through ``warehouse_query``,
as ``POST /api/v1/queries/`` does: the same plan, the same cache and quotas, its own audit event.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import transaction

from adapters import errors as adapter_errors
from adapters import registry
from adapters.warehouse.service import warehouse_query
from approvals import errors, services
from approvals.models import AgentCredential
from audit import services as audit
from audit.services import Where

ACTION = "tool.read"
WRITE_TOOL = (
    "{tool} is a write tool: a reviewer must approve it. Propose it (POST /api/v1/proposals/ with "
    '"tool": "{tool}", or call it over MCP, which proposes it) instead of calling it directly.'
)
WAREHOUSE = "warehouse.query"


class WriteToolCalled(errors.DomainError):
    """A write tool called as a read: 400 ``write_tool``."""

    status = 400
    code = "write_tool"


def tool_read(*, agent: AgentCredential, tool: str, args: Any, where: Where) -> dict[str, Any]:
    """Run read tool ``tool`` (either spelling) with ``args`` for ``agent``; its result, JSON-able.

    Raises UnknownTool, WriteToolCalled, InvalidArgs, PolicyDenied, Deferred (rate limits, an open breaker),
    DownstreamError, and for ``warehouse.query`` the warehouse's QueryError refusals."""
    declared = registry.get(tool)
    if declared.requires_approval:
        raise WriteToolCalled(WRITE_TOOL.format(tool=declared.name), tool=declared.name)
    ctx = services.agent_context(agent)
    if declared.name == WAREHOUSE:
        # Audited by the warehouse itself (plan, rows, cache hit), exactly as /queries/ is.
        return warehouse_query(raw_plan=args, ctx=ctx, actor=services.agent_actor(agent), where=where)
    started = time.monotonic()
    try:
        result = registry.read(declared.name, args, ctx)
    except adapter_errors.InvalidArgs:
        _audit(agent, declared.name, args, where, started, "refused")
        raise
    except adapter_errors.PolicyDenied as exc:
        _audit(agent, declared.name, args, where, started, "denied", policy=exc.policy)
        raise
    except adapter_errors.Deferred as exc:
        _audit(agent, declared.name, args, where, started, "deferred", reason=exc.reason)
        raise
    except adapter_errors.DownstreamError:
        _audit(agent, declared.name, args, where, started, "failed")
        raise
    _audit(agent, declared.name, args, where, started, "ok")
    return result


def _audit(
    agent: AgentCredential, tool: str, args: Any, where: Where, started: float, result: str, **extra: Any
) -> None:
    # The args hash, never the args: a read's arguments (a customer's email) are personal data, and the
    # hash is enough to tell two reads apart or match one a caller names.
    hashed = registry.args_hash(args) if isinstance(args, dict) else ""
    with transaction.atomic():
        audit.record(
            tenant=agent.tenant.slug,
            actor=services.agent_actor(agent),
            action=ACTION,
            where=where,
            result=result,
            subject_type="tool",
            subject_id=tool,
            args_hash=hashed,
            data={"tool": tool, "duration_ms": round((time.monotonic() - started) * 1000, 1), **extra},
        )
