"""The sandbox Slack: ``chat.postMessage`` as the Web API answers it (HTTP 200, ``ok`` in the body).

Extension: the ``Idempotency-Key`` header is honoured (Slack itself has none), so tests can show the
difference between a replay and a double post."""

from __future__ import annotations

import time
from typing import Any

from adapters.sandbox.state import SEED_CHANNELS, Reply, Store


def _channel_id(channel: str) -> str | None:
    if channel in SEED_CHANNELS:
        return channel
    name = channel.removeprefix("#")
    for channel_id, known in SEED_CHANNELS.items():
        if known == name:
            return channel_id
    return None


def post_message(store: Store, body: Any, headers: Any) -> Reply:
    auth = headers.get("Authorization", "")
    if not auth:
        return Reply(200, {"ok": False, "error": "not_authed"})
    if auth != f"Bearer {store.slack_token}":
        return Reply(200, {"ok": False, "error": "invalid_auth"})
    if not isinstance(body, dict):
        return Reply(200, {"ok": False, "error": "invalid_arguments"})
    channel_id = _channel_id(str(body.get("channel") or ""))
    if channel_id is None:
        return Reply(200, {"ok": False, "error": "channel_not_found"})
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        return Reply(200, {"ok": False, "error": "no_text"})
    if len(text) > 40000:
        return Reply(200, {"ok": False, "error": "msg_too_long"})
    key = headers.get("Idempotency-Key")
    with store.lock:
        if key and ("slack", key) in store.idempotency:
            return store.idempotency[("slack", key)][1]
        # ts is the message's id in its channel: unique and increasing.
        store.last_ts = max(time.time(), store.last_ts + 0.000001)
        ts = f"{store.last_ts:.6f}"
        message = {"type": "message", "text": text, "ts": ts, "channel": channel_id}
        store.messages.append(message)
        reply = Reply(200, {"ok": True, "channel": channel_id, "ts": ts, "message": message})
        if key:
            store.idempotency[("slack", key)] = ("", reply)
        return reply


def delete_message(store: Store, body: Any, headers: Any) -> Reply:
    if headers.get("Authorization", "") != f"Bearer {store.slack_token}":
        return Reply(200, {"ok": False, "error": "invalid_auth"})
    if not isinstance(body, dict):
        return Reply(200, {"ok": False, "error": "invalid_arguments"})
    channel_id = _channel_id(str(body.get("channel") or ""))
    with store.lock:
        for message in store.messages:
            if message["channel"] == channel_id and message["ts"] == body.get("ts"):
                store.messages.remove(message)
                return Reply(200, {"ok": True, "channel": channel_id, "ts": message["ts"]})
    return Reply(200, {"ok": False, "error": "message_not_found"})


def route(store: Store, method: str, path: str, body: Any, headers: Any) -> Reply:
    if path == "/slack/api/chat.postMessage" and method == "POST":
        return post_message(store, body, headers)
    if path == "/slack/api/chat.delete" and method == "POST":
        return delete_message(store, body, headers)
    return Reply(404, {"ok": False, "error": "unknown_method"})
