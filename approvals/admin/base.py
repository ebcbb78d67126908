"""What the approvals admins share: tool filters that cost no query, and the bases of the admins of large
tables (bounded cost per page) and of records (read-only)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from adapters import registry
from audit.admin_scope import TenantScopedAdmin
from audit.admin_tools import ChoicesFilter, EstimatedCountPaginator


class ToolFilter(ChoicesFilter):
    """Tools from the registry: a fixed list, no ``SELECT DISTINCT`` over a large table."""

    title = "tool"
    parameter_name = "tool"
    field = "tool"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [(tool.name, tool.name) for tool in registry.tools()]

    def queryset(self, request: Any, queryset: Any) -> Any:
        # A tool's safe name (crm_create_ticket) filters as its dotted name, under which it is stored.
        if self.value():
            return queryset.filter(**{self.field: registry.canonical(self.value() or "")})
        return queryset


class ProposalToolFilter(ToolFilter):
    field = "proposal__tool"


class PolicyToolFilter(ToolFilter):
    """A rule's tool: every tool, or "*"."""

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [("*", "* (every tool)"), *super().lookups(request, model_admin)]


class LargeTableAdmin(TenantScopedAdmin):
    """Bounded cost per page however large the table: no full COUNT, no facet counts."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER


class ReadOnlyAdmin(LargeTableAdmin):
    """Records of what happened: browsable, never editable."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
