"""``slack.post_message``: preview and commit.

Slack answers HTTP 200 with ``{"ok": false, "error": ...}`` for most failures, so the body decides.

Slack keeps no idempotency key, so a post is made exactly once another way. Each post carries the
proposal's key in its message ``metadata`` (``{"event_type": "acme_proposal", "event_payload": {"key":
...}}``). Before a post whose outcome is unknown is sent again (the attempt before it timed out, lost its
connection or met a 5xx; or an earlier run of the commit spent attempts: ``resumed``), the channel's
history is read (``conversations.history`` with ``include_all_metadata``, from the first attempt's time
minus a margin, a bounded number of pages) and a message with the key is adopted: the receipt gets its
``ts`` and says ``reconciled``. When the look-up itself fails, the post is not sent again (a failure the
commit records, not a possible double). We still send the ``Idempotency-Key`` header (harmless, and the
sandbox honours it) so the same request is recognisable in logs.

Slack reads ``<...>`` in ``text`` as formatting: ``<https://evil.example|https://sso.acme.example>`` is a
link whose label hides its target, ``<!channel>`` notifies everyone in the channel. What the reviewer sees
is what is sent, so by default the text is sent literally: ``&``, ``<`` and ``>`` are escaped as Slack
documents (``&amp;``, ``&lt;``, ``&gt;``) and Slack shows the characters as typed. A tenant's policy may
allow formatting (``allow_slack_markup``): the text is then sent as written, and the preview spells every
link's target and every mention out, raises the risk and says which policy let it through. Which of the two
applies is decided at the preview and kept in its snapshot (``slack_markup``), so the commit sends exactly
the text the reviewer saw, whatever the policy says later.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from adapters import connections, http, policy
from adapters.errors import PermanentFailure, TransientFailure
from adapters.normalize import ArgsModel, Channel, CleanText
from adapters.registry import Context, Outcome, Preview, Risk

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


# --- formatting: escaped by default, spelled out where a policy lets it through --------------------------

TOOL = "slack.post_message"
# Slack's own escaping (docs.slack.dev, "Formatting text for app surfaces", escaping text).
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_CONTROL = re.compile(r"<([^<>\n]*)>")
_BROADCASTS = {"channel": "@channel", "here": "@here", "everyone": "@everyone"}
_HOST_LIKE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?([a-z0-9-]+(?:\.[a-z0-9-]+)+)(?:[:/?#]|$)", re.IGNORECASE)

NOTE_ESCAPED = (
    "Sent literally: '&', '<' and '>' are escaped (&amp;, &lt;, &gt;), so Slack shows them as typed and makes "
    "no link or mention of them."
)
NOTE_MARKUP = "Policy {policy!r} lets Slack links and mentions through: the text is sent as written."
NOTE_LINK = "Link: {label!r} goes to {target}."
NOTE_DISGUISED = "Link: {label!r} looks like an address but goes to {target}."
NOTE_BROADCAST = "{mention} notifies everyone in the channel."
NOTE_MENTION = "Mentions {mention}."


def escape(text: str) -> str:
    return text.translate(_ESCAPES)


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _host(text: str) -> str:
    match = _HOST_LIKE.match(text.strip())
    return match.group(1).lower() if match else ""


@dataclass(frozen=True)
class Rendered:
    """A message as it leaves (``sent``: exactly what chat.postMessage receives) and as people will read it
    in Slack (``display``), with what the reviewer must be told about it."""

    sent: str
    display: str
    markup: bool
    risk: Risk | None = None
    notes: list[str] = field(default_factory=list)


def render(text: str, *, markup: bool, policy_name: str = "") -> Rendered:
    """``text`` as it will be sent and shown: escaped (``markup`` False), or as written with every link's
    target and every mention spelled out for the reviewer. A hand-written reader of Slack's few control
    sequences (no library parses Slack's mrkdwn); anything it does not know is shown as Slack would, raw."""
    if not markup:
        return Rendered(
            sent=escape(text),
            display=text,
            markup=False,
            notes=[NOTE_ESCAPED] if text != escape(text) else [],
        )
    notes: list[str] = []
    levels: list[Risk] = []

    def spell_out(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        label = _unescape(label)
        if target.startswith("!"):  # <!channel>, <!here>, <!everyone>, <!subteam^ID|@group>, <!date^...|text>
            name, _, ident = target[1:].partition("^")
            if name in _BROADCASTS:
                levels.append("high")
                notes.append(NOTE_BROADCAST.format(mention=_BROADCASTS[name]))
                return _BROADCASTS[name]
            if name == "subteam":
                levels.append("high")
                notes.append(NOTE_BROADCAST.format(mention=f"user group {label or ident}"))
                return f"{label or '@group'} (user group {ident})"
            if name == "date":
                return label
            levels.append("medium")
            return f"@{name}"
        if target.startswith("@"):  # <@U123> or <@U123|name>
            levels.append("medium")
            mention = f"@user {target[1:]}" + (f" ({label})" if label else "")
            notes.append(NOTE_MENTION.format(mention=mention))
            return mention
        if target.startswith("#"):  # <#C123> or <#C123|name>
            levels.append("medium")
            return f"#{label or target[1:]} (channel {target[1:]})"
        levels.append("medium")
        target = _unescape(target)
        if not label:
            notes.append(NOTE_LINK.format(label=target, target=target))
            return target
        shown_host = _host(label)
        if shown_host and shown_host != _host(target):
            levels.append("high")
            notes.append(NOTE_DISGUISED.format(label=label, target=target))
        else:
            notes.append(NOTE_LINK.format(label=label, target=target))
        return f"{label} (→ {target})"

    display = _unescape(_CONTROL.sub(spell_out, text))
    risk: Risk | None = None
    if levels:
        highest: Risk = max(levels, key=lambda level: policy.RISK_ORDER[level])
        risk = highest
    if levels:
        notes.insert(0, NOTE_MARKUP.format(policy=policy_name))
    return Rendered(sent=text, display=display, markup=True, risk=risk, notes=notes)


def render_for(text: str, ctx: Context) -> Rendered:
    """``text`` as this agent's policy for slack.post_message lets it out (for every tool that posts)."""
    rule = policy.effective_rule(TOOL, ctx)
    return render(text, markup=rule.allow_slack_markup, policy_name=rule.name)


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
