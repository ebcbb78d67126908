"""The sandbox's HTTP server (stdlib, threaded) and its fault controls.

Controls, under ``/_sandbox/`` (never part of the Zendesk or Slack surface):

* ``POST /_sandbox/faults`` ``{"target": "crm"|"slack"|"*", "mode": ..., "count": 1, ...}`` arms a fault for
  the next ``count`` matching requests. Modes: ``status`` (answer ``status``, e.g. 503), ``429`` (with
  ``retry_after`` seconds), ``delay`` (sleep ``seconds`` then answer normally), ``drop`` (close the
  connection without an answer), ``write_then_timeout`` (perform the write, then sleep ``seconds`` and
  drop: the client never sees the answer). Every mode but the last applies before the write. A fault that
  names a ``method`` ("PUT") and/or a ``path`` ("/crm/api/v2/tickets/1/comments.json") lets other
  requests by.
* ``POST /_sandbox/config`` ``{"put_idempotency": false}``: the CRM ignores ``Idempotency-Key`` on PUT,
  like a real Zendesk (see ``adapters.sandbox.crm``); ``{"slack_idempotency": false}``: Slack's
  ``chat.postMessage`` ignores it, like the real Slack (with ``write_then_timeout`` on Slack: "write, then
  lose the answer" as it happens there); ``GET`` shows them; ``POST /_sandbox/reset`` restores them.
* ``GET /_sandbox/requests`` every request that reached the CRM or Slack: method, path, target,
  idempotency_key, time (epoch seconds), fault. ``GET /_sandbox/tickets`` (with their comments),
  ``GET /_sandbox/messages``, ``GET /_sandbox/faults``, ``POST /_sandbox/reset``, ``GET /_sandbox/health``.
"""

from __future__ import annotations

import json
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from adapters.sandbox import crm, slack
from adapters.sandbox.state import Reply, Store

FAULT_MODES = {"status", "429", "delay", "drop", "write_then_timeout"}


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], store: Store) -> None:
        super().__init__(address, Handler)
        self.store = store


class Handler(BaseHTTPRequestHandler):
    server: SandboxServer
    server_version = "acme-sandbox/1.0"
    # Keep-alive, as Zendesk and Slack speak it: a client that keeps its connections (adapters.http) is
    # exercised as it runs in production. Every answer carries a Content-Length; a ``drop`` fault closes.
    protocol_version = "HTTP/1.1"
    # The headers and the body leave in two writes; with Nagle on, the body waits for the client's
    # delayed ACK of the headers (40 ms on Linux) on a kept connection. Servers in production set
    # TCP_NODELAY too.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet: /_sandbox/requests is the log
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # --- plumbing -------------------------------------------------------------------------------------

    def _body(self) -> tuple[Any, bool]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None, True
        if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return dict(parse_qsl(raw.decode())), True
        try:
            return json.loads(raw), True
        except ValueError:
            return None, False

    def _send(self, reply: Reply) -> None:
        # Bytes are sent as they are, with the Content-Type the reply names (the CRM's agent pages: HTML).
        payload = (
            reply.body
            if isinstance(reply.body, bytes)
            else (b"" if reply.body is None else json.dumps(reply.body).encode())
        )
        self.send_response(reply.status)
        if "Content-Type" not in reply.headers:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- routing --------------------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        store = self.server.store
        parts = urlsplit(self.path)
        path, query = parts.path, dict(parse_qsl(parts.query))
        body, parsed = self._body()
        if path.startswith("/_sandbox/"):
            self._send(control(store, method, path, body))
            return
        target = "crm" if path.startswith("/crm/") else "slack" if path.startswith("/slack/") else ""
        if not target:
            self._send(Reply(404, {"error": "not_found"}))
            return
        fault = store.take_fault(target, method, path)
        with store.lock:
            store.requests.append(
                {
                    "method": method,
                    "path": path,
                    "target": target,
                    "idempotency_key": self.headers.get("Idempotency-Key"),
                    "time": time.time(),
                    "fault": fault["mode"] if fault else None,
                }
            )
        if fault and self._apply_fault(fault, target):
            return
        if not parsed:
            reply = Reply(400, {"error": "InvalidJSON", "description": "The body is not valid JSON"})
        elif target == "crm":
            reply = crm.route(store, method, path, query, body, self.headers)
        else:
            reply = slack.route(store, method, path, body, self.headers, query=query)
        if fault and fault["mode"] == "write_then_timeout":
            time.sleep(float(fault.get("seconds", 0)))  # the client's timeout fires meanwhile
            self._drop()
            return
        self._send(reply)

    def _apply_fault(self, fault: dict[str, Any], target: str) -> bool:
        """Apply a fault that acts before the write; True when the request is answered (or dropped)."""
        mode = fault["mode"]
        if mode == "status":
            status = int(fault.get("status", 503))
            body = {"ok": False, "error": "sandbox_fault"} if target == "slack" else {"error": "SandboxFault"}
            self._send(Reply(status, body))
            return True
        if mode == "429":
            retry_after = str(fault.get("retry_after", 1))
            body = (
                {"ok": False, "error": "ratelimited"} if target == "slack" else {"error": "TooManyRequests"}
            )
            self._send(Reply(429, body, {"Retry-After": retry_after}))
            return True
        if mode == "delay":
            time.sleep(float(fault.get("seconds", 1)))
            return False
        if mode == "drop":
            self._drop()
            return True
        return False  # write_then_timeout acts after the write


def control(store: Store, method: str, path: str, body: Any) -> Reply:
    with store.lock:
        if path == "/_sandbox/health":
            return Reply(200, {"ok": True})
        if path == "/_sandbox/reset" and method == "POST":
            store.reset()
            return Reply(200, {"ok": True})
        if path == "/_sandbox/faults" and method == "POST":
            fault = dict(body or {})
            if (
                fault.get("mode") not in FAULT_MODES
                or fault.get("target", "*") not in {"crm", "slack", "*"}
                or not all(isinstance(fault.get(name), str | None) for name in ("method", "path"))
            ):
                return Reply(400, {"error": "invalid_fault", "modes": sorted(FAULT_MODES)})
            fault.setdefault("target", "*")
            fault["count"] = int(fault.get("count", 1))
            store.faults.append(fault)
            return Reply(201, {"fault": fault})
        if path == "/_sandbox/faults" and method == "GET":
            return Reply(200, {"faults": store.faults})
        if path == "/_sandbox/faults" and method == "DELETE":
            store.faults.clear()
            return Reply(200, {"ok": True})
        if path == "/_sandbox/config" and method == "POST":
            flags = ("put_idempotency", "slack_idempotency")
            if not isinstance(body, dict) or not all(isinstance(body.get(f, True), bool) for f in flags):
                return Reply(400, {"error": "invalid_config", "fields": list(flags)})
            store.put_idempotency = body.get("put_idempotency", store.put_idempotency)
            store.slack_idempotency = body.get("slack_idempotency", store.slack_idempotency)
        if path == "/_sandbox/config":
            return Reply(
                200,
                {"put_idempotency": store.put_idempotency, "slack_idempotency": store.slack_idempotency},
            )
        if path == "/_sandbox/requests":
            return Reply(200, {"requests": store.requests})
        if path == "/_sandbox/tickets":
            return Reply(200, {"tickets": list(store.tickets.values())})
        if path == "/_sandbox/messages":
            return Reply(200, {"messages": store.messages})
    return Reply(404, {"error": "not_found"})


def make_server(host: str, port: int, *, crm_token: str, slack_token: str) -> SandboxServer:
    return SandboxServer((host, port), Store(crm_token=crm_token, slack_token=slack_token))
