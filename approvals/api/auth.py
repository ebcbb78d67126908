"""Bearer-token authentication for agents and people (contract 3)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from approvals.models import AgentCredential, UserToken
from approvals.tokens import hash_token
from audit.prepared import Param, PreparedRead

INVALID_TOKEN = "The bearer token is not valid, or it was revoked."  # noqa: S105 (a message)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN)
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(INVALID_TOKEN) from None
        # Lookup by the token's sha256 in a unique index; the raw token is never compared with anything.
        # Why that is constant-time with respect to the secret: the index comparison (B-tree, memcmp) may
        # well stop at the first differing byte, but it compares *digests*. A guess that shares a prefix
        # with a real token shares nothing with its digest, and steering a guess's digest towards a
        # stored digest byte by byte would need sha256 preimages; so timing can tell an attacker at most
        # how many leading digest bytes of their guess match some stored digest, which says nothing about
        # any token. (tests/security/test_login_and_tokens.py checks that no raw token reaches the database.)
        digest = hash_token(token)
        # A token names its kind ("agt_…" or "usr_…", approvals.tokens.new_token): one table is looked up.
        kind = token.split("_", 1)[0]
        agent = None
        if kind != "usr":
            agent = _AGENT_BY_TOKEN.first(digest=digest)
        if agent is not None:
            _touch(AgentCredential, agent)
            return agent, agent
        user_token = None
        if kind != "agt":
            user_token = _USER_TOKEN_BY_TOKEN.first(digest=digest)
        if user_token is not None and user_token.user.is_active:
            _touch(UserToken, user_token)
            _tell_auditlog(user_token.user)
            return user_token.user, user_token
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="api"'


# Looked up by a unique column: a slice, no ORDER BY to build or run (``first()`` adds one). Compiled once
# (audit.prepared): building the query cost more CPU than PostgreSQL answering it.
_AGENT_BY_TOKEN = PreparedRead(
    lambda digest: AgentCredential.objects.select_related("tenant").filter(token_hash=digest, is_active=True)[
        :1
    ],
    digest=Param.TEXT,
)
_USER_TOKEN_BY_TOKEN = PreparedRead(
    lambda digest: UserToken.objects.select_related("user").filter(token_hash=digest, is_active=True)[:1],
    digest=Param.TEXT,
)


LAST_USED_PRECISION = timedelta(seconds=60)


def _touch(model: Any, credential: Any) -> None:
    """Record when a token was last used, to the minute: an UPDATE on every request would cost a write
    transaction per call for a figure nobody reads to the second."""
    now = timezone.now()
    if credential.last_used_at is None or now - credential.last_used_at > LAST_USED_PRECISION:
        model.objects.filter(pk=credential.pk).update(last_used_at=now)


def _tell_auditlog(user: Any) -> None:
    """django-auditlog's middleware only knows session users; a person authenticated by token here is the
    actor of the model changes this request makes. The middleware's context dict is read when each
    LogEntry is saved, so filling its actor now is enough (django-auditlog has no public hook for this)."""
    from auditlog.context import auditlog_value

    try:
        context = auditlog_value.get()
    except LookupError:
        return
    if context.get("actor") is None:
        context["actor"] = user


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "approvals.api.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "An agent token or a person's API token."}
