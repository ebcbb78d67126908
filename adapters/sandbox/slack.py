"""The sandbox Slack: ``chat.postMessage`` as the Web API answers it (HTTP 200, ``ok`` in the body).

Extension: the ``Idempotency-Key`` header is honoured (Slack itself has none), so tests can show the
difference between a replay and a double post; ``POST /_sandbox/config {"slack_idempotency": false}`` turns
it off, as on the real Slack.

A post's ``metadata`` (``{"event_type": ..., "event_payload": {...}}``) is kept with its message, and
``conversations.history`` (``channel`` id, ``oldest``, ``limit``, ``cursor``; the metadata only with
``include_all_metadata``) and ``conversations.list`` answer as Slack does, newest message first."""

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
        if key and store.slack_idempotency and ("slack", key) in store.idempotency:
            return store.idempotency[("slack", key)][1]
        # ts is the message's id in its channel: unique and increasing.
        store.last_ts = max(time.time(), store.last_ts + 0.000001)
        ts = f"{store.last_ts:.6f}"
        message: dict[str, Any] = {"type": "message", "text": text, "ts": ts, "channel": channel_id}
        metadata = body.get("metadata")
        if isinstance(metadata, dict) and isinstance(metadata.get("event_type"), str):
            message["metadata"] = {
                "event_type": metadata["event_type"],
                "event_payload": metadata.get("event_payload") or {},
            }
        store.messages.append(message)
        reply = Reply(200, {"ok": True, "channel": channel_id, "ts": ts, "message": message})
        if key and store.slack_idempotency:
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


def _page(params: dict[str, Any]) -> tuple[int, int]:
    """(offset, limit) of a page: ``cursor`` is the offset of the page (an opaque string to clients)."""
    try:
        limit = min(max(int(params.get("limit") or 100), 1), 1000)
        offset = int(params.get("cursor") or 0)
    except ValueError:
        return 0, 0
    return offset, limit


def conversations_history(store: Store, params: dict[str, Any], headers: Any) -> Reply:
    if headers.get("Authorization", "") != f"Bearer {store.slack_token}":
        return Reply(200, {"ok": False, "error": "invalid_auth"})
    channel_id = str(params.get("channel") or "")
    if channel_id not in SEED_CHANNELS:  # an id, as Slack requires here (not '#name')
        return Reply(200, {"ok": False, "error": "channel_not_found"})
    try:
        oldest = float(params.get("oldest") or 0)
    except ValueError:
        return Reply(200, {"ok": False, "error": "invalid_arguments"})
    offset, limit = _page(params)
    if limit == 0:
        return Reply(200, {"ok": False, "error": "invalid_cursor"})
    with_metadata = str(params.get("include_all_metadata", "")).lower() in ("1", "true")
    with store.lock:
        found = [m for m in store.messages if m["channel"] == channel_id and float(m["ts"]) > oldest]
    found.sort(key=lambda m: float(m["ts"]), reverse=True)
    page = [
        {k: v for k, v in m.items() if k != "channel" and (with_metadata or k != "metadata")}
        for m in found[offset : offset + limit]
    ]
    more = offset + limit < len(found)
    return Reply(
        200,
        {
            "ok": True,
            "messages": page,
            "has_more": more,
            "response_metadata": {"next_cursor": str(offset + limit) if more else ""},
        },
    )


def conversations_list(store: Store, params: dict[str, Any], headers: Any) -> Reply:
    if headers.get("Authorization", "") != f"Bearer {store.slack_token}":
        return Reply(200, {"ok": False, "error": "invalid_auth"})
    offset, limit = _page(params)
    channels = [{"id": cid, "name": name} for cid, name in SEED_CHANNELS.items()]
    more = offset + limit < len(channels)
    return Reply(
        200,
        {
            "ok": True,
            "channels": channels[offset : offset + limit],
            "response_metadata": {"next_cursor": str(offset + limit) if more else ""},
        },
    )


def route(
    store: Store, method: str, path: str, body: Any, headers: Any, query: dict[str, Any] | None = None
) -> Reply:
    # Slack's read methods take their arguments in the query (GET) or a form body (POST).
    params = {**(query or {}), **(body if isinstance(body, dict) else {})}
    if path == "/slack/api/conversations.history" and method in ("GET", "POST"):
        return conversations_history(store, params, headers)
    if path == "/slack/api/conversations.list" and method in ("GET", "POST"):
        return conversations_list(store, params, headers)
    from adapters.sandbox import slack_review  # approvals' methods and the demo's click page

    review = slack_review.route(store, method, path, body, headers, post_message)
    if review is not None:
        return review
    if path == "/slack/api/chat.postMessage" and method == "POST":
        return post_message(store, body, headers)
    if path == "/slack/api/chat.delete" and method == "POST":
        return delete_message(store, body, headers)
    return Reply(404, {"ok": False, "error": "unknown_method"})
