"""Finding a Slack post again: how a post whose answer was lost is adopted rather than sent twice.

Slack keeps no idempotency key. Each post carries the proposal's key in its message ``metadata``
(``{"event_type": "acme_proposal", "event_payload": {"key": ...}}``); ``find`` reads the channel's history
(``conversations.history`` with ``include_all_metadata``, from a given time, a bounded number of pages) for
the message with that key. ``conversations.history`` takes a channel id, so ``_channel_id`` resolves a
'#name' through ``conversations.list``. When a look-up cannot be made (an error, or more history than the
pages read), ``TransientFailure`` is raised: not knowing whether the post was made, it is not sent again.
``adapters.slack.messages.post`` decides when to look.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from adapters import connections, http
from adapters.errors import TransientFailure
from adapters.slack.web import DOWNSTREAM


class MessageMetadata(BaseModel):
    model_config = ConfigDict(extra="ignore")

    event_type: str = ""
    event_payload: dict[str, Any] = Field(default_factory=dict)


class HistoryMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ts: str
    metadata: MessageMetadata | None = None


class ResponseMetadata(BaseModel):
    model_config = ConfigDict(extra="ignore")

    next_cursor: str = ""


class HistoryResponse(BaseModel):
    """``conversations.history`` (and the channel id of ``conversations.list``'s answer, below)."""

    model_config = ConfigDict(extra="ignore")

    ok: bool
    error: str | None = None
    messages: list[HistoryMessage] = Field(default_factory=list)
    has_more: bool = False
    response_metadata: ResponseMetadata | None = None


class ChannelItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    name: str = ""


class ListResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    ok: bool
    error: str | None = None
    channels: list[ChannelItem] = Field(default_factory=list)
    response_metadata: ResponseMetadata | None = None


# The tag every post carries (Slack message metadata), found again by ``find``.
METADATA_EVENT = "acme_proposal"
# The history is read from the first attempt's time minus this margin (Slack's clock and ours may differ),
# or, for a resumed commit (the first attempt was made by an earlier run), from this long ago.
LOOKUP_MARGIN = 120.0
RESUMED_LOOKBACK = 7 * 86400.0
# Pages of history (and of the channel list) read at most: a busy channel is not read without end.
LOOKUP_PAGES = 10
PAGE_SIZE = 200


def _slack_get(conn: connections.Resolved, method: str, params: dict[str, Any], model: Any) -> Any:
    response = http.call(
        DOWNSTREAM,
        "GET",
        f"{conn.base_url}/{method}",
        params=params,
        headers={"Authorization": f"Bearer {conn.token()}"},
        breaker_key=conn.key,
        public_only=conn.public_only,
    )
    body = http.parse(model, response, DOWNSTREAM)
    if not body.ok:
        error = (body.error or "unknown_error")[:100]
        # Not knowing whether the post was made, we do not post again: the commit records a failure.
        raise TransientFailure(
            detail=f"slack: {method} for a post whose answer was lost: {error}", attempts=0
        )
    return body


def _channel_id(conn: connections.Resolved, channel: str) -> str:
    """``conversations.history`` takes a channel id; an agent may name the channel ('#general')."""
    if not channel.startswith("#"):
        return channel
    name, cursor = channel[1:], ""
    for _ in range(LOOKUP_PAGES):
        params = {"limit": PAGE_SIZE, "exclude_archived": "true", "types": "public_channel,private_channel"}
        page = _slack_get(
            conn, "conversations.list", {**params, **({"cursor": cursor} if cursor else {})}, ListResponse
        )
        for item in page.channels:
            if item.name == name:
                return str(item.id)
        cursor = page.response_metadata.next_cursor if page.response_metadata else ""
        if not cursor:
            break
    raise TransientFailure(detail=f"slack: channel {channel} not found to look for a lost post", attempts=0)


def find(conn: connections.Resolved, channel_id: str, idempotency_key: str, *, oldest: float) -> str | None:
    """The ``ts`` of the message in channel ``channel_id`` tagged with ``idempotency_key`` posted since
    ``oldest`` (epoch seconds), or None; raises ``TransientFailure`` when the history cannot be read."""
    cursor = ""
    for _ in range(LOOKUP_PAGES):
        params: dict[str, Any] = {
            "channel": channel_id,
            "oldest": f"{max(oldest, 0):.6f}",
            "limit": PAGE_SIZE,
            "include_all_metadata": "true",
        }
        if cursor:
            params["cursor"] = cursor
        page = _slack_get(conn, "conversations.history", params, HistoryResponse)
        for message in page.messages:
            tag = message.metadata
            if tag and tag.event_type == METADATA_EVENT and tag.event_payload.get("key") == idempotency_key:
                return message.ts
        cursor = page.response_metadata.next_cursor if page.response_metadata else ""
        if not page.has_more or not cursor:
            return None
    # A busier channel than the pages read: not knowing, we do not post again.
    raise TransientFailure(detail="slack: too much history to look for a lost post", attempts=0)
