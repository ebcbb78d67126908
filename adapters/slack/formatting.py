"""What a Slack post says, as sent and as people will read it: escaped by default, spelled out where a
policy lets Slack's formatting through.

Slack reads ``<...>`` in ``text`` as formatting: ``<https://evil.example|https://sso.acme.example>`` is a
link whose label hides its target, ``<!channel>`` notifies everyone in the channel. What the reviewer sees
is what is sent, so by default the text is sent literally: ``&``, ``<`` and ``>`` are escaped as Slack
documents (``&amp;``, ``&lt;``, ``&gt;``) and Slack shows the characters as typed. A tenant's policy may
allow formatting (``allow_slack_markup``): the text is then sent as written, and the preview spells every
link's target and every mention out, raises the risk and says which policy let it through
(``render``, ``render_for``). ``adapters.slack.messages`` keeps the choice in the preview's snapshot, so the
commit sends exactly the text the reviewer saw.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from adapters import policy
from adapters.types import Context, Risk

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
