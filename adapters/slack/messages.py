"""``slack.post_message``: preview and commit.

Slack answers HTTP 200 with ``{"ok": false, "error": ...}`` for most failures, so the body decides.
Slack keeps no idempotency key: a retry after a lost response (timeout) can post twice; we still send
the header (harmless, and the sandbox honours it) so the same request is recognisable in logs.

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


def execute(args: PostMessageArgs, idempotency_key: str, snapshot: dict[str, Any]) -> Outcome:
    return post(args.channel, sent_text(args, snapshot), idempotency_key)


def post(channel: str, text: str, idempotency_key: str) -> Outcome:
    """``chat.postMessage`` with ``text`` exactly as given (escaped, or approved as formatting)."""
    # The current tenant's Slack (adapters.connections): its own workspace, else SLACK_API_URL/SLACK_BOT_TOKEN.
    conn = connections.current(DOWNSTREAM)
    response = http.call(
        DOWNSTREAM,
        "POST",
        f"{conn.base_url}/chat.postMessage",
        json={"channel": channel, "text": text},
        headers={
            "Authorization": f"Bearer {conn.token()}",
            "Content-Type": "application/json; charset=utf-8",
        },
        idempotency_key=idempotency_key,
        breaker_key=conn.key,
        public_only=conn.public_only,
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
