"""Bearer-token authentication for agents and people (contract 3)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from approvals.models import AgentCredential, UserToken
from approvals.tokens import hash_token

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
        # Lookup by the token's hash: the comparison happens on a digest in an index, so response time
        # does not depend on how much of a guessed token is right.
        digest = hash_token(token)
        agent = AgentCredential.objects.select_related("tenant").filter(token_hash=digest, is_active=True).first()
        if agent is not None:
            AgentCredential.objects.filter(pk=agent.pk).update(last_used_at=timezone.now())
            return agent, agent
        user_token = UserToken.objects.select_related("user").filter(token_hash=digest, is_active=True).first()
        if user_token is not None and user_token.user.is_active:
            UserToken.objects.filter(pk=user_token.pk).update(last_used_at=timezone.now())
            _tell_auditlog(user_token.user)
            return user_token.user, user_token
        raise exceptions.AuthenticationFailed(INVALID_TOKEN)

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="api"'


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
