"""Process-level: the adapters against the real sandbox process, and breaker state shared between
processes (a second Python process sees what this one did; one probe across processes and threads)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from typing import Any

import pytest
import requests

from adapters import breaker, http, registry
from adapters.errors import Deferred, PermanentFailure, StaleTarget, TransientFailure
from tests.e2e.conftest import Sandbox
from tests.e2e.stack import ROOT

CTX = registry.Context(tenant="acme", agent="bot")
ARGS = {
    "subject": "Printer on fire",
    "description": "Smoke",
    "priority": "critical",
    "customer_email": "a@b.com",
}

# A peer process: boots Django with this test's settings, then obeys "state" / "call" lines on stdin.
PEER = r"""
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "acme_integration.settings")
import django
django.setup()
from django.conf import settings
for name, value in json.loads(sys.argv[1]).items():
    setattr(settings, name, value)
from adapters import breaker, http
from adapters.errors import Deferred
print("ready", flush=True)
for line in sys.stdin:
    if line.strip() == "state":
        print(breaker.state("crm"), flush=True)
    elif line.strip() == "call":
        try:
            r = http.call("crm", "GET", settings.CRM_BASE_URL + "/api/v2/users/search.json",
                          params={"query": "email:ada@example.com"}, headers={"Authorization": "Bearer sandbox"})
            print("ok", flush=True)
        except Deferred as exc:
            print("deferred " + exc.reason, flush=True)
        except Exception as exc:
            print("error " + type(exc).__name__, flush=True)
"""


class Peer:
    def __init__(self, overrides: dict[str, Any]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", PEER, json.dumps(overrides)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def ask(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def answer(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        self.process.kill()
        self.process.wait(timeout=5)


def _search(settings: Any) -> str:
    try:
        http.call(
            "crm",
            "GET",
            f"{settings.CRM_BASE_URL}/api/v2/users/search.json",
            params={"query": "email:ada@example.com"},
            headers={"Authorization": "Bearer sandbox"},
        )
        return "ok"
    except Deferred as exc:
        return f"deferred {exc.reason}"


def test_breaker_is_shared_across_processes_and_probes_once(
    sandbox: Sandbox, settings: Any, sleeps: list[float], caplog: Any, redis_namespace: str
) -> None:
    # given: a small cooldown, and three warm peer processes sharing this test's Redis namespace
    settings.ACME_BREAKER_FAILURES = 5
    settings.ACME_BREAKER_COOLDOWN = 0.6
    overrides = {
        "ACME_REDIS_PREFIX": redis_namespace,
        "CRM_BASE_URL": settings.CRM_BASE_URL,
        "ACME_BREAKER_FAILURES": 5,
        "ACME_BREAKER_COOLDOWN": 0.6,
        "ACME_RETRY_MAX": 1,
    }
    peers = [Peer(overrides) for _ in range(3)]
    try:
        assert [p.answer() for p in peers] == ["ready"] * 3

        # when: five consecutive 503s in this process
        sandbox.fault("status", status=503, count=5)
        with (
            caplog.at_level(logging.WARNING, logger="adapters.breaker"),
            pytest.raises(TransientFailure) as info,
        ):
            registry.execute("crm.create_ticket", ARGS, idempotency_key="k-1")
        assert info.value.attempts == 5
        assert "circuit breaker tripped: crm" in [r.getMessage() for r in caplog.records]
        assert len(sandbox.requests("crm")) == 5

        # then: another process sees it open and fails fast; no request reaches the sandbox
        peers[0].ask("state")
        assert peers[0].answer() == "open"
        peers[0].ask("call")
        assert peers[0].answer() == "deferred breaker_open"
        with pytest.raises(Deferred) as deferred:
            registry.execute("crm.create_ticket", ARGS, idempotency_key="k-1")
        assert deferred.value.reason == "breaker_open"
        assert deferred.value.retry_at > time.time()
        assert len(sandbox.requests("crm")) == 5

        # when: the cooldown passes and three processes plus five threads all try at once, while the
        # first request through is held 0.4 s by the sandbox
        while breaker.state("crm") != "half_open":
            time.sleep(0.02)
        sandbox.fault("delay", seconds=0.4)
        results: list[str] = []
        threads = [threading.Thread(target=lambda: results.append(_search(settings))) for _ in range(5)]
        for peer in peers:
            peer.ask("call")
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        results += [peer.answer() for peer in peers]

        # then: exactly one probe left, and its success closed the breaker
        assert sorted(results) == ["deferred breaker_open"] * 7 + ["ok"]
        assert len(sandbox.requests("crm")) == 6
        assert breaker.state("crm") == "closed"
        peers[1].ask("state")
        assert peers[1].answer() == "closed"

        # and the commit then completes with one ticket
        outcome = registry.execute("crm.create_ticket", ARGS, idempotency_key="k-1")
        assert [t["id"] for t in sandbox.tickets()] == [int(outcome.external_id)]
    finally:
        for peer in peers:
            peer.close()


def test_failed_probe_reopens(sandbox: Sandbox, settings: Any, sleeps: list[float]) -> None:
    settings.ACME_BREAKER_FAILURES = 2
    settings.ACME_BREAKER_COOLDOWN = 0.2
    settings.ACME_RETRY_MAX = 2
    sandbox.fault("status", status=503, count=3)
    with pytest.raises(TransientFailure):
        _search(settings)
    time.sleep(0.25)
    # the probe fails with 503 and the breaker reopens: the call's retry is deferred, not sent
    assert _search(settings) == "deferred breaker_open"
    assert breaker.state("crm") == "open"
    assert len(sandbox.requests("crm")) == 3


def test_429_retry_after_2_delays_the_next_attempt_by_at_least_2_seconds(sandbox: Sandbox) -> None:
    sandbox.fault("429", retry_after=2)
    started = time.monotonic()
    outcome = registry.execute("crm.create_ticket", ARGS, idempotency_key="k-429")
    assert time.monotonic() - started >= 2.0
    first, second = sandbox.requests("crm")
    assert second["time"] - first["time"] >= 2.0
    assert outcome.attempts == 2
    assert len(sandbox.tickets()) == 1


def test_a_400_from_the_crm_is_tried_once(sandbox: Sandbox, sleeps: list[float]) -> None:
    sandbox.fault("status", status=400)
    with pytest.raises(PermanentFailure) as info:
        registry.execute("crm.create_ticket", ARGS, idempotency_key="k-400")
    assert (info.value.attempts, info.value.status) == (1, 400)
    assert len(sandbox.requests("crm")) == 1
    assert sleeps == []


def test_write_then_timeout_makes_one_ticket(sandbox: Sandbox, settings: Any, sleeps: list[float]) -> None:
    # given: the CRM creates the ticket but the answer never arrives within our timeout
    settings.ACME_HTTP_TIMEOUT = 0.5
    sandbox.fault("write_then_timeout", seconds=1.0)
    # when
    outcome = registry.execute("crm.create_ticket", ARGS, idempotency_key="k-wtt")
    # then: the retry carried the same key, and the CRM handed back the first ticket
    tickets = sandbox.tickets()
    assert len(tickets) == 1
    assert outcome.external_id == str(tickets[0]["id"])
    assert outcome.attempts == 2
    assert [r["idempotency_key"] for r in sandbox.requests("crm")] == ["k-wtt", "k-wtt"]


def test_dropped_connection_is_retried(sandbox: Sandbox, sleeps: list[float]) -> None:
    sandbox.fault("drop")
    outcome = registry.execute("crm.create_ticket", ARGS, idempotency_key="k-drop")
    assert outcome.attempts == 2
    assert len(sandbox.tickets()) == 1


def test_the_sandbox_keeps_connections_alive_as_a_real_crm_does(sandbox: Sandbox) -> None:
    """adapters.http keeps its connections; the sandbox must let it, or the reuse is never exercised."""
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(sandbox.url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=5)
    try:
        answers, sockets = [], []
        for n in range(2):
            body = json.dumps({"ticket": {"subject": f"kept {n}", "comment": {"body": "b"}}})
            connection.request(
                "POST",
                "/crm/api/v2/tickets.json",
                body=body,
                headers={"Authorization": "Bearer sandbox", "Content-Type": "application/json"},
            )
            response = connection.getresponse()
            response.read()
            answers.append((response.status, response.version, response.will_close))
            sockets.append(connection.sock)
        assert answers == [(201, 11, False), (201, 11, False)]
        assert (
            sockets[0] is not None and sockets[1] is sockets[0]
        )  # the second request went on the first socket
    finally:
        connection.close()
    assert len(sandbox.tickets()) == 2


@pytest.mark.django_db
def test_update_ticket_preview_commit_and_stale(sandbox: Sandbox) -> None:
    # Created through the gateway for acme: on the default CRM, which tenants share, it is acme's to update.
    created = registry.execute("crm.create_ticket", ARGS, idempotency_key="k-u", tenant="acme")
    ticket_id = int(created.external_id)

    prepared = registry.prepare("crm.update_ticket", {"ticket_id": ticket_id, "priority": "low"}, CTX)
    assert prepared.preview.changes == [{"field": "priority", "before": "urgent", "after": "low"}]
    outcome = registry.execute(
        "crm.update_ticket",
        prepared.args,
        idempotency_key="u-1",
        snapshot=prepared.preview.snapshot,
        tenant="acme",
    )
    assert outcome.summary["priority"] == "low"

    # someone edits the ticket in the CRM after the next preview: the commit refuses
    prepared = registry.prepare("crm.update_ticket", {"ticket_id": ticket_id, "status": "solved"}, CTX)
    requests.put(
        f"{sandbox.url}/crm/api/v2/tickets/{ticket_id}.json",
        json={"ticket": {"subject": "Edited by a human"}},
        headers={"Authorization": "Bearer sandbox"},
        timeout=5,
    ).raise_for_status()
    with pytest.raises(StaleTarget):
        registry.execute(
            "crm.update_ticket",
            prepared.args,
            idempotency_key="u-2",
            snapshot=prepared.preview.snapshot,
            tenant="acme",
        )
    assert sandbox.tickets()[0]["status"] == "new"


@pytest.mark.django_db  # the tenant's connection is looked up
def test_get_customer_finds_the_requester(sandbox: Sandbox) -> None:
    registry.execute("crm.create_ticket", ARGS, idempotency_key="k-c")
    assert [
        c["email"] for c in registry.read("crm.get_customer", {"email": "A@B.com"}, CTX)["customers"]
    ] == ["a@b.com"]
    assert registry.read("crm.get_customer", {"email": "nobody@b.com"}, CTX) == {"customers": []}


def test_slack_post_message(sandbox: Sandbox) -> None:
    outcome = registry.execute(
        "slack.post_message", {"channel": "#support", "text": "hi"}, idempotency_key="s"
    )
    assert outcome.external_id.startswith("C0SUPPORT1:")
    with pytest.raises(PermanentFailure, match="channel_not_found"):
        registry.execute("slack.post_message", {"channel": "#nowhere", "text": "hi"}, idempotency_key="s2")


# --- the sandbox itself speaks Zendesk ----------------------------------------------------------------------


def test_sandbox_crm_requires_bearer_auth(sandbox: Sandbox) -> None:
    response = requests.post(f"{sandbox.url}/crm/api/v2/tickets.json", json={"ticket": {}}, timeout=5)
    assert response.status_code == 401


def test_sandbox_crm_validates_like_zendesk(sandbox: Sandbox) -> None:
    response = requests.post(
        f"{sandbox.url}/crm/api/v2/tickets.json",
        json={"ticket": {"subject": "x", "priority": "critical"}},
        headers={"Authorization": "Bearer sandbox"},
        timeout=5,
    )
    assert response.status_code == 422
    assert response.json()["error"] == "RecordInvalid"
    assert set(response.json()["details"]) == {"description", "priority"}


def test_sandbox_crm_idempotency_key(sandbox: Sandbox) -> None:
    def post(body: dict[str, Any]) -> requests.Response:
        return requests.post(
            f"{sandbox.url}/crm/api/v2/tickets.json",
            json=body,
            headers={"Authorization": "Bearer sandbox", "Idempotency-Key": "same"},
            timeout=5,
        )

    body = {"ticket": {"subject": "s", "comment": {"body": "d"}}}
    first, replay = post(body), post(body)
    assert (first.status_code, replay.status_code) == (201, 201)
    assert first.headers["x-idempotency-lookup"] == "miss"
    assert replay.headers["x-idempotency-lookup"] == "hit"
    assert first.json() == replay.json()
    other = post({"ticket": {"subject": "other", "comment": {"body": "d"}}})
    assert other.status_code == 400
    assert other.json()["error"] == "IdempotentRequestError"
    assert len(sandbox.tickets()) == 1


def test_sandbox_put_moves_updated_at(sandbox: Sandbox) -> None:
    created = registry.execute("crm.create_ticket", ARGS, idempotency_key="k-p")
    url = f"{sandbox.url}/crm/api/v2/tickets/{created.external_id}.json"
    auth = {"Authorization": "Bearer sandbox"}
    before = requests.get(url, headers=auth, timeout=5).json()["ticket"]["updated_at"]
    after = requests.put(url, json={"ticket": {"status": "open"}}, headers=auth, timeout=5).json()["ticket"]
    assert after["updated_at"] > before
    assert (
        requests.get(f"{sandbox.url}/crm/api/v2/tickets/999.json", headers=auth, timeout=5).status_code == 404
    )


def test_sandbox_slack_auth(sandbox: Sandbox) -> None:
    response = requests.post(
        f"{sandbox.url}/slack/api/chat.postMessage", json={"channel": "#support"}, timeout=5
    )
    assert response.json() == {"ok": False, "error": "not_authed"}


def test_sandbox_lists_a_tickets_comments_like_zendesk(sandbox: Sandbox) -> None:
    created = registry.execute("crm.create_ticket", ARGS, idempotency_key="k-cm")
    auth = {"Authorization": "Bearer sandbox"}
    requests.put(
        f"{sandbox.url}/crm/api/v2/tickets/{created.external_id}.json",
        json={"ticket": {"comment": {"body": "On it", "public": False}}},
        headers=auth,
        timeout=5,
    ).raise_for_status()
    url = f"{sandbox.url}/crm/api/v2/tickets/{created.external_id}/comments.json"

    oldest_first = requests.get(url, headers=auth, timeout=5).json()
    newest_first = requests.get(url, params={"sort_order": "desc"}, headers=auth, timeout=5).json()

    assert [(c["body"], c["public"]) for c in oldest_first["comments"]] == [("Smoke", True), ("On it", False)]
    assert oldest_first["count"] == 2
    assert set(oldest_first["comments"][0]) >= {"id", "type", "author_id", "body", "public", "created_at"}
    assert newest_first["comments"] == oldest_first["comments"][::-1]
    missing = requests.get(f"{sandbox.url}/crm/api/v2/tickets/999/comments.json", headers=auth, timeout=5)
    assert (missing.status_code, missing.json()["error"]) == (404, "RecordNotFound")


def test_sandbox_put_idempotency_can_be_turned_off_like_a_real_zendesk(sandbox: Sandbox) -> None:
    created = registry.execute("crm.create_ticket", ARGS, idempotency_key="k-pi")
    url = f"{sandbox.url}/crm/api/v2/tickets/{created.external_id}.json"
    headers = {"Authorization": "Bearer sandbox", "Idempotency-Key": "same"}

    def put_comment() -> requests.Response:
        return requests.put(url, json={"ticket": {"comment": {"body": "Again"}}}, headers=headers, timeout=5)

    # the default: a replayed PUT is answered from the first one
    assert sandbox.control("GET", "config") == {"put_idempotency": True, "slack_idempotency": True}
    assert [put_comment().headers["x-idempotency-lookup"] for _ in range(2)] == ["miss", "hit"]
    # off: every PUT is applied, as on a real Zendesk
    assert sandbox.control("POST", "config", {"put_idempotency": False}) == {
        "put_idempotency": False,
        "slack_idempotency": True,
    }
    assert "x-idempotency-lookup" not in put_comment().headers
    put_comment()
    assert [c["body"] for c in sandbox.tickets()[0]["comments"]] == ["Smoke", "Again", "Again", "Again"]
    # a reset restores the default
    sandbox.control("POST", "reset")
    assert sandbox.control("GET", "config") == {"put_idempotency": True, "slack_idempotency": True}


def test_sandbox_fault_for_one_path_lets_other_requests_by(sandbox: Sandbox) -> None:
    created = registry.execute("crm.create_ticket", ARGS, idempotency_key="k-fm")
    path = f"/crm/api/v2/tickets/{created.external_id}"
    sandbox.fault("status", status=404, method="GET", path=f"{path}/comments.json")
    auth = {"Authorization": "Bearer sandbox"}
    assert requests.get(f"{sandbox.url}{path}.json", headers=auth, timeout=5).status_code == 200
    assert requests.get(f"{sandbox.url}{path}/comments.json", headers=auth, timeout=5).status_code == 404
    assert [r["fault"] for r in sandbox.requests("crm")] == [None, None, "status"]
