"""``slack.post_message``: preview and commit.

Slack answers HTTP 200 with ``{"ok": false, "error": ...}`` for most failures, so the body decides.

Slack keeps no idempotency key, so a post is made exactly once another way. Each post carries the
proposal's key in its message ``metadata``. Before a post whose outcome is unknown is sent again (the
attempt before it timed out, lost its connection or met a 5xx; or an earlier run of the commit spent
attempts: ``resumed``), the channel's history is read from the first attempt's time minus a margin
(``adapters.slack.lookup``) and a message with the key is adopted: the receipt gets its ``ts`` and says
``reconciled``. When the look-up itself fails, the post is not sent again (a failure the commit records,
not a possible double). We still send the ``Idempotency-Key`` header (harmless, and the sandbox honours it)
so the same request is recognisable in logs.

The text is escaped by default, or sent as written where a tenant's policy allows Slack's formatting, with
every link and mention spelled out in the preview (``adapters.slack.formatting``). Which of the two applies
is decided at the preview and kept in its snapshot (``slack_markup``), so the commit sends exactly the text
the reviewer saw, whatever the policy says later.

The look-up (``adapters.slack.lookup``) and the formatting (``adapters.slack.formatting``) live apart;
callers and tests keep reaching their names here.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from adapters import connections, http
from adapters.errors import PermanentFailure, TransientFailure
from adapters.normalize import ArgsModel, Channel, CleanText
from adapters.registry import Context, Outcome, Preview
from adapters.slack.formatting import (
    NOTE_BROADCAST,
    NOTE_DISGUISED,
    NOTE_ESCAPED,
    NOTE_LINK,
    NOTE_MARKUP,
    NOTE_MENTION,
    TOOL,
    Rendered,
    escape,
    render,
    render_for,
)
from adapters.slack.lookup import (
    LOOKUP_MARGIN,
    LOOKUP_PAGES,
    METADATA_EVENT,
    PAGE_SIZE,
    RESUMED_LOOKBACK,
    ChannelItem,
    HistoryMessage,
    HistoryResponse,
    ListResponse,
    MessageMetadata,
    ResponseMetadata,
    _channel_id,
    find,
)

__all__ = [
    "DOWNSTREAM",
    "LOOKUP_MARGIN",
    "LOOKUP_PAGES",
    "METADATA_EVENT",
    "NOTE_BROADCAST",
    "NOTE_DISGUISED",
    "NOTE_ESCAPED",
    "NOTE_LINK",
    "NOTE_MARKUP",
    "NOTE_MENTION",
    "PAGE_SIZE",
    "PREVIEW_CHARS",
    "RESUMED_LOOKBACK",
    "TOOL",
    "TRANSIENT_ERRORS",
    "ChannelItem",
    "HistoryMessage",
    "HistoryResponse",
    "ListResponse",
    "MessageMetadata",
    "PostMessageArgs",
    "PostMessageResponse",
    "Rendered",
    "ResponseMetadata",
    "_channel_id",
    "escape",
    "execute",
    "find",
    "post",
    "preview",
    "render",
    "render_for",
    "sent_text",
]

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


def preview(args: PostMessageArgs, ctx: Context) -> Preview:
    rendered = render_for(args.text, ctx)
    excerpt = rendered.display
    excerpt = excerpt if len(excerpt) <= PREVIEW_CHARS else excerpt[:PREVIEW_CHARS].rstrip() + "…"
    excerpt = " ".join(excerpt.split())  # one line in the summary
    changes = [
        {"field": "channel", "before": None, "after": args.channel},
        # Exactly the text chat.postMessage receives.
        {"field": "text", "before": None, "after": rendered.sent},
    ]
    if rendered.display != rendered.sent:
        changes.append({"field": "as Slack shows it", "before": None, "after": rendered.display})
    return Preview(
        summary=f'Post to {args.channel}: "{excerpt}"',
        changes=changes,
        snapshot={"slack_markup": True} if rendered.markup else {},
        notes=rendered.notes,
        risk=rendered.risk,
    )


def sent_text(args: PostMessageArgs, snapshot: dict[str, Any]) -> str:
    """The text the preview showed: as written where it was approved with formatting, else escaped (also
    for a snapshot that says nothing: the safe reading)."""
    return render(args.text, markup=snapshot.get("slack_markup") is True).sent


def execute(
    args: PostMessageArgs, idempotency_key: str, snapshot: dict[str, Any], *, resumed: bool = False
) -> Outcome:
    """``resumed``: an earlier run of this commit may have posted it (the registry's ``takes_resumed``)."""
    return post(args.channel, sent_text(args, snapshot), idempotency_key, resumed=resumed)


class _Found(Exception):
    """The post was found already made: ends the call that was about to send it again."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.external_id)
        self.outcome = outcome


def _adopted(channel_id: str, ts: str, attempts: int) -> Outcome:
    return Outcome(
        system="slack",
        external_id=f"{channel_id}:{ts}",
        summary={"channel": channel_id, "ts": ts},
        attempts=attempts,
        reconciled=True,
    )


def post(channel: str, text: str, idempotency_key: str, *, resumed: bool = False) -> Outcome:
    """``chat.postMessage`` with ``text`` exactly as given (escaped, or approved as formatting), made once:
    tagged with ``idempotency_key``, looked for before any resend whose earlier attempt may have posted it."""
    # The current tenant's Slack (adapters.connections): its own workspace, else SLACK_API_URL/SLACK_BOT_TOKEN.
    conn = connections.current(DOWNSTREAM)
    first_attempt = time.time()
    if resumed:
        channel_id = _channel_id(conn, channel)
        found = find(conn, channel_id, idempotency_key, oldest=first_attempt - RESUMED_LOOKBACK)
        if found:
            return _adopted(channel_id, found, 0)

    def look_first(number: int) -> None:
        try:
            channel_id = _channel_id(conn, channel)
            found = find(conn, channel_id, idempotency_key, oldest=first_attempt - LOOKUP_MARGIN)
        except TransientFailure as failure:
            raise TransientFailure(detail=failure.detail, attempts=number - 1) from None
        if found:
            raise _Found(_adopted(channel_id, found, number - 1))

    try:
        response = http.call(
            DOWNSTREAM,
            "POST",
            f"{conn.base_url}/chat.postMessage",
            json={
                "channel": channel,
                "text": text,
                "metadata": {"event_type": METADATA_EVENT, "event_payload": {"key": idempotency_key}},
            },
            headers={
                "Authorization": f"Bearer {conn.token()}",
                "Content-Type": "application/json; charset=utf-8",
            },
            idempotency_key=idempotency_key,
            breaker_key=conn.key,
            public_only=conn.public_only,
            before_resend=look_first,
        )
    except _Found as found:
        return found.outcome
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
