"""Services for tenants, people and agents (used by the management commands, the admin and tests)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
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
            audit.record(tenant=slug, actor=audit.SYSTEM, action="tenant.created", where=CLI,
                         subject_type="tenant", subject_id=str(tenant.pk))
    return tenant, created


def agent_create(*, tenant: Tenant, name: str, tools: list[str]) -> tuple[AgentCredential, str]:
    """Create an agent (or rotate the token of an existing one of that name); return it and its token."""
    token = new_token("agt")
    with transaction.atomic():
        agent, _ = AgentCredential.objects.update_or_create(
            tenant=tenant, name=name,
            defaults={"allowed_tools": tools, "token_hash": hash_token(token), "token_prefix": prefix(token),
                      "is_active": True},
        )
        audit.record(tenant=tenant.slug, actor=audit.SYSTEM, action="agent.token_issued", where=CLI,
                     subject_type="agent", subject_id=str(agent.pk), data={"name": name, "tools": tools})
    return agent, token


def person_create(
    *, tenant: Tenant, username: str, role: str = Role.REVIEWER, password: str | None = None, staff: bool = False
) -> User:
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
        user.save()
        Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
        audit.record(tenant=tenant.slug, actor=audit.SYSTEM, action="member.saved", where=CLI,
                     subject_type="user", subject_id=str(user.pk), data={"role": role})
    return user


def user_token_create(*, user: User, name: str = "api") -> str:
    token = new_token("usr")
    UserToken.objects.create(user=user, name=name, token_hash=hash_token(token), token_prefix=prefix(token))
    return token



