"""``slack.post_message``: preview and commit.

Slack answers HTTP 200 with ``{"ok": false, "error": ...}`` for most failures, so the body decides.
Slack keeps no idempotency key: a retry after a lost response (timeout) can post twice; we still send
the header (harmless, and the sandbox honours it) so the same request is recognisable in logs.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from adapters import connections, http
from adapters.errors import PermanentFailure, TransientFailure
from adapters.normalize import ArgsModel, Channel, CleanText
from adapters.registry import Outcome, Preview

DOWNSTREAM = "slack"
PREVIEW_CHARS = 60
# Slack errors that may heal; anything else (channel_not_found, not_authed, ...) will not.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class PostMessageArgs(ArgsModel):
    channel: Channel = Field(description="'#name' or a channel id like C0123ABCD.")
    text: Annotated[str, Field(min_length=1, max_length=4000), CleanText]


class PostMessageResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ok: bool
    error: str | None = None
    channel: str | None = None
    ts: str | None = None


def preview(args: PostMessageArgs) -> Preview:
    excerpt = args.text if len(args.text) <= PREVIEW_CHARS else args.text[:PREVIEW_CHARS].rstrip() + "…"
    excerpt = " ".join(excerpt.split())  # one line in the summary
    return Preview(
        summary=f'Post to {args.channel}: "{excerpt}"',
        changes=[
            {"field": "channel", "before": None, "after": args.channel},
            {"field": "text", "before": None, "after": args.text},
        ],
    )


def execute(args: PostMessageArgs, idempotency_key: str, snapshot: dict[str, Any]) -> Outcome:
    # The current tenant's Slack (adapters.connections): its own workspace, else SLACK_API_URL/SLACK_BOT_TOKEN.
    conn = connections.current(DOWNSTREAM)
    response = http.call(
        DOWNSTREAM,
        "POST",
        f"{conn.base_url}/chat.postMessage",
        json={"channel": args.channel, "text": args.text},
        headers={
            "Authorization": f"Bearer {conn.token()}",
            "Content-Type": "application/json; charset=utf-8",
        },
        idempotency_key=idempotency_key,
        breaker_key=conn.key,
    )
    attempts = http.attempts_of(response)
    body = http.parse(PostMessageResponse, response, DOWNSTREAM)
    if not body.ok:
        error = (body.error or "unknown_error")[:100]
        if error in TRANSIENT_ERRORS:
            raise TransientFailure(detail=f"slack: {error}", attempts=attempts)
        raise PermanentFailure(detail=f"slack: {error}", attempts=attempts, status=response.status_code)
    if not body.ts or not body.channel:
        raise PermanentFailure(detail="slack sent a malformed response (ts, channel)", attempts=attempts)
    return Outcome(
        system="slack",
        external_id=f"{body.channel}:{body.ts}",
        summary={"channel": body.channel, "ts": body.ts},
        attempts=attempts,
    )
