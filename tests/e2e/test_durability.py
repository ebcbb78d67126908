"""Approvals are promises: none is lost to a worker killed mid-commit or a Redis restart, none is doubled,
and agents hear of each decision once, signed. Real processes on the suite's database."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from approvals.webhooks import verify
from tests.e2e.stack import running_stack

ARGS = {"subject": "Checkout returns 500", "description": "Since the deploy at 14:00.", "priority": "urgent"}


def submit(stack, party, key=None, subject=None):
    args = {**ARGS, "subject": subject or ARGS["subject"]}
    response = stack.api(
        "POST",
        "/proposals/",
        party["agent"],
        headers={"Idempotency-Key": key or uuid.uuid4().hex},
        json={"tool": "crm.create_ticket", "args": args},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def creates_for(stack, pid):
    return [
        r
        for r in stack.sandbox("GET", "/_sandbox/requests").json()["requests"]
        if r["method"] == "POST" and r.get("idempotency_key") == f"acme-proposal-{pid}"
    ]


def test_worker_killed_mid_commit_resumes_with_exactly_one_ticket():
    with running_stack(ACME_HTTP_TIMEOUT="3", ACME_COMMIT_LEASE="4") as stack:
        party = stack.party()
        pid = submit(stack, party)
        tickets_before = len(stack.tickets())
        # The CRM writes the ticket, then never answers: the worker is inside the call when we kill it.
        stack.sandbox(
            "POST",
            "/_sandbox/faults",
            json={"target": "crm", "mode": "write_then_timeout", "seconds": 30, "count": 1},
        )

        stack.api("POST", f"/proposals/{pid}/approve/", party["reviewer"], json={})
        deadline = time.monotonic() + 30
        while not creates_for(stack, pid):
            assert time.monotonic() < deadline, "the commit never reached the CRM"
            time.sleep(0.1)
        assert stack.api("GET", f"/proposals/{pid}/", party["agent"]).json()["status"] == "committing"
        stack.kill("worker", signal.SIGKILL)

        started = time.monotonic()
        stack.start_worker("worker2")
        done = stack.wait_status(pid, party["agent"], {"committed", "failed"}, timeout=60)
        recovered_in = time.monotonic() - started

        assert done["status"] == "committed", done
        assert len(stack.tickets()) == tickets_before + 1
        assert done["receipt"]["external_id"] == str(stack.tickets()[-1]["id"])
        assert recovered_in < 30  # lease (4 s) + housekeeping, not RQ's 10+ minutes


def test_approvals_made_while_redis_is_down_commit_once_when_it_returns():
    with running_stack(private_redis=True) as stack:
        party = stack.party()
        ids = [submit(stack, party, subject=f"Outage item {i}") for i in range(20)]

        stack.redis_stop()
        for pid in ids:
            response = stack.api("POST", f"/proposals/{pid}/approve/", party["reviewer"], json={})
            assert response.status_code == 202, response.text
        time.sleep(2)  # the worker and web keep running without Redis
        assert all(
            stack.api("GET", f"/proposals/{p}/", party["agent"]).json()["status"] == "approved" for p in ids
        )
        stack.redis_start()

        for pid in ids:
            assert (
                stack.wait_status(pid, party["agent"], {"committed", "failed"}, timeout=90)["status"]
                == "committed"
            )
        assert all(len(creates_for(stack, pid)) == 1 for pid in ids)
        assert len(stack.tickets()) == 20


class Receiver:
    """A webhook receiver that checks every signature, as an agent would."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.bad: list[str] = []
        self.secret = ""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if verify(receiver.secret, self.headers.get("X-Acme-Signature", ""), body):
                    receiver.events.append({"id": self.headers["X-Acme-Event-Id"], **json.loads(body)})
                else:
                    receiver.bad.append(self.headers.get("X-Acme-Signature", ""))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def test_agent_webhooks_are_signed_and_each_event_arrives_once(stack, receiver):
    party = stack.party()
    registered = stack.api("PUT", "/webhook/", party["agent"], json={"url": receiver.url})
    assert registered.status_code == 200, registered.text
    receiver.secret = registered.json()["secret"]

    committed, rejected = submit(stack, party), submit(stack, party, subject="Not needed")
    stack.api("POST", f"/proposals/{committed}/approve/", party["reviewer"], json={})
    stack.api("POST", f"/proposals/{rejected}/reject/", party["reviewer"], json={"reason": "duplicate"})
    stack.wait_status(committed, party["agent"], {"committed"})

    deadline = time.monotonic() + 30
    while len(receiver.events) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)  # anything extra would arrive now

    assert receiver.bad == []
    seen = sorted((e["proposal"]["id"], e["event"], e["proposal"]["status"]) for e in receiver.events)
    assert seen == sorted(
        [
            (committed, "proposal.decided", "approved"),
            (committed, "proposal.committed", "committed"),
            (rejected, "proposal.decided", "rejected"),
        ]
    )
    assert len({e["id"] for e in receiver.events}) == 3


def test_pending_proposals_expire_on_the_workers_schedule_fail_closed(receiver):
    with running_stack(ACME_PROPOSAL_TTL="2") as stack:
        party = stack.party()
        registered = stack.api("PUT", "/webhook/", party["agent"], json={"url": receiver.url})
        receiver.secret = registered.json()["secret"]
        pid = submit(stack, party)

        done = stack.wait_status(pid, party["agent"], {"expired", "rejected"}, timeout=30)

        assert done["status"] == "expired"
        assert done["decision"] is None  # never shown as rejected
        late = stack.api("POST", f"/proposals/{pid}/approve/", party["reviewer"], json={})
        assert late.status_code == 409
        deadline = time.monotonic() + 15
        while not receiver.events and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [(e["event"], e["proposal"]["id"]) for e in receiver.events] == [("proposal.expired", pid)]
