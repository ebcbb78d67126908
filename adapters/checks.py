"""``manage.py check --deploy``: what connections need in production.

* E001: with DEBUG off and at least one connection stored, ``ACME_SECRETS_KEY`` must be set and valid
  (the stored tokens cannot be used otherwise).
* W002: a tenant's own connection has the environment default's base URL while some tenants have no
  connection of their own: those tenants use the same CRM (or Slack), yet the own connection is not treated
  as shared, so its tenant can touch the tickets the gateway created for them.
* W003: a Slack connection with a signing secret but no workspace (team id): ``auth.test`` did not answer
  when it was set, and its tenant's Slack clicks are refused (401) until it is set again.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

from adapters import connections


@checks.register(checks.Tags.security, deploy=True)
def secrets_key(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from adapters.models import Connection

    if settings.DEBUG:
        return []
    try:
        stored = Connection.objects.exists()
    except DatabaseError:  # not migrated yet: nothing is stored
        return []
    if not stored:
        return []
    if not connections.configured_keys():
        return [checks.Error(connections.KEY_REQUIRED, id="adapters.E001")]
    try:
        connections.fernet()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="adapters.E001")]
    return []


@checks.register(checks.Tags.security, deploy=True)
def own_connection_on_the_default(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from adapters.models import Connection

    # The integration layer knows tenants by slug only; the list of tenants is the domain's, looked up by
    # its label (no import of approvals, whose imports point down to us).
    try:
        tenant_model = apps.get_model("approvals", "Tenant")
    except LookupError:
        return []
    messages: list[checks.CheckMessage] = []
    try:
        for system in connections.SYSTEMS:
            default_url = connections.default_base_url(system)
            own = list(Connection.objects.filter(system=system).values_list("tenant", "base_url"))
            on_default = sorted(t for t, url in own if url == default_url)
            if not on_default:
                continue
            with_own = {t for t, _ in own}
            without = tenant_model.objects.exclude(slug__in=with_own).exists()
            if without:
                messages.append(
                    checks.Warning(
                        f"The {system} connection of {', '.join(on_default)} has the environment default's base URL "
                        f"({default_url}), which the tenants without a connection of their own also use: their "
                        "tickets are then reachable by those tenants.",
                        hint="Give every tenant that uses this system its own connection, or point the default elsewhere.",
                        id="adapters.W002",
                    )
                )
    except DatabaseError:
        return []
    return messages


@checks.register(checks.Tags.security, deploy=True)
def slack_workspace_unknown(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from adapters.models import Connection

    try:
        unknown = sorted(
            Connection.objects.filter(system="slack", team_id="")
            .exclude(signing_secret_encrypted="")
            .values_list("tenant", flat=True)
        )
    except DatabaseError:
        return []
    if not unknown:
        return []
    return [
        checks.Warning(
            f"The Slack connection of {', '.join(unknown)} has no workspace (Slack's auth.test did not answer when "
            "it was set): Slack's clicks for these tenants are refused.",
            hint="Run set_connection --system slack again for each once Slack answers.",
            id="adapters.W003",
        )
    ]
