"""Slack Web API calls for the approval messages: ``auth.test``, ``chat.postMessage`` / ``chat.update`` with
Block Kit blocks, ``chat.postEphemeral``, ``views.open``.

Not slack-sdk's ``WebClient``: it sends with its own urllib stack, so it would bypass the one outbound door
(``adapters.http``: the per-connection breaker and rate limits, retries with Retry-After, the SSRF-safe
sessions of a tenant's own connection). The bodies are built with the SDK's Block Kit models
(``adapters.slack.blocks``) and sent through ``adapters.http.call``; each answer is parsed by pydantic.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from adapters import http
from adapters.connections import Resolved
from adapters.errors import PermanentFailure, TransientFailure

DOWNSTREAM = "slack"
# Web API errors that heal by themselves (docs.slack.dev "Web API" errors): worth another try later.
TRANSIENT = frozenset(
    {"ratelimited", "service_unavailable", "internal_error", "fatal_error", "request_timeout"}
)


class Answer(BaseModel):
    """The fields of a Web API answer the gateway reads (Slack adds many more)."""

    model_config = ConfigDict(extra="ignore")

    ok: bool
    error: str | None = None
    channel: str | None = None
    ts: str | None = None
    team_id: str | None = None
    user_id: str | None = None


def call(conn: Resolved, method: str, body: dict[str, Any]) -> Answer:
    """POST ``body`` as JSON to ``method`` of ``conn``'s workspace with its bot token. Raises
    TransientFailure or PermanentFailure (``adapters.errors``) when Slack did not answer ``ok``."""
    response = http.call(
        DOWNSTREAM,
        "POST",
        f"{conn.base_url}/{method}",
        json=body,
        headers={
            "Authorization": f"Bearer {conn.token()}",
            "Content-Type": "application/json; charset=utf-8",
        },
        breaker_key=conn.key,
        public_only=conn.public_only,
    )
    answer: Answer = http.parse(Answer, response, DOWNSTREAM)
    if not answer.ok:
        error = (answer.error or "unknown_error")[:100]
        attempts = http.attempts_of(response)
        if error in TRANSIENT:
            raise TransientFailure(detail=f"slack {method}: {error}", attempts=attempts)
        raise PermanentFailure(
            detail=f"slack {method}: {error}", attempts=attempts, status=response.status_code
        )
    return answer


def team_of(conn: Resolved) -> str:
    """The workspace (team id) ``conn``'s token belongs to (``auth.test``)."""
    return call(conn, "auth.test", {}).team_id or ""
