"""Who: tenants, their members and roles (who reviews), agents' credentials, people's API tokens."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Tenant(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


class Role(models.TextChoices):
    REQUESTER = "requester", "Requester"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Admin"


# The roles that review (approve, reject, edit) a tenant's proposals. The one rule: ``Membership.can_review``,
# ``selectors.PersonScope`` and through it ``selectors.may_review(user, tenant_id)`` (what services and views
# ask) all read it from here.
REVIEW_ROLES = frozenset({Role.REVIEWER, Role.ADMIN})


def role_reviews(role: str) -> bool:
    """Whether a member with ``role`` reviews the tenant's proposals."""
    return role in REVIEW_ROLES


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    # The person's Slack user id in the tenant's workspace (``create_reviewer --slack-user-id``): a click on a
    # proposal's Slack message decides as the member it maps to, and only a reviewer's click decides.
    slack_user_id = models.CharField(max_length=32, blank=True, default="", db_default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_one_per_user_tenant"),
            models.UniqueConstraint(
                fields=["tenant", "slack_user_id"],
                condition=~Q(slack_user_id=""),
                name="membership_slack_user_unique_in_tenant",
            ),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"

    @property
    def can_review(self) -> bool:
        return role_reviews(self.role)


class AgentCredential(models.Model):
    """An AI agent's identity in one tenant. Only the token's sha256 is stored."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=100)
    allowed_tools = models.JSONField(default=list, help_text='Tool names, or ["*"] for every tool.')
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(
        max_length=16, editable=False, help_text="First characters, to recognise it."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    webhook_url = models.URLField(
        max_length=500, blank=True, help_text="Where the agent receives signed events about its proposals."
    )
    # The signing secret is derived (see approvals.webhooks.secret_for), never stored; bumping the version
    # rotates it.
    webhook_secret_version = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="agent_name_unique_in_tenant")]

    def __str__(self) -> str:
        return f"{self.name} ({self.tenant})"

    # DRF reads these on request.user.
    is_authenticated = True
    is_anonymous = False

    @property
    def username(self) -> str:
        return f"agent:{self.name}"


class UserToken(models.Model):
    """An API token of a person (reviewer or admin). Only the token's sha256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, default="api")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=16, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} / {self.name} ({self.token_prefix}…)"
