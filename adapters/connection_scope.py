"""Which connection a call uses: a tenant's own CRM or Slack connection, else the environment's default.

* ``resolve(tenant, system)``: the tenant's stored ``Connection`` as a ``Resolved`` (its base URL, whether
  another tenant's connection has the same one, i.e. *shared*, and its secrets still encrypted), else
  ``default(system)``: the environment's ``CRM_*`` / ``SLACK_*`` settings, shared by every tenant.
* ``using(tenant)`` / ``current(system)``: the scope the registry opens around a tenant's previews, commits,
  reads and workflow steps, and the connection of that scope (resolved on first use, once per scope);
  outside any scope ``current`` is the default, with no tenant.
* ``breaker_key(tenant, system)``: ``crm`` for the default, ``crm:<tenant>`` for a tenant's own, so one
  tenant's broken CRM never opens another tenant's breaker.

A token is decrypted only when a call is made (``Resolved.token()``, ``adapters.connection_secrets``) and
never appears in a repr. Callers reach all of this through ``adapters.connections``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from django.conf import settings

from adapters.connection_secrets import decrypt
from adapters.connection_urls import default_base_url, private_allowed
from audit.prepared import Param, PreparedRead

SYSTEMS = ("crm", "slack")

# --- the resolved connection ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """Where one tenant's calls to one system go. ``key`` names its breaker and rate-limit buckets."""

    tenant: str
    system: str
    key: str
    base_url: str
    shared: bool
    own: bool
    review_channel: str = ""
    team_id: str = ""
    # Ciphertext for a stored connection; never the clear token (see ``token()``).
    _token: str = field(default="", repr=False)
    _signing_secret: str = field(default="", repr=False)

    def token(self) -> str:
        """The bearer token, decrypted now (call time), never kept."""
        if not self.own:
            return str(settings.CRM_API_TOKEN if self.system == "crm" else settings.SLACK_BOT_TOKEN)
        return decrypt(self._token)

    def signing_secret(self) -> str:
        """The secret the system signs its requests to us with: the connection's own, else (CRM only)
        ``CRM_WEBHOOK_SECRET``; "" when there is none."""
        if self.own and self._signing_secret:
            return decrypt(self._signing_secret)
        return str(getattr(settings, "CRM_WEBHOOK_SECRET", "") or "") if self.system == "crm" else ""

    @property
    def own_signing_secret(self) -> bool:
        return self.own and bool(self._signing_secret)

    @property
    def public_only(self) -> bool:
        """Whether calls may connect to public addresses only: a stored connection's URL was chosen by a
        tenant's admin (or an operator), so it must not reach into the gateway's own network."""
        return self.own and not private_allowed()


def default(system: str, tenant: str = "") -> Resolved:
    """The environment's connection: shared by every tenant that has none of its own."""
    return Resolved(
        tenant=tenant, system=system, key=system, base_url=default_base_url(system), shared=True, own=False
    )


def resolve(tenant: str, system: str) -> Resolved:
    """The tenant's connection to ``system``: its own when stored, else the environment's default."""
    from adapters.models import Connection

    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}")
    row = _connection_row().first(tenant=tenant, system=system) if tenant else None
    if row is None:
        return default(system, tenant)
    shared = Connection.objects.filter(system=system, base_url=row.base_url).exclude(tenant=tenant).exists()
    return Resolved(
        tenant=tenant,
        system=system,
        key=f"{system}:{tenant}",
        base_url=row.base_url,
        shared=shared,
        own=True,
        review_channel=row.review_channel,
        team_id=row.team_id,
        _token=row.token_encrypted,
        _signing_secret=row.signing_secret_encrypted,
    )


def slack_review_channel(tenant: str) -> str:
    """The review channel of ``tenant``'s own Slack connection, "" when it has none (the environment's
    Slack has none): what a submission asks on every call, one column read, no secret decrypted."""
    found = _review_channel().rows(tenant=tenant) if tenant else []
    return found[0] if found else ""


@functools.cache
def _connection_row() -> PreparedRead:
    """A tenant's stored connection to a system: read by every outside call's scope, compiled once."""
    from adapters.models import Connection

    return PreparedRead(
        lambda tenant, system: Connection.objects.filter(tenant=tenant, system=system).order_by("pk")[:1],
        tenant=Param.TEXT,
        system=Param.TEXT,
    )


@functools.cache
def _review_channel() -> PreparedRead:
    """Compiled once (audit.prepared); built on first use, as the models load after this module."""
    from adapters.models import Connection

    return PreparedRead(
        lambda tenant: Connection.objects.filter(tenant=tenant, system="slack").values_list(
            "review_channel", flat=True
        )[:1],
        tenant=Param.TEXT,
    )


# --- the scope -----------------------------------------------------------------------------------------


@dataclass
class _Scope:
    tenant: str
    resolved: dict[str, Resolved] = field(default_factory=dict)


_SCOPE: ContextVar[_Scope | None] = ContextVar("acme_connection_scope", default=None)


@contextmanager
def using(tenant: str) -> Iterator[None]:
    """Calls made inside go to ``tenant``'s connections (resolved on first use, once per scope)."""
    token = _SCOPE.set(_Scope(tenant=tenant))
    try:
        yield
    finally:
        _SCOPE.reset(token)


def current(system: str) -> Resolved:
    """The connection of the scope's tenant; the environment default (no tenant) outside any scope."""
    scope = _SCOPE.get()
    if scope is None or not scope.tenant:
        return default(system)
    found = scope.resolved.get(system)
    if found is None:
        found = scope.resolved[system] = resolve(scope.tenant, system)
    return found


def breaker_key(tenant: str, system: str) -> str:
    """The breaker (and rate-limit) key of ``tenant``'s connection to ``system``."""
    return resolve(tenant, system).key if tenant and system in SYSTEMS else system
