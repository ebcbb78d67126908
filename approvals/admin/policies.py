"""Policy rules (ToolPolicy): the data the policy engine reads on every agent call."""

from __future__ import annotations

from django.contrib import admin

from approvals.admin.base import PolicyToolFilter
from approvals.models import ToolPolicy
from audit.admin_scope import TenantScopedAdmin


@admin.register(ToolPolicy)
class ToolPolicyAdmin(TenantScopedAdmin):
    """Policy rules as data: an edit applies to the agent's next request (rules are read on every call)."""

    tenant_lookup = "tenant__slug"

    list_display = [
        "name",
        "tenant",
        "agent_or_all",
        "tool",
        "enabled",
        "max_per_hour",
        "max_items",
        "refuse_card_numbers",
        "risk_override",
        "updated_at",
    ]
    list_filter = ["tenant", "enabled", PolicyToolFilter, "refuse_card_numbers"]
    list_editable = ["enabled"]
    list_select_related = ["tenant", "agent"]
    search_fields = ["name", "tool", "description", "agent__name"]
    autocomplete_fields = ["tenant"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (
            None,
            {
                "fields": ["tenant", "agent", "tool", "name", "description", "enabled"],
                "description": "The most specific enabled rule applies, and only that one: this agent + this tool, "
                'then this agent + "*", then every agent + this tool, then every agent + "*".',
            },
        ),
        ("Limits (empty: no limit)", {"fields": ["allowed_fields", "max_items", "max_per_hour"]}),
        ("PII and risk", {"fields": ["refuse_card_numbers", "risk_override", "allow_slack_markup"]}),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="agent", ordering="agent__name")
    def agent_or_all(self, obj: ToolPolicy) -> str:
        return obj.agent.name if obj.agent is not None else "every agent"
