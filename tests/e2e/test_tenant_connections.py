"""Issue 17, on real servers: two tenants, two CRMs (two sandbox processes with different tokens).

Each tenant's proposals, previews and commits reach only its own CRM; tenant B naming tenant A's ticket id
gets "ticket not found", and A's CRM receives no request from B's proposal at all. Asserted from each
sandbox's own record of the requests it received (``GET /_sandbox/requests``).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.core.management import call_command

from approvals import services
from approvals.models import Proposal, Status
from audit.services import Where
from tests.e2e.conftest import Sandbox
from tests.e2e.stack import ROOT

API = Where(channel="api")


def start_sandbox(token: str) -> Sandbox:
    process = subprocess.Popen(
        [sys.executable, "manage.py", "sandbox", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CRM_API_TOKEN": token, "SLACK_BOT_TOKEN": token},
    )
    assert process.stdout is not None
    first = process.stdout.readline().strip()
    if not first.startswith("sandbox listening on "):
        process.kill()
        raise RuntimeError(f"sandbox did not start: {first!r}")
    url = first.removeprefix("sandbox listening on ")
    deadline = time.monotonic() + 10
    while True:
        try:
            requests.get(f"{url}/_sandbox/health", timeout=1).raise_for_status()
            return Sandbox(url=url, process=process)
        except requests.RequestException:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.05)


@pytest.fixture
def two_crms() -> Iterator[tuple[Sandbox, Sandbox]]:
    sandboxes = [start_sandbox("crm-token-a"), start_sandbox("crm-token-b")]
    try:
        yield sandboxes[0], sandboxes[1]
    finally:
        for sandbox in sandboxes:
            sandbox.process.terminate()
            try:
                sandbox.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                sandbox.process.kill()


def set_crm(tenant: str, sandbox: Sandbox, token: str) -> None:
    call_command(
        "set_connection",
        "--tenant",
        tenant,
        "--system",
        "crm",
        "--base-url",
        f"{sandbox.url}/crm",
        "--token",
        token,
        stdout=io.StringIO(),
    )


def propose(party: Any, tool: str, args: dict[str, Any]) -> Any:
    return party.agent_client.post("/api/v1/proposals/", {"tool": tool, "args": args}, format="json")


def approve_and_commit(party: Any, proposal_id: str) -> Proposal:
    proposal = Proposal.objects.get(pk=proposal_id)
    services.proposal_approve(proposal=proposal, reviewer=party.reviewer, where=API)
    services.proposal_commit(proposal_id=proposal.pk)
    proposal.refresh_from_db()
    return proposal


def create_ticket(party: Any, subject: str) -> int:
    response = propose(
        party, "crm.create_ticket", {"subject": subject, "description": "d", "priority": "high"}
    )
    assert response.status_code == 201, response.content
    proposal = approve_and_commit(party, response.json()["id"])
    assert proposal.status == Status.COMMITTED, proposal.status_reason
    return int(proposal.receipt.external_id)


@pytest.mark.django_db
def test_two_tenants_two_crms(two_crms, acme, globex, settings, fast_retries):
    crm_a, crm_b = two_crms
    settings.CRM_BASE_URL = (
        "http://127.0.0.1:9/crm"  # the default leads nowhere: every call must be a tenant's
    )
    set_crm("acme", crm_a, "crm-token-a")
    set_crm("globex", crm_b, "crm-token-b")

    # each tenant's commits reach its own CRM only
    first_a = create_ticket(acme, "Acme: board meeting notes")
    second_a = create_ticket(acme, "Acme: confidential merger")
    first_b = create_ticket(globex, "Globex: printer")
    assert [t["subject"] for t in crm_a.tickets()] == [
        "Acme: board meeting notes",
        "Acme: confidential merger",
    ]
    assert [t["subject"] for t in crm_b.tickets()] == ["Globex: printer"]
    assert (first_a, first_b) == (1, 1) and second_a == 2
    seen_by_a = len(crm_a.requests("crm"))

    # globex naming acme's ticket 2: "ticket not found", and acme's CRM hears nothing of it
    foreign = propose(globex, "crm.update_ticket", {"ticket_id": second_a, "priority": "low"})
    assert foreign.status_code == 400, foreign.content
    assert foreign.json()["errors"][0]["msg"] == "ticket not found"
    assert "merger" not in foreign.content.decode()
    assert len(crm_a.requests("crm")) == seen_by_a

    # globex's preview and commit of its own ticket go to its CRM only
    own = propose(globex, "crm.update_ticket", {"ticket_id": first_b, "priority": "low"})
    assert own.status_code == 201, own.content
    assert own.json()["preview"]["changes"] == [{"field": "priority", "before": "high", "after": "low"}]
    committed = approve_and_commit(globex, own.json()["id"])
    assert committed.status == Status.COMMITTED, committed.status_reason
    assert [t["priority"] for t in crm_b.tickets()] == ["low"]
    assert [t["priority"] for t in crm_a.tickets()] == ["high", "high"]
    assert len(crm_a.requests("crm")) == seen_by_a
    assert [(r["method"], r["path"]) for r in crm_b.requests("crm")][-3:] == [
        ("GET", "/crm/api/v2/tickets/1.json"),  # globex's preview
        ("GET", "/crm/api/v2/tickets/1.json"),  # the commit's fresh read
        ("PUT", "/crm/api/v2/tickets/1.json"),  # the commit
    ]
