"""Django's, django-auditlog's and django-rq's own admins, replaced under the tenant scope."""

from __future__ import annotations

from typing import Any

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.urls import URLPattern
from django_rq.admin import QueueAdmin
from django_rq.models import Dashboard

from audit.admin_scope import SuperuserOnlyAdmin, TenantScopedAdmin

# --- Django's and django-auditlog's own admins, under the same scoping --------------------------------------
# Registered by their apps (listed before this one in INSTALLED_APPS); replaced here so that no admin page
# escapes the tenant scope (tests/audit/test_admin_scope.py walks admin.site._registry).

User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)
admin.site.unregister(LogEntry)
if admin.site.is_registered(Dashboard):
    admin.site.unregister(Dashboard)


@admin.register(User)
class ScopedUserAdmin(TenantScopedAdmin, UserAdmin):  # type: ignore[type-arg]
    """People: a tenant admin sees the people of their tenants, read-only. Accounts (passwords, staff and
    superuser flags, groups, permissions) are changed by superusers only, so no tenant admin can raise
    anyone's rights, their own included, or take over the account of a person of another tenant."""

    tenant_lookup = "memberships__tenant__slug"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.tenant_scope(request) is None and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.tenant_scope(request) is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.tenant_scope(request) is None and super().has_delete_permission(request, obj)


@admin.register(Group)
class ScopedGroupAdmin(SuperuserOnlyAdmin, GroupAdmin):
    """Groups carry permissions across every tenant: superusers only."""


@admin.register(LogEntry)
class ScopedLogEntryAdmin(SuperuserOnlyAdmin, LogEntryAdmin):
    """django-auditlog's field history: superusers only. An entry is keyed by content type and primary key,
    with the changed values as text (a tenant's id, an agent's id...): mapping each back to one tenant would
    take a query per model and would miss rows deleted since. The append-only AuditEvent trail, scoped by
    tenant, is what tenant admins read."""


def _operators_only(view: Any) -> Any:
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        user = request.user
        if user.is_authenticated and user.is_staff and not user.is_superuser:
            raise PermissionDenied
        # Others meet django-rq's own check: the admin's login page, or its API token.
        return view(request, *args, **kwargs)

    return wrapped


@admin.register(Dashboard)
class ScopedQueueAdmin(SuperuserOnlyAdmin, QueueAdmin):
    """django-rq's queue pages: every tenant's jobs, with their arguments, and buttons that delete, requeue
    or empty them. Its views ask only for staff (``staff_member_required``), and tenant admins are staff:
    every one of its URLs is wrapped here to refuse anyone logged in who is not a superuser."""

    def get_urls(self) -> list[Any]:
        return [
            URLPattern(p.pattern, _operators_only(p.callback), p.default_args, p.name)
            if isinstance(p, URLPattern)
            else p
            for p in super().get_urls()
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)
