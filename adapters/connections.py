"""Each tenant's own CRM and Slack connection: where every outside call of a tenant goes, with what token.

* ``connection_set(...)``: the one writer of ``Connection`` (``manage.py set_connection``, the admin form),
  audited. Tokens and signing secrets are encrypted with ``ACME_SECRETS_KEY`` (``cryptography``'s
  MultiFernet: comma-separated Fernet keys, the first encrypts, all decrypt, so a key is rotated by putting
  a new one first). With DEBUG on and no key, a development key is derived from ``SECRET_KEY``.
* ``using(tenant)``: the scope the registry opens around a tenant's previews, commits, reads and workflow
  steps. Inside it ``current(system)`` is that tenant's connection (its own, else the environment's
  ``CRM_*`` / ``SLACK_*`` defaults); outside any scope it is the defaults, with no tenant.
* ``owns(conn, id)`` / ``record_created(system, id)``: ticket ownership. On a connection that is the
  tenant's alone every ticket is its own; on a *shared* one (the environment default, which every tenant
  without a connection uses, or a stored one whose base URL another tenant's connection also has) a tenant
  may touch only the records the gateway created for it. Without a tenant nothing is owned.

Breakers and rate limits are keyed by ``Resolved.key`` (``crm`` for the default, ``crm:<tenant>`` for a
tenant's own), so one tenant's broken CRM never opens another tenant's breaker; metrics keep the system
(``crm``, ``slack``) as their label. A token is decrypted only when a call is made (``Resolved.token()``)
and never appears in a repr, a log line or an audit record.
"""

from __future__ import annotations

import base64
import hmac
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from audit import services as audit

if TYPE_CHECKING:
    from adapters.models import Connection

SYSTEMS = ("crm", "slack")
GENERATE_KEY = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
KEY_REQUIRED = (
    "ACME_SECRETS_KEY must be set to store or use a connection's token while DEBUG is off. Generate a key with: "
    + GENERATE_KEY
)
KEY_INVALID = (
    "ACME_SECRETS_KEY must be comma-separated Fernet keys (32 url-safe base64-encoded bytes). Generate one with: "
    + GENERATE_KEY
)
UNDECRYPTABLE = (
    "A stored connection secret cannot be decrypted with ACME_SECRETS_KEY (a key was removed before the secrets "
    "were re-encrypted?). Put the old key back after the new one, or set the connection again."
)
DUPLICATE_SIGNING = "This signing secret is already used by another tenant (or is CRM_WEBHOOK_SECRET); each tenant needs its own."


class InvalidConnection(ValueError):
    """``connection_set`` refused its input (a sentence for the operator)."""


# --- encryption ----------------------------------------------------------------------------------------


def _dev_key() -> bytes:
    # DEBUG only: a stable key per SECRET_KEY, so `make run` works with nothing configured. HKDF rather than a
    # bare hash: SECRET_KEY has other uses, and the derived key must say nothing about it.
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"acme-connection-secrets").derive(
        settings.SECRET_KEY.encode()
    )
    return base64.urlsafe_b64encode(derived)


def configured_keys() -> list[str]:
    raw = getattr(settings, "ACME_SECRETS_KEY", "") or ""
    return [part.strip() for part in raw.split(",") if part.strip()]


def fernet() -> MultiFernet:
    """The keys from ``ACME_SECRETS_KEY``; raises ImproperlyConfigured when missing (DEBUG off) or malformed."""
    keys = configured_keys()
    if not keys:
        if not settings.DEBUG:
            raise ImproperlyConfigured(KEY_REQUIRED)
        return MultiFernet([Fernet(_dev_key())])
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except (ValueError, TypeError):
        raise ImproperlyConfigured(KEY_INVALID) from None


def encrypt(text: str) -> str:
    return fernet().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(UNDECRYPTABLE) from None


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


def normalize_base_url(url: str) -> str:
    """Scheme and host lower-cased, no trailing slash; http(s) only, no credentials, query or fragment."""
    parts = urlsplit((url or "").strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise InvalidConnection("The base URL must be an http:// or https:// URL with a host.")
    if parts.username or parts.password:
        raise InvalidConnection("The base URL must not carry credentials; pass the token with --token.")
    if parts.query or parts.fragment:
        raise InvalidConnection("The base URL must not have a query or a fragment.")
    netloc = parts.hostname.lower() + (f":{parts.port}" if parts.port else "")
    if ":" in parts.hostname:  # an IPv6 literal keeps its brackets
        netloc = f"[{parts.hostname.lower()}]" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), "", ""))


NOT_PUBLIC = (
    "The base URL's host must resolve to public addresses only (not loopback, private, link-local or other "
    "internal ranges); set ACME_CONNECTIONS_ALLOW_PRIVATE=1 if this CRM or Slack really lives in your network."
)
UNRESOLVED = "The base URL's host does not resolve."


def private_allowed() -> bool:
    """Whether connections may point into private networks (``ACME_CONNECTIONS_ALLOW_PRIVATE``, default DEBUG)."""
    return bool(getattr(settings, "ACME_CONNECTIONS_ALLOW_PRIVATE", settings.DEBUG))


def check_public(url: str) -> None:
    """Refuse a base URL whose host resolves to any address that is not public (``http.is_public_address``),
    unless private addresses are allowed. The calls check again at each connection (DNS rebinding)."""
    from adapters import http

    if private_allowed():
        return
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        raise InvalidConnection(UNRESOLVED) from None
    if not infos or not all(http.is_public_address(str(info[4][0])) for info in infos):
        raise InvalidConnection(NOT_PUBLIC)


def default_base_url(system: str) -> str:
    url = settings.CRM_BASE_URL if system == "crm" else settings.SLACK_API_URL
    try:
        return normalize_base_url(str(url))
    except InvalidConnection:
        return str(url).rstrip("/")


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
    row = Connection.objects.filter(tenant=tenant, system=system).first() if tenant else None
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


# --- ownership -----------------------------------------------------------------------------------------


def owns(conn: Resolved, external_id: object) -> bool:
    """May ``conn``'s tenant read or change this record? Asked before any request leaves."""
    from adapters.models import CreatedRecord

    if not conn.tenant:
        return False  # no tenant to own it: fail closed
    if not conn.shared:
        return True
    return CreatedRecord.objects.filter(
        tenant=conn.tenant, system=conn.system, base_url=conn.base_url, external_id=str(external_id)
    ).exists()


def record_created(system: str, external_id: object) -> None:
    """Remember that the gateway created this record for the scope's tenant (idempotent)."""
    from adapters.models import CreatedRecord

    conn = current(system)
    if conn.tenant:
        CreatedRecord.objects.get_or_create(
            tenant=conn.tenant, system=system, base_url=conn.base_url, external_id=str(external_id)
        )


# --- writing a connection ------------------------------------------------------------------------------


def signing_secret_taken(system: str, tenant: str, secret: str) -> bool:
    from adapters.models import Connection

    if system != "crm" or not secret:
        return False
    fallback = str(getattr(settings, "CRM_WEBHOOK_SECRET", "") or "")
    if fallback and hmac.compare_digest(fallback.encode(), secret.encode()):
        return True
    others = (
        Connection.objects.filter(system=system).exclude(tenant=tenant).exclude(signing_secret_encrypted="")
    )
    return any(
        hmac.compare_digest(decrypt(o.signing_secret_encrypted).encode(), secret.encode()) for o in others
    )


def connection_set(
    *,
    tenant: str,
    system: str,
    base_url: str,
    token: str | None,
    signing_secret: str | None = None,
    review_channel: str | None = None,
    team_id: str | None = None,
    actor: audit.Actor,
    where: audit.Where,
) -> tuple[Connection, str]:
    """Create or update ``tenant``'s connection to ``system``; returns it and "created", "updated" or
    "unchanged". ``None`` keeps a stored value (``token`` is required on creation); ``signing_secret=""``
    removes it. Audited (which fields changed, never their secret values)."""
    from adapters.models import Connection

    if system not in SYSTEMS:
        raise InvalidConnection(f"The system must be one of {', '.join(SYSTEMS)}.")
    url = normalize_base_url(base_url)
    check_public(url)
    if token is not None and not token.strip():
        raise InvalidConnection("The token must not be empty.")
    if signing_secret and signing_secret_taken(system, tenant, signing_secret):
        raise InvalidConnection(DUPLICATE_SIGNING)
    with transaction.atomic():
        row = Connection.objects.select_for_update().filter(tenant=tenant, system=system).first()
        created = row is None
        if row is None:
            if token is None:
                raise InvalidConnection("A new connection needs a token.")
            row = Connection(tenant=tenant, system=system)
        changed: list[str] = []
        if row.base_url != url:
            row.base_url = url
            changed.append("base_url")
        if token is not None and (created or decrypt(row.token_encrypted) != token):
            row.token_encrypted = encrypt(token)
            changed.append("token")
        if signing_secret is not None:
            stored = decrypt(row.signing_secret_encrypted) if row.signing_secret_encrypted else ""
            if stored != signing_secret:
                row.signing_secret_encrypted = encrypt(signing_secret) if signing_secret else ""
                changed.append("signing_secret")
        for name, value in (("review_channel", review_channel), ("team_id", team_id)):
            if value is not None and getattr(row, name) != value:
                setattr(row, name, value)
                changed.append(name)
        outcome = "created" if created else ("updated" if changed else "unchanged")
        if changed:
            row.save()
        audit.record(
            tenant=tenant,
            actor=actor,
            action="connection.set",
            where=where,
            subject_type="connection",
            subject_id=str(row.pk),
            data={"system": system, "base_url": url, "outcome": outcome, "changed": changed},
        )
    if system == "slack" and team_id is None and row.signing_secret_encrypted and (created or changed):
        learn_team(row)
    return row, outcome


TEAM_UNKNOWN = "Slack's auth.test did not answer ({detail}): Slack clicks for {tenant} are refused until it is set again."


def learn_team(row: Connection) -> str:
    """Ask the tenant's Slack which workspace its token belongs to (``auth.test``, through the one outbound
    door, bounded to a few seconds) and store it: Slack's interaction requests name their workspace, and
    ``POST /api/v1/slack/interactions/`` finds the tenant by it. A failure leaves ``team_id`` as it was
    (setting the connection still succeeds) and is logged for the operator."""
    import logging

    from adapters import http
    from adapters.errors import DownstreamError
    from adapters.slack import web

    try:
        with http.deadline(5):
            team = web.team_of(resolve(row.tenant, "slack"))
    except (DownstreamError, ImproperlyConfigured) as exc:
        logging.getLogger(__name__).warning(
            TEAM_UNKNOWN.format(detail=getattr(exc, "detail", str(exc)), tenant=row.tenant)
        )
        return row.team_id
    if team and team != row.team_id:
        type(row).objects.filter(pk=row.pk).update(team_id=team)
        row.team_id = team
    return row.team_id
