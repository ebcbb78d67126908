"""Each tenant's own connections to outside systems, and the records the gateway created in them.

The integration layer knows tenants by slug only (``adapters.registry.Context.tenant``): no foreign key to
``approvals.Tenant`` (imports point down). Tokens and signing secrets are stored encrypted
(``adapters.connections``); nothing here ever holds them in clear.
"""

from __future__ import annotations

from django.db import models


class System(models.TextChoices):
    CRM = "crm", "CRM"
    SLACK = "slack", "Slack"


class Connection(models.Model):
    """A tenant's own CRM or Slack: where it lives and how to authenticate. A tenant without one uses the
    environment's defaults (``CRM_*``, ``SLACK_*``). Written only by ``connections.connection_set``."""

    tenant = models.SlugField(max_length=64, help_text="The tenant's slug.")
    system = models.CharField(max_length=16, choices=System.choices)
    base_url = models.URLField(
        max_length=500, help_text="e.g. https://acme.zendesk.com or https://slack.com/api"
    )
    # Fernet tokens (ACME_SECRETS_KEY); decrypted only when a call is made.
    token_encrypted = models.TextField()
    signing_secret_encrypted = models.TextField(blank=True, default="")
    review_channel = models.CharField(max_length=100, blank=True, default="")
    # Slack's team id, learned with auth.test when the connection is set (maps Slack's requests to a tenant).
    team_id = models.CharField(max_length=32, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "system"], name="connection_one_per_system")]
        indexes = [models.Index(fields=["system", "base_url"], name="connection_system_url")]

    def __str__(self) -> str:
        return f"{self.tenant}: {self.system} at {self.base_url}"

    @property
    def has_signing_secret(self) -> bool:
        return bool(self.signing_secret_encrypted)


class CreatedRecord(models.Model):
    """A record the gateway created in an outside system for a tenant (a CRM ticket). On a connection that
    several tenants share, a tenant may read or update only the records listed here for it."""

    tenant = models.SlugField(max_length=64)
    system = models.CharField(max_length=16, choices=System.choices)
    base_url = models.CharField(max_length=500)
    external_id = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "system", "base_url", "external_id"], name="created_record_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tenant}: {self.system} #{self.external_id}"
