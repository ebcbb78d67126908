"""Tenants and who acts in them: tenants, memberships, agents' credentials, people's API tokens."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from approvals.models import AgentCredential, Membership, Tenant, UserToken
from audit.admin_scope import TenantScopedAdmin


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    tenant_lookup = "slug"
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]

    # Creating or deleting a tenant is the operator's: a tenant admin's new tenant would not be theirs.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.tenant_scope(request) is None and super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.tenant_scope(request) is None and super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None) -> list[str]:
        # A tenant's audit chain and its warehouse rows are keyed by its slug: a renamed tenant would leave
        # them behind, and a new tenant created under the old slug would inherit them. Set once, at creation.
        return ["slug"] if obj is not None else []


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    """Who is in a tenant, in which role. A tenant admin picks among the tenants they administer and the
    people already in them (new people come from ``create_reviewer`` or an operator)."""

    tenant_lookup = "tenant__slug"
    list_display = ["user", "tenant", "role", "slack_user_id"]
    search_fields = ["=slack_user_id"]
    list_filter = ["tenant", "role"]
    list_select_related = ["user", "tenant"]
    autocomplete_fields = ["tenant"]


@admin.register(AgentCredential)
class AgentCredentialAdmin(TenantScopedAdmin):
    tenant_lookup = "tenant__slug"
    list_display = ["name", "tenant", "token_prefix", "is_active", "last_used_at", "created_at"]
    list_filter = ["tenant", "is_active"]
    list_select_related = ["tenant"]
    readonly_fields = ["token_prefix", "last_used_at", "created_at"]
    fields = ["tenant", "name", "allowed_tools", "is_active", "token_prefix", "last_used_at", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens are issued by `manage.py create_agent`, which shows the token once

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Unticking "is_active" revokes the agent through the one service that does it: its pending proposals
        # are cancelled in the same transaction (the admin's), audited.
        from approvals import services
        from audit.where import where_from

        revoking = change and "is_active" in form.changed_data and not obj.is_active
        if revoking:
            obj.is_active = True  # the other edits are saved as they are; the service deactivates
        super().save_model(request, obj, form, change)
        if revoking:
            services.agent_deactivate(
                agent=obj,
                by=request.user,  # type: ignore[arg-type]
                where=where_from(request, channel="web"),
            )


@admin.register(UserToken)
class UserTokenAdmin(TenantScopedAdmin):
    # A token opens every tenant its person belongs to: a tenant admin sees the tokens of their tenants'
    # people and may switch off only those of people in none but their tenants, never a staff member's.
    tenant_lookup = "user__memberships__tenant__slug"
    list_display = ["user", "name", "token_prefix", "is_active", "last_used_at"]
    list_filter = ["is_active"]
    list_select_related = ["user"]
    readonly_fields = ["user", "name", "token_prefix", "last_used_at", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.user.is_staff and self.tenant_scope(request) is not None:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.tenant_scope(request) is None and super().has_delete_permission(request, obj)
