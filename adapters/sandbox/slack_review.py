"""The sandbox Slack's side of Slack approvals: ``auth.test``, ``chat.update``, ``chat.postEphemeral``,
``views.open`` (and the Block Kit ``blocks`` of ``chat.postMessage``), and a page to click the buttons.

``GET /slack/demo`` lists the posted messages with their buttons, the modals opened and the ephemeral
answers; a click (``POST /slack/demo/click``) or a modal's submission (``POST /slack/demo/submit``) is
sent to the gateway's Request URL as Slack sends it: a form-encoded ``payload`` signed with the app's
signing secret (``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``, slack-sdk's ``SignatureVerifier``).
The workspace is ``TEAM_ID``; the signing secret is ``SLACK_SANDBOX_SIGNING_SECRET`` (default
``sandbox-signing-secret``): ``set_connection --system slack --signing-secret`` with the same value
connects a tenant to it. The Request URL is ``SLACK_SANDBOX_REQUEST_URL`` (default
``ACME_PUBLIC_URL`` + ``/api/v1/slack/interactions/``).
"""

from __future__ import annotations

import html
import json
import os
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from adapters.sandbox.state import Reply, Store

TEAM_ID = "T0SANDBOX1"
DEMO_USER = "U0REVIEWER"  # the Slack user the demo page clicks as, unless another is typed in


def signing_secret() -> str:
    return os.environ.get("SLACK_SANDBOX_SIGNING_SECRET", "sandbox-signing-secret")


def request_url() -> str:
    if os.environ.get("SLACK_SANDBOX_REQUEST_URL"):
        return os.environ["SLACK_SANDBOX_REQUEST_URL"]
    from django.conf import settings

    base = str(getattr(settings, "ACME_PUBLIC_URL", "http://127.0.0.1:8000")).rstrip("/")
    return base + "/api/v1/slack/interactions/"


def _state(store: Store) -> dict[str, list[dict[str, Any]]]:
    # Kept beside the Store's own fields (its dataclass belongs to the CRM and the message history).
    state: dict[str, list[dict[str, Any]]] = store.__dict__.setdefault(
        "slack_review", {"views": [], "ephemeral": [], "sent": []}
    )
    return state


def _authed(store: Store, headers: Any) -> bool:
    return bool(headers.get("Authorization", "") == f"Bearer {store.slack_token}")


def _find(store: Store, channel: str, ts: str) -> dict[str, Any] | None:
    return next((m for m in store.messages if m["channel"] == channel and m["ts"] == ts), None)


def _ok(reply: Reply) -> bool:
    return isinstance(reply.body, dict) and bool(reply.body.get("ok"))


def route(store: Store, method: str, path: str, body: Any, headers: Any, post: Any) -> Reply | None:
    """The methods above, or None for the rest of the sandbox Slack. ``post``: its chat.postMessage."""
    if path == "/slack/demo" and method == "GET":
        return Reply(200, page(store).encode(), {"Content-Type": "text/html; charset=utf-8"})
    if path in ("/slack/demo/click", "/slack/demo/submit") and method == "POST":
        return demo_send(store, path, body if isinstance(body, dict) else {})
    if not path.startswith("/slack/api/") or method != "POST":
        return None
    name = path.removeprefix("/slack/api/")
    if name not in ("auth.test", "chat.update", "chat.postEphemeral", "views.open", "chat.postMessage"):
        return None
    if name == "chat.postMessage":  # its own checks and answers; the blocks are kept beside its message
        reply: Reply = post(store, body, headers)
        if isinstance(body, dict) and isinstance(body.get("blocks"), list) and _ok(reply):
            with store.lock:
                found = _find(store, str(reply.body["channel"]), str(reply.body["ts"]))
                if found is not None:
                    found["blocks"] = body["blocks"]
        return reply
    if not headers.get("Authorization", ""):
        return Reply(200, {"ok": False, "error": "not_authed"})
    if not _authed(store, headers):
        return Reply(200, {"ok": False, "error": "invalid_auth"})
    body = body if isinstance(body, dict) else {}
    if name == "auth.test":
        return Reply(200, {"ok": True, "team_id": TEAM_ID, "team": "Sandbox", "user_id": "U0GATEWAY1"})
    if name == "chat.update":
        with store.lock:
            found = _find(store, str(body.get("channel") or ""), str(body.get("ts") or ""))
            if found is None:
                return Reply(200, {"ok": False, "error": "message_not_found"})
            found["text"] = body.get("text") or found["text"]
            found["blocks"] = body.get("blocks") or []
            found["edited"] = {"ts": f"{time.time():.6f}"}
        return Reply(200, {"ok": True, "channel": found["channel"], "ts": found["ts"], "text": found["text"]})
    if name == "chat.postEphemeral":
        with store.lock:
            _state(store)["ephemeral"].append({k: body.get(k) for k in ("channel", "user", "text")})
        return Reply(200, {"ok": True, "message_ts": f"{time.time():.6f}"})
    # views.open
    if not body.get("trigger_id") or not isinstance(body.get("view"), dict):
        return Reply(200, {"ok": False, "error": "invalid_arguments"})
    with store.lock:
        view = {
            **body["view"],
            "id": f"V{len(_state(store)['views']) + 1:08d}",
            "trigger_id": body["trigger_id"],
        }
        _state(store)["views"].append(view)
    return Reply(200, {"ok": True, "view": view})


def sign_and_send(payload: dict[str, Any]) -> tuple[int, str]:
    """POST ``payload`` to the Request URL as Slack does; the gateway's status and body."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(signing_secret()).generate_signature(timestamp=timestamp, body=body)
    request = urllib.request.Request(  # noqa: S310 - the configured gateway URL, http(s) only
        request_url(),
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature or "",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return int(response.status), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8", "replace")
    except OSError as exc:
        return 0, str(exc)


def demo_send(store: Store, path: str, form: dict[str, Any]) -> Reply:
    user = str(form.get("user") or DEMO_USER)
    if path.endswith("/click"):
        payload = {
            "type": "block_actions",
            "team": {"id": TEAM_ID},
            "user": {"id": user},
            "channel": {"id": form.get("channel", "")},
            "container": {
                "type": "message",
                "channel_id": form.get("channel", ""),
                "message_ts": form.get("ts", ""),
            },
            "trigger_id": f"trigger-{time.time():.6f}",
            "actions": [
                {"type": "button", "action_id": form.get("action_id", ""), "value": form.get("value", "")}
            ],
        }
    else:
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM_ID},
            "user": {"id": user},
            "view": {
                "id": form.get("view_id", ""),
                "callback_id": form.get("callback_id", ""),
                "private_metadata": form.get("private_metadata", ""),
                "state": {
                    "values": {
                        form.get("block_id", ""): {
                            form.get("input_id", ""): {"value": form.get("reason", "")}
                        }
                    }
                },
            },
        }
    status, answer = sign_and_send(payload)
    with store.lock:
        _state(store)["sent"].append(
            {"type": payload["type"], "user": user, "status": status, "answer": answer[:300]}
        )
    return Reply(303, b"", {"Location": "/slack/demo", "Content-Type": "text/plain"})


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def page(store: Store) -> str:
    with store.lock:
        messages = [m for m in store.messages if m.get("blocks")]
        state = _state(store)
        views, ephemeral, sent = list(state["views"]), list(state["ephemeral"]), list(state["sent"])
    rows = []
    user_field = f'<input name="user" value="{_e(DEMO_USER)}" size="12" title="Slack user id">'
    for m in reversed(messages):
        parts = [f"<p><b>{_e(m.get('text', ''))}</b> <small>{_e(m['channel'])} ts={_e(m['ts'])}</small></p>"]
        for block in m.get("blocks") or []:
            if block.get("type") in ("section", "header") and isinstance(block.get("text"), dict):
                parts.append(f"<pre>{_e(block['text'].get('text', ''))}</pre>")
            for element in block.get("elements") or [] if block.get("type") == "actions" else []:
                label = (element.get("text") or {}).get("text", "")
                if element.get("url"):
                    parts.append(f'<a href="{_e(element["url"])}">{_e(label)}</a> ')
                    continue
                parts.append(
                    '<form method="post" action="/slack/demo/click" style="display:inline">'
                    f'<input type="hidden" name="channel" value="{_e(m["channel"])}">'
                    f'<input type="hidden" name="ts" value="{_e(m["ts"])}">'
                    f'<input type="hidden" name="action_id" value="{_e(element.get("action_id", ""))}">'
                    f'<input type="hidden" name="value" value="{_e(element.get("value", ""))}">'
                    f"{user_field}<button>{_e(label)}</button></form> "
                )
        rows.append("<li>" + "".join(parts) + "</li>")
    modal_rows = []
    for v in reversed(views):
        field: dict[str, Any] = next((b for b in v.get("blocks") or [] if b.get("type") == "input"), {})
        field_input: dict[str, Any] = field.get("element") or {}
        modal_rows.append(
            f"<li><b>{_e((v.get('title') or {}).get('text', ''))}</b> "
            '<form method="post" action="/slack/demo/submit">'
            f'<input type="hidden" name="view_id" value="{_e(v["id"])}">'
            f'<input type="hidden" name="callback_id" value="{_e(v.get("callback_id", ""))}">'
            f'<input type="hidden" name="private_metadata" value="{_e(v.get("private_metadata", ""))}">'
            f'<input type="hidden" name="block_id" value="{_e(field.get("block_id", ""))}">'
            f'<input type="hidden" name="input_id" value="{_e(field_input.get("action_id", ""))}">'
            f'{user_field}<input name="reason" placeholder="reason" size="40"><button>Submit</button></form></li>'
        )
    told = "".join(f"<li>to {_e(e['user'])}: {_e(e['text'])}</li>" for e in reversed(ephemeral))
    log = "".join(
        f"<li>{_e(s['type'])} as {_e(s['user'])}: HTTP {_e(s['status'])} {_e(s['answer'])}</li>"
        for s in reversed(sent)
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Sandbox Slack: review channel</title></head><body>"
        f"<h1>Sandbox Slack</h1><p>Clicks are signed and sent to {_e(request_url())} (team {TEAM_ID}).</p>"
        f"<h2>Messages with buttons</h2><ul>{''.join(rows) or '<li>none yet</li>'}</ul>"
        f"<h2>Modals opened</h2><ul>{''.join(modal_rows) or '<li>none</li>'}</ul>"
        f"<h2>Ephemeral answers</h2><ul>{told or '<li>none</li>'}</ul>"
        f"<h2>Sent to the gateway</h2><ul>{log or '<li>nothing yet</li>'}</ul></body></html>"
    )
