"""``slack.post_message`` against a mocked Slack Web API."""

from __future__ import annotations

from typing import Any

import pytest
import responses
from responses import matchers

from adapters import registry
from adapters.errors import PermanentFailure, TransientFailure

URL = "https://slack.test/api/chat.postMessage"
CTX = registry.Context(tenant="acme")


@pytest.fixture(autouse=True)
def slack_settings(settings: Any, fast_retries: None) -> None:
    settings.SLACK_API_URL = "https://slack.test/api"
    settings.SLACK_BOT_TOKEN = "xoxb-test"
    settings.ACME_RATE_LIMITS = {"slack.post_message": []}  # rate limits have their own tests


@pytest.fixture
def mocked() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def test_preview_shows_channel_and_a_short_excerpt() -> None:
    text = "The printer on the third floor is on fire again, please send someone with an extinguisher"
    prepared = registry.prepare("slack.post_message", {"channel": "Support", "text": text}, CTX)
    assert prepared.args == {"channel": "#support", "text": text}
    assert prepared.risk == "low"
    assert prepared.preview.summary == f'Post to #support: "{text[:60].rstrip()}…"'
    assert prepared.preview.changes == [
        {"field": "channel", "before": None, "after": "#support"},
        {"field": "text", "before": None, "after": text},
    ]


def test_short_text_is_not_ellipsized() -> None:
    assert registry.prepare("slack.post_message", {"channel": "#a", "text": "hi"}, CTX).preview.summary == (
        'Post to #a: "hi"'
    )


def test_post_sends_channel_text_and_bearer(mocked: Any) -> None:
    mocked.post(
        URL,
        json={"ok": True, "channel": "C0SUPPORT1", "ts": "1712.000100"},
        match=[
            matchers.header_matcher({"Authorization": "Bearer xoxb-test"}),
            matchers.json_params_matcher(
                {
                    "channel": "#support",
                    "text": "hi",
                    # the post's tag, looked for before a resend (tests/adapters/test_slack_exactly_once.py)
                    "metadata": {"event_type": "acme_proposal", "event_payload": {"key": "k"}},
                }
            ),
        ],
    )
    outcome = registry.execute(
        "slack.post_message", {"channel": "#support", "text": "hi"}, idempotency_key="k"
    )
    assert outcome.system == "slack"
    assert outcome.external_id == "C0SUPPORT1:1712.000100"


@pytest.mark.parametrize("error", ["channel_not_found", "not_authed", "invalid_auth"])
def test_ok_false_is_a_permanent_failure(mocked: Any, error: str) -> None:
    mocked.post(URL, json={"ok": False, "error": error})
    with pytest.raises(PermanentFailure, match=error):
        registry.execute("slack.post_message", {"channel": "#x", "text": "hi"}, idempotency_key="k")


def test_ratelimited_in_the_body_is_transient(mocked: Any) -> None:
    mocked.post(URL, json={"ok": False, "error": "ratelimited"})
    with pytest.raises(TransientFailure):
        registry.execute("slack.post_message", {"channel": "#x", "text": "hi"}, idempotency_key="k")


@pytest.mark.parametrize("body", [{"ok": True}, {"nope": 1}, {"ok": "maybe"}])
def test_malformed_slack_response(mocked: Any, body: Any) -> None:
    mocked.post(URL, json=body)
    with pytest.raises(PermanentFailure, match="malformed"):
        registry.execute("slack.post_message", {"channel": "#x", "text": "hi"}, idempotency_key="k")
