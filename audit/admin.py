from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "tenant", "actor_type", "actor_label", "action", "subject_type", "subject_id", "channel", "result"]
    list_filter = ["tenant", "action", "actor_type", "channel", "result"]
    search_fields = ["=subject_id", "=actor_label", "=decision_id", "=args_hash"]
    date_hierarchy = "at"
    show_full_result_count = False
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
