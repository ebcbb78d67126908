"""``slack.post_message`` posts once although Slack keeps no idempotency key: each post is tagged with the
proposal's key (message metadata) and looked for before a resend whose earlier attempt may have posted it."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import responses
from responses import matchers

from adapters import registry
from adapters.errors import TransientFailure

API = "https://slack.test/api"
POST_URL = f"{API}/chat.postMessage"
LIST_URL = f"{API}/conversations.list"
HISTORY_URL = f"{API}/conversations.history"
ARGS = {"channel": "#support", "text": "hi"}
KEY = "acme-proposal-1"
TAG = {"event_type": "acme_proposal", "event_payload": {"key": KEY}}
POSTED = {"ok": True, "channel": "C0SUPPORT1", "ts": "1712.000100"}


@pytest.fixture(autouse=True)
def slack_settings(settings: Any, fast_retries: None) -> None:
    settings.SLACK_API_URL = API
    settings.SLACK_BOT_TOKEN = "xoxb-test"
    settings.ACME_RATE_LIMITS = {"slack.post_message": []}


@pytest.fixture
def mocked() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def channels(rsps: Any) -> None:
    rsps.get(LIST_URL, json={"ok": True, "channels": [{"id": "C0SUPPORT1", "name": "support"}]})


def history(rsps: Any, messages: list[dict[str, Any]]) -> None:
    rsps.get(
        HISTORY_URL,
        json={"ok": True, "messages": messages, "has_more": False},
        match=[
            matchers.query_param_matcher(
                {"channel": "C0SUPPORT1", "include_all_metadata": "true", "limit": "200"}, strict_match=False
            )
        ],
    )


def posts(rsps: Any) -> int:
    return sum(1 for call in rsps.calls if call.request.url == POST_URL)


def test_a_post_whose_answer_was_lost_is_found_and_adopted_not_sent_again(mocked: Any) -> None:
    # given the first post went through but its answer was lost (the connection broke)
    mocked.post(POST_URL, body=requests.ConnectionError("connection reset after send"))
    channels(mocked)
    history(
        mocked, [{"ts": "1712.000300", "text": "other"}, {"ts": "1712.000200", "text": "hi", "metadata": TAG}]
    )

    # when
    outcome = registry.execute("slack.post_message", ARGS, idempotency_key=KEY)

    # then the message found is the receipt's, and no second post left
    assert posts(mocked) == 1
    assert outcome.external_id == "C0SUPPORT1:1712.000200"
    assert outcome.reconciled is True
    assert outcome.attempts == 1
    history_call = next(c for c in mocked.calls if c.request.url.startswith(HISTORY_URL))
    assert "oldest=" in history_call.request.url


def test_a_post_whose_answer_was_lost_and_that_is_not_there_is_sent_again(mocked: Any) -> None:
    mocked.post(POST_URL, status=502, body="Bad Gateway")
    mocked.post(POST_URL, json=POSTED)
    channels(mocked)
    history(
        mocked,
        [
            {
                "ts": "1712.000050",
                "text": "hi",
                "metadata": {"event_type": "acme_proposal", "event_payload": {"key": "another"}},
            }
        ],
    )

    outcome = registry.execute("slack.post_message", ARGS, idempotency_key=KEY)

    assert posts(mocked) == 2
    assert outcome.external_id == "C0SUPPORT1:1712.000100"
    assert outcome.reconciled is False


def test_a_refused_post_is_sent_again_without_looking(mocked: Any) -> None:
    """A 429 says the post was not made: no history is read (none is mocked: a look would fail)."""
    mocked.post(POST_URL, status=429, headers={"Retry-After": "0"})
    mocked.post(POST_URL, json=POSTED)

    outcome = registry.execute("slack.post_message", ARGS, idempotency_key=KEY)

    assert posts(mocked) == 2
    assert outcome.reconciled is False


def test_a_resumed_commit_looks_before_its_first_post(mocked: Any) -> None:
    # an earlier run (its worker died) posted it
    channels(mocked)
    history(mocked, [{"ts": "1712.000200", "text": "hi", "metadata": TAG}])

    outcome = registry.execute("slack.post_message", ARGS, idempotency_key=KEY, resumed=True)

    assert posts(mocked) == 0
    assert (outcome.external_id, outcome.reconciled) == ("C0SUPPORT1:1712.000200", True)


def test_when_the_history_cannot_be_read_the_post_is_not_sent_again(mocked: Any) -> None:
    mocked.post(POST_URL, body=requests.ConnectionError("connection reset after send"))
    channels(mocked)
    mocked.get(HISTORY_URL, json={"ok": False, "error": "missing_scope"})

    with pytest.raises(TransientFailure) as failed:
        registry.execute("slack.post_message", ARGS, idempotency_key=KEY)

    assert posts(mocked) == 1
    assert failed.value.attempts == 1
