"""Each tenant's own CRM and Slack connections, saved through ``connections.connection_set``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from adapters.forms import ConnectionForm
from adapters.models import Connection
from approvals.models import Tenant
from audit.admin_scope import TenantScopedAdmin


@admin.register(Connection)
class ConnectionAdmin(TenantScopedAdmin):
    """A tenant's own CRM or Slack. Tokens and signing secrets are write-only (adapters.forms): no list
    column, form field, history entry (Django's log names changed fields, never values) or export shows
    them, not even encrypted. Saved through ``connections.connection_set`` (validated, encrypted, audited)."""

    tenant_lookup = "tenant"
    form = ConnectionForm
    list_display = [
        "tenant",
        "system",
        "base_url",
        "review_channel",
        "team_id",
        "signing_secret_set",
        "updated_at",
    ]
    list_filter = ["system"]
    search_fields = ["tenant", "base_url"]
    fields = [
        "tenant",
        "system",
        "base_url",
        "review_channel",
        "token",
        "signing_secret",
        "clear_signing_secret",
    ]

    @admin.display(description="signing secret", boolean=True)
    def signing_secret_set(self, obj: Connection) -> bool:
        return obj.has_signing_secret

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # The slug is free text on the model (adapters knows no Tenant): offer the viewer's tenants only.
        if db_field.name == "tenant":
            tenants = Tenant.objects.order_by("slug").values_list("slug", flat=True)
            scope = self.tenant_scope(request)
            if scope is not None:
                tenants = tenants.filter(slug__in=sorted(scope))
            return forms.ChoiceField(choices=[(slug, slug) for slug in tenants], label="tenant")
        if db_field.name == "base_url":
            kwargs["assume_scheme"] = "https"  # a bare host means https (Django 6's default)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        return (
            form.instance
        )  # the form's save() writes (connection_set): done in save_model, after the checks

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        from approvals.services import user_actor
        from audit.where import where_from

        self.check_tenant_of_unsaved(request, obj)
        form.actor = user_actor(request.user)  # type: ignore[arg-type]
        form.where = where_from(request, channel="web")
        row = form.save()
        obj.__dict__.update({k: v for k, v in row.__dict__.items() if k != "_state"})
        obj._state.adding = False
