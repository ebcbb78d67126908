"""Policy rows to engine data: the context an agent's submission (and a reviewer's edit of it) is checked in,
and the approval rule a proposal snapshots from it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from adapters import policy, registry
from approvals.models import (
    AgentCredential,
    Proposal,
    ToolPolicy,
)
from audit.prepared import Param, PreparedRead

_RULE_COLUMNS = (
    "name",
    "tool",
    "agent_id",
    "allowed_fields",
    "max_per_hour",
    "max_items",
    "refuse_card_numbers",
    "risk_override",
    "allow_slack_markup",
    "risk",
    "approvals_required",
    "review_group_id",
)


# Compiled once (audit.prepared): read on every submission, it cost more to build than to run.
_RULES = PreparedRead(
    lambda agent_id, tenant_id: (
        ToolPolicy.objects.filter(
            Q(agent_id=agent_id) | Q(agent__isnull=True), tenant_id=tenant_id, enabled=True
        )
        .order_by("pk")
        .values(*_RULE_COLUMNS)
    ),
    agent_id=Param.INT,
    tenant_id=Param.INT,
)


def agent_policy_rules(agent: AgentCredential) -> tuple[policy.PolicyRule, ...]:
    """The enabled rules that may apply to this agent (its own and its tenant's), as the engine's plain data.
    Read on every call, so an admin's edit applies to the next request."""
    # The columns the engine reads, as dicts: no model instances to build on every call.
    rules = _RULES.rows(agent_id=agent.pk, tenant_id=agent.tenant_id)
    return tuple(
        policy.PolicyRule(
            name=rule["name"],
            tool=rule["tool"],
            agent=agent.name if rule["agent_id"] else "",
            allowed_fields=tuple(rule["allowed_fields"] or ()),
            max_per_hour=rule["max_per_hour"],
            max_items=rule["max_items"],
            refuse_cards=rule["refuse_card_numbers"],
            risk_override=rule["risk_override"] or None,
            allow_slack_markup=rule["allow_slack_markup"],
            risk=rule["risk"] or None,
            approvals_required=rule["approvals_required"],
            review_group=rule["review_group_id"],
        )
        for rule in rules
    )


def approval_fields(ctx: registry.Context, tool: str, risk: str) -> dict[str, Any]:
    """The proposal's snapshot of its approval rule (``adapters.policy.approval_rule``): what ``Proposal``
    stores at submit, and again when a reviewer's edit changes the risk."""
    rule = policy.approval_rule(tool, ctx, risk)  # type: ignore[arg-type]
    return {
        "approvals_required": rule.approvals_required,
        "review_group_id": rule.review_group,
        "approval_rule": "" if rule is policy.DEFAULT_RULE else rule.name,
    }


def edit_context(agent: AgentCredential) -> registry.Context:
    """The context a reviewer's edit is checked in: the agent's contract and policy, without its hourly
    limit (that limit is the agent's, and the proposal under review already counts towards it)."""
    return replace(agent_context(agent), recent_count=None)


def agent_context(agent: AgentCredential) -> registry.Context:
    def recent_count(tool: str, seconds: int) -> int:
        # Every proposal counts, whatever became of it: a rejected one took a reviewer's time too. So does a
        # multi-step proposal with a step that runs this tool (a workflow's Slack post is a Slack post).
        since = timezone.now() - timedelta(seconds=seconds)
        return Proposal.objects.filter(
            agent=agent, tool__in=_tools_running(tool), created_at__gt=since
        ).count()

    return registry.Context(
        tenant=agent.tenant.slug,
        agent=agent.name,
        allowed_tools=tuple(agent.allowed_tools or ()),
        policy=agent_policy_rules(agent),
        recent_count=recent_count,
    )


def _tools_running(tool: str) -> list[str]:
    """``tool`` and every multi-step tool one of whose steps runs under it."""
    return [tool, *(t.name for t in registry.tools() if any(step.tool == tool for step in t.steps))]
