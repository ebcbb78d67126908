"""``manage.py set_connection --tenant SLUG --system crm|slack --base-url URL --token TOKEN
[--signing-secret SECRET] [--review-channel CHANNEL]``: a tenant's own CRM or Slack (contract section 6).

Idempotent: the same command again changes nothing. The token and signing secret are stored encrypted
(``ACME_SECRETS_KEY``) and never printed.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from adapters import connections
from approvals.accounts import CLI
from approvals.models import Tenant
from audit import services as audit


class Command(BaseCommand):
    help = "Set a tenant's own CRM or Slack connection (tokens and secrets encrypted at rest); idempotent."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--system", required=True, choices=list(connections.SYSTEMS))
        parser.add_argument(
            "--base-url", required=True, help="e.g. https://acme.zendesk.com, https://slack.com/api"
        )
        parser.add_argument("--token", required=True, help="sent as Authorization: Bearer …")
        parser.add_argument(
            "--signing-secret",
            default=None,
            help="the secret the system signs its requests to us with (CRM webhooks, Slack)",
        )
        parser.add_argument("--review-channel", default=None, help="Slack: where new proposals are posted")

    def handle(
        self,
        *args: Any,
        tenant: str,
        system: str,
        base_url: str,
        token: str,
        signing_secret: str | None,
        review_channel: str | None,
        **options: Any,
    ) -> None:
        if not Tenant.objects.filter(slug=tenant).exists():
            raise CommandError(f"no tenant {tenant!r}; create it with create_tenant")
        try:
            row, outcome = connections.connection_set(
                tenant=tenant,
                system=system,
                base_url=base_url,
                token=token,
                signing_secret=signing_secret,
                review_channel=review_channel,
                actor=audit.Actor(type="system", label="set_connection"),
                where=CLI,
            )
        except (connections.InvalidConnection, ImproperlyConfigured) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{outcome}: {tenant}'s {system} connection at {row.base_url}"
            + (" (with a signing secret)" if row.has_signing_secret else "")
            + (f", workspace {row.team_id}" if row.team_id else "")
        )
        if system == "slack" and row.has_signing_secret and not row.team_id:
            # Said where the operator is looking, not only in the log: clicks are refused until it is known.
            self.stderr.write(connections.TEAM_UNKNOWN.format(detail="no workspace learned", tenant=tenant))
