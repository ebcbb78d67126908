"""Policy rules (ToolPolicy): the data the policy engine reads on every agent call; reviewer groups, the people
a rule routes a tool's proposals to."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin

from approvals.admin.base import PolicyToolFilter
from approvals.models import REVIEW_ROLES, Membership, ReviewerGroup, ToolPolicy
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
        "risk",
        "approvals_required",
        "review_group",
        "updated_at",
    ]
    list_filter = ["tenant", "enabled", PolicyToolFilter, "refuse_card_numbers"]
    list_editable = ["enabled"]
    list_select_related = ["tenant", "agent", "review_group"]
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
        (
            "Approvals",
            {
                "fields": ["risk", "approvals_required", "review_group"],
                "description": "Who approves and how many: a rule for the proposal's risk outranks every rule "
                "for every risk, then the most specific as above. A rule for one risk sets only these.",
            },
        ),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="agent", ordering="agent__name")
    def agent_or_all(self, obj: ToolPolicy) -> str:
        return obj.agent.name if obj.agent is not None else "every agent"


class ReviewerGroupForm(forms.ModelForm):
    def clean(self) -> dict[str, Any]:
        # The admin offers the viewer's tenants' people; a group takes only reviewers of its own tenant.
        data = super().clean() or {}
        tenant, members = data.get("tenant"), data.get("members")
        if tenant is not None and members:
            reviewers = set(
                Membership.objects.filter(tenant=tenant, role__in=list(REVIEW_ROLES)).values_list(
                    "user_id", flat=True
                )
            )
            outsiders = sorted(user.get_username() for user in members if user.pk not in reviewers)
            if outsiders:
                self.add_error("members", f"Not reviewers or admins of {tenant}: {', '.join(outsiders)}.")
        return data


@admin.register(ReviewerGroup)
class ReviewerGroupAdmin(TenantScopedAdmin):
    """A tenant's reviewer groups: a rule (ToolPolicy.review_group) routed to one lets only its members decide."""

    tenant_lookup = "tenant__slug"
    form = ReviewerGroupForm
    list_display = ["name", "tenant", "created_at"]
    list_filter = ["tenant"]
    list_select_related = ["tenant"]
    search_fields = ["name"]
    autocomplete_fields = ["tenant"]
    filter_horizontal = ["members"]
    readonly_fields = ["created_at"]
