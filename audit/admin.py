"""The audit trail in the admin: read-only, filterable, exportable, and fast on millions of rows.

Every filter is bounded: tenant and action list their values with an index skip scan, actor types,
channels and results are a fixed vocabulary, actor / tool / subject are typed in, dates use Django's
relative ranges (no ``date_hierarchy``: it scans for distinct years and months). The paginator never
counts past ``COUNT_CAP`` (audit.admin_tools). Exports stream the current filter's rows.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.urls import path

from audit.admin_scope import TenantScopedAdmin, tenant_scope
from audit.admin_tools import (
    EstimatedCountPaginator,
    IndexedValuesFilter,
    choices_filter,
    indexed_values_filter,
    input_filter,
    streaming_export,
)
from audit.models import AuditEvent

EXPORT_FIELDS = [
    "id",
    "at",
    "tenant",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "subject_type",
    "subject_id",
    "channel",
    "ip",
    "user_agent",
    "result",
    "decision_id",
    "args_hash",
    "data",
    "prev_hash",
    "hash",
]


class TenantFilter(IndexedValuesFilter):
    """The tenants that have events; a tenant admin is offered their own tenants only (no query)."""

    title = "tenant"
    parameter_name = "tenant"
    field = "tenant"

    def lookups(self, request: Any, model_admin: Any) -> Any:
        scope = tenant_scope(request)
        if scope is None:
            return super().lookups(request, model_admin)
        return [(slug, slug) for slug in sorted(scope)]


@admin.register(AuditEvent)
class AuditEventAdmin(TenantScopedAdmin):
    # Events are keyed by the tenant's slug (audit knows no Tenant model); events of no tenant ('') are
    # the operators'. The scope also bounds the CSV/JSON exports: both read this admin's queryset.
    tenant_lookup = "tenant"
    list_display = [
        "at",
        "tenant",
        "actor_type",
        "actor_label",
        "action",
        "tool",
        "status",
        "subject_type",
        "subject_id",
        "channel",
        "result",
    ]
    list_filter = [
        TenantFilter,
        indexed_values_filter("action", "action"),
        choices_filter("actor_type", "actor type", ["user", "agent", "system"]),
        input_filter("actor", "actor_label", "actor (name)", "username or agent name"),
        input_filter("tool", "data__tool", "tool", "e.g. crm.create_ticket"),
        input_filter("subject", "subject_id", "subject id", "proposal id"),
        ("at", admin.DateFieldListFilter),
        choices_filter("channel", "channel", ["api", "web", "worker", "cli"]),
        choices_filter("result", "result", ["ok", "denied", "error", "deferred", "stale"]),
    ]
    search_fields = ["=subject_id", "=actor_label", "=decision_id", "=args_hash"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = EstimatedCountPaginator
    list_per_page = 100
    readonly_fields = [f.name for f in AuditEvent._meta.fields]
    actions = ["export_csv", "export_json"]

    @admin.display(description="tool")
    def tool(self, obj: AuditEvent) -> str:
        return str((obj.data or {}).get("tool", "")) or "-"

    # A proposal's status after the event: with the event's data (status_reason, the fields the change saved,
    # a decision's verdict, a receipt), the history django-auditlog no longer keeps of proposals.
    @admin.display(description="status")
    def status(self, obj: AuditEvent) -> str:
        return str((obj.data or {}).get("status", "")) or "-"

    # --- append-only ------------------------------------------------------------------------------------
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # --- export -----------------------------------------------------------------------------------------
    @admin.action(description="Export selected events as CSV", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: Any) -> HttpResponseBase:
        return streaming_export(queryset.order_by("id"), EXPORT_FIELDS, "csv", "audit-events")

    @admin.action(description="Export selected events as JSON", permissions=["view"])
    def export_json(self, request: HttpRequest, queryset: Any) -> HttpResponseBase:
        return streaming_export(queryset.order_by("id"), EXPORT_FIELDS, "json", "audit-events")

    def get_urls(self) -> list[Any]:
        export = self.admin_site.admin_view(self.export_view)
        return [path("export/<str:fmt>/", export, name="audit_auditevent_export"), *super().get_urls()]

    def export_view(self, request: HttpRequest, fmt: str) -> HttpResponseBase:
        """Every event matching the changelist's current filters and search, streamed."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if fmt not in ("csv", "json"):
            return HttpResponse("format must be csv or json", status=400, content_type="text/plain")
        changelist = self.get_changelist_instance(request)
        queryset = changelist.get_queryset(request).order_by("id")
        return streaming_export(queryset, EXPORT_FIELDS, fmt, "audit-events")
