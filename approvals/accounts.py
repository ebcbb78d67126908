"""Services for tenants, people and agents (used by the management commands, the admin and tests)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission, User
from django.db import transaction

from approvals.models import AgentCredential, Membership, Role, Tenant, UserToken
from approvals.tokens import hash_token, new_token, prefix
from audit import services as audit
from audit.services import Where

CLI = Where(channel="cli")


def tenant_create(*, slug: str, name: str = "") -> tuple[Tenant, bool]:
    with transaction.atomic():
        tenant, created = Tenant.objects.get_or_create(slug=slug, defaults={"name": name or slug})
        if not created and name and tenant.name != name:
            tenant.name = name
            tenant.save(update_fields=["name"])
        if created:
            audit.record(
                tenant=slug,
                actor=audit.SYSTEM,
                action="tenant.created",
                where=CLI,
                subject_type="tenant",
                subject_id=str(tenant.pk),
            )
    return tenant, created


def agent_create(*, tenant: Tenant, name: str, tools: list[str]) -> tuple[AgentCredential, str]:
    """Create an agent (or rotate the token of an existing one of that name); return it and its token."""
    token = new_token("agt")
    with transaction.atomic():
        agent, _ = AgentCredential.objects.update_or_create(
            tenant=tenant,
            name=name,
            defaults={
                "allowed_tools": tools,
                "token_hash": hash_token(token),
                "token_prefix": prefix(token),
                "is_active": True,
            },
        )
        audit.record(
            tenant=tenant.slug,
            actor=audit.SYSTEM,
            action="agent.token_issued",
            where=CLI,
            subject_type="agent",
            subject_id=str(agent.pk),
            data={"name": name, "tools": tools},
        )
    return agent, token


def person_create(
    *,
    tenant: Tenant,
    username: str,
    role: str = Role.REVIEWER,
    password: str | None = None,
    staff: bool = False,
) -> User:
    """A person in ``tenant`` with ``role``. An admin of the tenant is made staff and put in the "Tenant
    admins" group, so the Django admin opens for them, scoped to the tenants they administer. ``staff=True``
    makes an operator: a superuser, who sees every tenant."""
    user_model = get_user_model()
    with transaction.atomic():
        user, created = user_model.objects.get_or_create(username=username)
        if password:
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        if staff:
            user.is_staff = True
            user.is_superuser = True
        if role == Role.ADMIN:
            user.is_staff = True
        user.save()
        if role == Role.ADMIN:
            user.groups.add(tenant_admin_group_sync())
        Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
        audit.record(
            tenant=tenant.slug,
            actor=audit.SYSTEM,
            action="member.saved",
            where=CLI,
            subject_type="user",
            subject_id=str(user.pk),
            data={"role": role},
        )
    return user


def user_token_create(*, user: User, name: str = "api") -> str:
    token = new_token("usr")
    UserToken.objects.create(user=user, name=name, token_hash=hash_token(token), token_prefix=prefix(token))
    return token


# --- tenant admins in the Django admin --------------------------------------------------------------------

TENANT_ADMINS_GROUP = "Tenant admins"
# The Django model permissions a tenant admin holds (through the group). Which *rows* they reach is decided
# by their admin memberships (administered_tenants, applied by audit.admin_scope.TenantScopedAdmin): these
# only open the pages. Not here, so superusers only: tenants' creation and deletion, people's accounts
# (passwords, staff, groups), groups, the outbox, django-auditlog's history (audit.admin_scope explains).
TENANT_ADMIN_PERMISSIONS = [
    "approvals.view_tenant",
    "approvals.change_tenant",
    "approvals.view_membership",
    "approvals.add_membership",
    "approvals.change_membership",
    "approvals.delete_membership",
    "approvals.view_agentcredential",
    "approvals.change_agentcredential",
    "approvals.view_usertoken",
    "approvals.change_usertoken",
    "approvals.view_proposal",
    "approvals.change_proposal",  # change: requeue/discard dead letters
    "approvals.view_decision",
    "approvals.view_receipt",
    "approvals.view_webhookdelivery",
    "approvals.change_webhookdelivery",  # change: redeliver
    "approvals.view_inboundevent",
    "approvals.view_slackpost",  # the delivery state of their proposals' Slack messages
    "approvals.view_revieweremail",
    "approvals.view_toolpolicy",
    "approvals.add_toolpolicy",
    "approvals.change_toolpolicy",
    "approvals.delete_toolpolicy",
    "approvals.view_reviewergroup",
    "approvals.add_reviewergroup",
    "approvals.change_reviewergroup",
    "approvals.delete_reviewergroup",
    "adapters.view_connection",
    "adapters.add_connection",
    "adapters.change_connection",
    "audit.view_auditevent",
    "auth.view_user",
]


def administered_tenants(user: Any) -> set[str]:
    """Slugs of the tenants ``user`` is an admin of (the scope of their Django admin; see ACME_ADMIN_TENANTS)."""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "pk", None):
        return set()
    return set(Membership.objects.filter(user=user, role=Role.ADMIN).values_list("tenant__slug", flat=True))


def tenant_admin_group_sync(**_: Any) -> Group:
    """Create the "Tenant admins" group or bring its permissions up to TENANT_ADMIN_PERMISSIONS (idempotent;
    run after every ``migrate``, when Django has just created the permissions of any new model)."""
    group, _created = Group.objects.get_or_create(name=TENANT_ADMINS_GROUP)
    wanted = [name.split(".", 1) for name in TENANT_ADMIN_PERMISSIONS]
    found = Permission.objects.filter(
        content_type__app_label__in={app for app, _ in wanted}, codename__in={code for _, code in wanted}
    ).select_related("content_type")
    group.permissions.set([p for p in found if [p.content_type.app_label, p.codename] in wanted])
    return group
