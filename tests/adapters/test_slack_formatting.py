"""Slack formatting (issue 23, item 1): escaped by default, so the text posts literally; spelled out, with
a raised risk and a policy note, where a tenant's policy lets links and mentions through."""

from __future__ import annotations

from typing import Any

import pytest

from adapters import policy, registry
from adapters.slack import messages

CTX = registry.Context(tenant="acme", agent="bot")

# --- Slack formatting (item 1): escaped by default --------------------------------------------------------

PHISH = "Please verify: <https://evil.example|https://sso.acme.example/verify> <!channel>"


def test_by_default_the_text_is_escaped_and_the_preview_shows_exactly_that() -> None:
    prepared = registry.prepare("slack.post_message", {"channel": "#general", "text": PHISH}, CTX)

    sent = "Please verify: &lt;https://evil.example|https://sso.acme.example/verify&gt; &lt;!channel&gt;"
    assert {"field": "text", "before": None, "after": sent} in prepared.preview.changes
    assert (
        messages.sent_text(
            messages.PostMessageArgs(channel="#general", text=PHISH), prepared.preview.snapshot
        )
        == sent
    )
    assert prepared.preview.snapshot == {}
    assert messages.NOTE_ESCAPED in prepared.preview.notes
    assert prepared.risk == "low"  # nothing in it can link or ping anyone


def test_ampersands_are_escaped_too() -> None:
    assert messages.render("Tom & Jerry &lt;3", markup=False).sent == "Tom &amp; Jerry &amp;lt;3"


def _allowing(**extra: Any) -> registry.Context:
    rule = policy.PolicyRule(name="links-ok", tool="slack.post_message", allow_slack_markup=True, **extra)
    return registry.Context(tenant="acme", agent="bot", policy=(rule,))


def test_where_the_policy_allows_markup_links_and_mentions_are_spelled_out_and_the_risk_is_high() -> None:
    prepared = registry.prepare("slack.post_message", {"channel": "#general", "text": PHISH}, _allowing())

    assert {"field": "text", "before": None, "after": PHISH} in prepared.preview.changes
    assert {
        "field": "as Slack shows it",
        "before": None,
        "after": "Please verify: https://sso.acme.example/verify (→ https://evil.example) @channel",
    } in (prepared.preview.changes)
    assert prepared.preview.snapshot == {"slack_markup": True}
    assert prepared.risk == "high"
    notes = prepared.preview.notes
    assert notes[0] == messages.NOTE_MARKUP.format(policy="links-ok")
    assert messages.NOTE_BROADCAST.format(mention="@channel") in notes
    assert (
        messages.NOTE_DISGUISED.format(label="https://sso.acme.example/verify", target="https://evil.example")
        in notes
    )


def test_an_honest_link_or_a_user_mention_is_medium_risk() -> None:
    rendered = messages.render(
        "See <https://acme.example/doc|the doc> and ask <@U123ABC>", markup=True, policy_name="p"
    )

    assert rendered.display == "See the doc (→ https://acme.example/doc) and ask @user U123ABC"
    assert rendered.risk == "medium"


@pytest.mark.parametrize("mention", ["<!here>", "<!everyone>", "<!subteam^S0123|@oncall>"])
def test_broadcasts_are_high_risk(mention: str) -> None:
    assert messages.render(f"hi {mention}", markup=True).risk == "high"


def test_plain_text_allowed_markup_changes_nothing() -> None:
    prepared = registry.prepare("slack.post_message", {"channel": "#a", "text": "hi"}, _allowing())

    assert prepared.risk == "low"
    assert prepared.preview.notes == []
    assert prepared.preview.changes == [
        {"field": "channel", "before": None, "after": "#a"},
        {"field": "text", "before": None, "after": "hi"},
    ]
