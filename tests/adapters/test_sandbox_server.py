"""The sandbox's HTTP server in-process: kept connections answer without Nagle's delay."""

from __future__ import annotations

import http.client
import socket
import threading
from typing import Any

import pytest

from adapters.sandbox.server import Handler, SandboxServer
from adapters.sandbox.state import Store


def test_kept_connections_have_nagle_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a kept connection the answer's headers and body leave in two writes; with Nagle on, the body
    waits for the client's delayed ACK (40 ms on Linux): every sandbox commit took 50 ms instead of 10."""
    seen: list[int] = []
    setup = Handler.setup

    def spy(self: Any) -> None:
        setup(self)
        seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(Handler, "setup", spy)
    server = SandboxServer(("127.0.0.1", 0), Store(crm_token="t", slack_token="t"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
        for _ in range(2):
            connection.request("GET", "/_sandbox/health")
            response = connection.getresponse()
            response.read()
            assert (response.status, response.will_close) == (200, False)
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
    assert seen and all(seen)
    assert len(seen) == 1  # one connection for both requests


def test_a_ticket_has_a_page_for_people_where_receipts_link() -> None:
    """Receipts link to ``/agent/tickets/{id}`` (Zendesk's page for people); the sandbox serves one, as HTML
    with the ticket's text escaped, so the link of a ``make run`` receipt lands on the ticket, not on JSON."""
    server = SandboxServer(("127.0.0.1", 0), Store(crm_token="t", slack_token="t"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
        body = b'{"ticket": {"subject": "<b>Printer</b> on fire", "comment": {"body": "Smoke"}}}'
        connection.request(
            "POST",
            "/crm/api/v2/tickets.json",
            body=body,
            headers={"Authorization": "Bearer t", "Content-Type": "application/json"},
        )
        created = connection.getresponse()
        created.read()
        assert created.status == 201
        connection.request("GET", "/crm/agent/tickets/1")
        page = connection.getresponse()
        text = page.read().decode()
        connection.request("GET", "/crm/agent/tickets/99")
        missing = connection.getresponse()
        missing.read()
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
    assert page.status == 200 and page.getheader("Content-Type", "").startswith("text/html")
    assert "&lt;b&gt;Printer&lt;/b&gt; on fire" in text and "<b>Printer" not in text and "Smoke" in text
    assert missing.status == 404
