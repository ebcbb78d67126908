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
