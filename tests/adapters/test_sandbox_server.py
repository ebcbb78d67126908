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


def test_the_sandbox_slack_keeps_metadata_and_answers_conversations_history() -> None:
    """What the commit's look-up for a lost post reads (adapters.slack.messages.find), as Slack answers it;
    with ``slack_idempotency`` off the key is ignored like on the real Slack, so a resend posts twice."""
    from adapters.sandbox import slack

    store = Store(crm_token="t", slack_token="t")
    store.slack_idempotency = False
    auth = {"Authorization": "Bearer t", "Idempotency-Key": "k"}
    tag = {"event_type": "acme_proposal", "event_payload": {"key": "k"}}
    body = {"channel": "#support", "text": "hi", "metadata": tag}

    first = slack.route(store, "POST", "/slack/api/chat.postMessage", body, auth).body
    second = slack.route(store, "POST", "/slack/api/chat.postMessage", body, auth).body
    listed = slack.route(store, "GET", "/slack/api/conversations.list", None, auth, query={}).body
    with_tags = slack.route(
        store,
        "GET",
        "/slack/api/conversations.history",
        None,
        auth,
        query={"channel": "C0SUPPORT1", "include_all_metadata": "true", "limit": "1"},
    ).body
    without = slack.route(
        store, "GET", "/slack/api/conversations.history", None, auth, query={"channel": "C0SUPPORT1"}
    ).body

    assert first["ts"] != second["ts"]  # two posts: no idempotency, as on Slack
    assert {"id": "C0SUPPORT1", "name": "support"} in listed["channels"]
    assert [m["ts"] for m in with_tags["messages"]] == [second["ts"]]  # newest first, one a page
    assert with_tags["messages"][0]["metadata"] == tag
    assert with_tags["has_more"] is True and with_tags["response_metadata"]["next_cursor"] == "1"
    assert all("metadata" not in m for m in without["messages"])
