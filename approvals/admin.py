from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from approvals.models import (
    AgentCredential,
    Decision,
    Membership,
    OutboxMessage,
    Proposal,
    Receipt,
    Tenant,
    UserToken,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what happened: browsable, never editable."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role"]
    list_filter = ["tenant", "role"]
    list_select_related = ["user", "tenant"]
    autocomplete_fields = ["tenant"]


@admin.register(AgentCredential)
class AgentCredentialAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "token_prefix", "is_active", "last_used_at", "created_at"]
    list_filter = ["tenant", "is_active"]
    list_select_related = ["tenant"]
    readonly_fields = ["token_prefix", "last_used_at", "created_at"]
    fields = ["tenant", "name", "allowed_tools", "is_active", "token_prefix", "last_used_at", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens are issued by `manage.py create_agent`, which shows the token once


@admin.register(UserToken)
class UserTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "name", "token_prefix", "is_active", "last_used_at"]
    list_filter = ["is_active"]
    list_select_related = ["user"]
    readonly_fields = ["user", "name", "token_prefix", "last_used_at", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


class DecisionInline(admin.TabularInline):
    model = Decision
    extra = 0
    can_delete = False
    readonly_fields = ["verdict", "reviewer", "reason", "args_hash", "edited_from", "channel", "ip", "at"]
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Proposal)
class ProposalAdmin(ReadOnlyAdmin):
    list_display = ["id", "tenant", "tool", "status", "risk", "agent", "created_at"]
    list_filter = ["status", "tool", "risk", "tenant"]
    list_select_related = ["tenant", "agent"]
    search_fields = ["=id", "idempotency_key"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [DecisionInline]
    readonly_fields = [f.name for f in Proposal._meta.fields]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["proposal", "verdict", "reviewer", "channel", "ip", "at"]
    list_filter = ["verdict", "channel"]
    list_select_related = ["proposal", "reviewer"]
    show_full_result_count = False


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyAdmin):
    list_display = ["external_id", "system", "proposal_link", "outside_link", "attempts", "committed_at"]
    list_filter = ["system"]
    list_select_related = ["proposal"]
    show_full_result_count = False

    @admin.display(description="proposal")
    def proposal_link(self, obj: Receipt) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:approvals_proposal_change", args=[obj.proposal_id]), obj.proposal_id)

    @admin.display(description="outside object")
    def outside_link(self, obj: Receipt) -> str:
        if not obj.external_url:
            return "-"
        return format_html('<a href="{}" rel="noopener">{}</a>', obj.external_url, obj.external_url)


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "payload", "available_at", "dispatched_at", "attempts"]
    list_filter = ["kind"]
    show_full_result_count = False
