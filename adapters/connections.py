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

This module writes connections and answers ownership; the rest lives beside it and is re-exported here:
the encryption in ``adapters.connection_secrets``, the base URL's checks in ``adapters.connection_urls``,
the resolution and its scope (``resolve``, ``using``, ``current``) in ``adapters.connection_scope``.
"""

from __future__ import annotations

import functools
import hmac
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import IntegrityError, transaction

from adapters.connection_scope import (
    SYSTEMS,
    Resolved,
    breaker_key,
    current,
    default,
    resolve,
    slack_review_channel,
    using,
)
from adapters.connection_secrets import (
    GENERATE_KEY,
    KEY_INVALID,
    KEY_REQUIRED,
    UNDECRYPTABLE,
    configured_keys,
    decrypt,
    encrypt,
    fernet,
)
from adapters.connection_urls import (
    NOT_PUBLIC,
    UNRESOLVED,
    InvalidConnection,
    check_public,
    default_base_url,
    normalize_base_url,
    private_allowed,
)
from audit import services as audit
from audit.prepared_writes import PreparedInsert

if TYPE_CHECKING:
    from adapters.models import Connection

# The secrets' encryption (adapters.connection_secrets), the base URL's checks (adapters.connection_urls) and
# the resolution with its scope (adapters.connection_scope) live apart; callers and tests reach them here.
__all__ = [
    "DUPLICATE_SIGNING",
    "GENERATE_KEY",
    "KEY_INVALID",
    "KEY_REQUIRED",
    "NOT_PUBLIC",
    "SYSTEMS",
    "TEAM_UNKNOWN",
    "UNDECRYPTABLE",
    "UNRESOLVED",
    "InvalidConnection",
    "Resolved",
    "breaker_key",
    "check_public",
    "configured_keys",
    "connection_set",
    "current",
    "decrypt",
    "default",
    "default_base_url",
    "encrypt",
    "fernet",
    "learn_team",
    "normalize_base_url",
    "owns",
    "private_allowed",
    "record_created",
    "resolve",
    "signing_secret_taken",
    "slack_review_channel",
    "using",
]

DUPLICATE_SIGNING = "This signing secret is already used by another tenant (or is CRM_WEBHOOK_SECRET); each tenant needs its own."


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
    if not conn.tenant:
        return
    record = CreatedRecord(
        tenant=conn.tenant, system=system, base_url=conn.base_url, external_id=str(external_id)
    )
    # Insert first: a record is new but on a retry, and then the unique constraint says it is there.
    db = transaction.get_connection()
    own_transaction = not db.in_atomic_block
    try:
        with transaction.atomic():
            if own_transaction and db.vendor == "postgresql":
                # Not waited for on disk: the commit's receipt, written after it in the same database, is
                # (WAL is flushed in order, so the receipt's flush makes this row durable too). Were the
                # database to crash before the receipt, the commit runs again and records the ticket again.
                with db.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            _created_insert().insert(record)
    except IntegrityError:
        pass


@functools.cache
def _created_insert() -> PreparedInsert:
    """Compiled once (audit.prepared): every created record is remembered; built on first use, after the
    models load."""
    from adapters.models import CreatedRecord

    return PreparedInsert(CreatedRecord)


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
