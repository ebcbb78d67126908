"""Tenant admins in the Django admin: every ModelAdmin shows and changes only the viewer's tenants' rows.

A superuser sees everything. Any other staff user sees the rows of the tenants they administer (a
``Membership`` with the admin role) and nothing else: in change lists, change/delete/history views, list
filters, foreign-key choices, admin actions and exports. A staff user who administers no tenant sees no
page at all, whatever model permissions they hold.

The mixin lives here, in ``audit`` (the bottom of the import graph), because ``AuditEventAdmin`` needs it and
``audit`` may not import ``approvals``: who administers which tenant is the domain's knowledge. So the mixin
asks a function named by the setting ``ACME_ADMIN_TENANTS`` (``approvals.accounts.administered_tenants``),
resolved with ``import_string`` at call time. Unset, it fails closed: superusers see all, others nothing.

Each admin names the ORM path from its model to the tenant's slug (``tenant_lookup``). A path through a
many-valued relation (a user's memberships) shows a row when *any* of its tenants is the viewer's, and lets
it be changed only when *all* of them are (a person who also belongs to another tenant is not the viewer's
to change). ``tenant_lookup = None`` makes the admin superusers-only.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.module_loading import import_string

SCOPE_SETTING = "ACME_ADMIN_TENANTS"
_CACHE_ATTR = "_acme_admin_tenants"
NOT_YOURS = "This record belongs to a tenant you do not administer."


def _resolver() -> Callable[[Any], set[str] | None] | None:
    path = getattr(settings, SCOPE_SETTING, "")
    return import_string(path) if path else None


def tenant_scope(request: HttpRequest) -> set[str] | None:
    """The slugs of the tenants the viewer administers; ``None`` means every tenant (a superuser).

    Computed once per request (the admin asks for it on every permission check)."""
    if hasattr(request, _CACHE_ATTR):
        cached: set[str] | None = getattr(request, _CACHE_ATTR)
        return cached
    user = getattr(request, "user", None)
    scope: set[str] | None
    if user is None or not user.is_active or not user.is_authenticated:
        scope = set()
    elif user.is_superuser:
        scope = None
    else:
        resolve = _resolver()
        scope = set(resolve(user) or ()) if resolve is not None else set()
    setattr(request, _CACHE_ATTR, scope)
    return scope


def _many_valued(model: type[Model], lookup: str) -> bool:
    """Whether ``lookup`` crosses a to-many relation (a row may then belong to several tenants)."""
    return _crosses_to_many(model._meta.label, lookup)


@cache
def _crosses_to_many(model_label: str, lookup: str) -> bool:
    from django.apps import apps

    current: Any = apps.get_model(model_label)
    for part in lookup.split("__"):
        try:
            field = current._meta.get_field(part)
        except FieldDoesNotExist:
            return False
        if field.many_to_many or field.one_to_many:
            return True
        if field.related_model is None:
            return False
        current = field.related_model
    return False


class ScopedRelatedFieldListFilter(admin.RelatedFieldListFilter):
    """A related-object filter that offers only the related rows the viewer may see (the plain one lists
    every tenant, agent or user of the installation). Unlike ``RelatedOnlyFieldListFilter`` it runs no
    ``SELECT DISTINCT`` over the filtered table: it reads the (small) related admin's scoped queryset."""

    def field_choices(self, field: Any, request: Any, model_admin: Any) -> Any:
        if tenant_scope(request) is None:
            return super().field_choices(field, request, model_admin)
        ordering = self.field_admin_ordering(field, request, model_admin)
        visible = scoped_related_queryset(model_admin.admin_site, field.remote_field.model, request)
        return field.get_choices(
            include_blank=False, ordering=ordering, limit_choices_to={"pk__in": visible.values("pk")}
        )


def scoped_related_queryset(site: admin.AdminSite, model: type[Model], request: HttpRequest) -> QuerySet[Any]:
    """The rows of ``model`` the viewer may see, as its own admin scopes them; none if it has no admin."""
    try:
        related_admin = site.get_model_admin(model)
    except NotRegistered:
        return model._default_manager.none()
    return related_admin.get_queryset(request)  # type: ignore[no-any-return]


class TenantScopedAdmin(admin.ModelAdmin):
    """Every ModelAdmin of the project derives from this (tests/audit/test_admin_scope.py checks that each
    registered admin does). See the module's docstring."""

    tenant_lookup: str | None = None  # ORM path to the tenant's slug; None: superusers only

    # --- the scope ----------------------------------------------------------------------------------------
    def tenant_scope(self, request: HttpRequest) -> set[str] | None:
        return tenant_scope(request)

    def sees_anything(self, request: HttpRequest) -> bool:
        scope = self.tenant_scope(request)
        return scope is None or (bool(scope) and self.tenant_lookup is not None)

    def scope_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        scope = self.tenant_scope(request)
        if scope is None:
            return queryset
        if not scope or self.tenant_lookup is None:
            return queryset.none()
        condition = {f"{self.tenant_lookup}__in": sorted(scope)}
        if _many_valued(self.model, self.tenant_lookup):
            # Through a to-many relation a plain filter repeats a row once per matching tenant.
            return queryset.filter(pk__in=self.model._default_manager.filter(**condition).values("pk"))
        return queryset.filter(**condition)

    def tenants_of(self, obj: Model) -> set[str]:
        """The tenants a saved row belongs to (read from the database, not from a form's unsaved values)."""
        assert self.tenant_lookup is not None
        values = self.model._default_manager.filter(pk=obj.pk).values_list(self.tenant_lookup, flat=True)
        return {v for v in values if v is not None}

    def in_scope(self, request: HttpRequest, obj: Model, *, to_change: bool = False) -> bool:
        scope = self.tenant_scope(request)
        if scope is None:
            return True
        if not scope or self.tenant_lookup is None:
            return False
        tenants = self.tenants_of(obj)
        if to_change:
            return bool(tenants) and tenants <= scope
        return bool(tenants & scope)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return self.scope_queryset(request, super().get_queryset(request))

    # --- permissions: Django's model permissions, and the row's tenant ----------------------------------
    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.sees_anything(request) and super().has_module_permission(request)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return (
            self.sees_anything(request)
            and super().has_view_permission(request, obj)
            and (obj is None or self.in_scope(request, obj))
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.sees_anything(request) and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return (
            self.sees_anything(request)
            and super().has_change_permission(request, obj)
            and (obj is None or self.in_scope(request, obj, to_change=True))
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return (
            self.sees_anything(request)
            and super().has_delete_permission(request, obj)
            and (obj is None or self.in_scope(request, obj, to_change=True))
        )

    # --- what forms and filters offer --------------------------------------------------------------------
    def get_field_queryset(self, db: Any, db_field: Any, request: Any) -> Any:
        """Foreign-key and many-to-many choices (tenant, agent, user...): only the rows the viewer may see,
        so a crafted POST naming another tenant's row fails the form's validation."""
        if request is None or self.tenant_scope(request) is None:
            return super().get_field_queryset(db, db_field, request)
        queryset = scoped_related_queryset(self.admin_site, db_field.remote_field.model, request)
        return queryset.using(db) if db else queryset

    def get_list_filter(self, request: HttpRequest) -> Any:
        return [self._scoped_filter(spec) for spec in super().get_list_filter(request)]

    def _scoped_filter(self, spec: Any) -> Any:
        if not isinstance(spec, str):
            return spec
        model: Any = self.model
        try:
            for part in spec.split("__"):
                field = model._meta.get_field(part)
                model = field.related_model
        except FieldDoesNotExist:
            return spec
        return (spec, ScopedRelatedFieldListFilter) if field.is_relation else spec

    # --- saving: the row must stay in the viewer's tenants --------------------------------------------------
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        self.check_tenant_of_unsaved(request, obj)
        super().save_model(request, obj, form, change)

    def check_tenant_of_unsaved(self, request: HttpRequest, obj: Any) -> None:
        """Defence in depth behind the form's scoped choices: the tenant the row is about to be saved in."""
        scope = self.tenant_scope(request)
        if scope is None:
            return
        if self.tenant_lookup is None:
            raise PermissionDenied(NOT_YOURS)
        if _many_valued(self.model, self.tenant_lookup):
            # Such a row's tenants are not its own fields (a token's user's memberships): a form cannot move
            # it, so only an existing row the viewer may change is saved.
            if obj.pk is None or not self.in_scope(request, obj, to_change=True):
                raise PermissionDenied(NOT_YOURS)
            return
        value: Any = obj
        for part in self.tenant_lookup.split("__"):
            value = getattr(value, part, None)
            if value is None:
                break
        if value not in scope:
            raise PermissionDenied(NOT_YOURS)


class SuperuserOnlyAdmin(TenantScopedAdmin):
    """Rows that belong to no one tenant (or to several at once): superusers only."""

    tenant_lookup = None
