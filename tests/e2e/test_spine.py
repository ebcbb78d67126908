"""The spine end to end, with real processes: gunicorn, acme_worker and the sandbox CRM, on the suite's
database engine and Redis (PostgreSQL + Redis on CI)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

ARGS = {
    "subject": "VPN down for the Paris office",
    "description": "Nobody in Paris can connect since 9:00.",
    "priority": "p1",
    "customer_email": "Ops@Example.com",
    "tags": ["network", "paris"],
}


def submit(stack, party, args=None, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return stack.api(
        "POST",
        "/proposals/",
        party["agent"],
        headers=headers,
        json={"tool": "crm.create_ticket", "args": args or ARGS, "rationale": "user reported outage"},
    )


def tickets_with_key(stack, key):
    return [
        r
        for r in stack.sandbox("GET", "/_sandbox/requests").json()["requests"]
        if r.get("idempotency_key") == key and r["method"] == "POST"
    ]


def test_agent_submits_reviewer_approves_worker_commits(stack):
    party = stack.party()
    before = len(stack.tickets())

    created = submit(stack, party)
    assert created.status_code == 201, created.text
    proposal = created.json()
    assert proposal["args"]["priority"] == "urgent"
    assert len(stack.tickets()) == before  # nothing leaves before approval

    approved = stack.api(
        "POST", f"/proposals/{proposal['id']}/approve/", party["reviewer"], json={"comment": "go"}
    )
    assert approved.status_code == 202, approved.text

    done = stack.wait_status(proposal["id"], party["agent"], {"committed", "failed"})
    assert done["status"] == "committed", done
    receipt = stack.api("GET", f"/proposals/{proposal['id']}/receipt/", party["agent"]).json()
    tickets = {str(t["id"]): t for t in stack.tickets()}
    assert receipt["external_id"] in tickets
    ticket = tickets[receipt["external_id"]]
    assert ticket["subject"] == ARGS["subject"]
    assert ticket["priority"] == "urgent"
    assert len(stack.tickets()) == before + 1


def test_fifty_identical_submissions_make_one_proposal_and_one_ticket(stack):
    party = stack.party()
    key = f"dup-{uuid.uuid4().hex}"

    with ThreadPoolExecutor(max_workers=25) as pool:
        responses = list(pool.map(lambda _: submit(stack, party, key=key), range(50)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 1, statuses
    assert statuses.count(200) == 49, statuses
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    assert all(r.headers.get("Idempotent-Replayed") == "true" for r in responses if r.status_code == 200)
    listed = stack.api("GET", "/proposals/", party["agent"]).json()["results"]
    assert len(listed) == 1

    pid = ids.pop()
    stack.api("POST", f"/proposals/{pid}/approve/", party["reviewer"], json={})
    stack.wait_status(pid, party["agent"], {"committed"})
    assert len(tickets_with_key(stack, f"acme-proposal-{pid}")) == 1


def test_twenty_concurrent_approvals_commit_once(stack):
    party = stack.party()
    pid = submit(stack, party).json()["id"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(
            pool.map(
                lambda _: stack.api("POST", f"/proposals/{pid}/approve/", party["reviewer"], json={}),
                range(20),
            )
        )

    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(202) == 1, statuses
    assert statuses.count(409) == 19, statuses
    assert all(r.json()["error"] == "invalid_state" for r in responses if r.status_code == 409)
    stack.wait_status(pid, party["agent"], {"committed"})
    assert len(tickets_with_key(stack, f"acme-proposal-{pid}")) == 1


def test_same_key_with_other_args_is_409(stack):
    party = stack.party()
    key = f"k-{uuid.uuid4().hex}"
    assert submit(stack, party, key=key).status_code == 201

    response = submit(stack, party, args={**ARGS, "subject": "Something else"}, key=key)

    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_key_reused"


def test_a_commit_job_run_twice_makes_one_ticket(stack):
    party = stack.party()
    pid = submit(stack, party).json()["id"]
    stack.api("POST", f"/proposals/{pid}/approve/", party["reviewer"], json={})
    stack.wait_status(pid, party["agent"], {"committed"})

    # Enqueue the same commit job again, twice, through RQ as the outbox would.
    stack.manage(
        "shell",
        "-c",
        (
            "import django_rq; from approvals import jobs; q = django_rq.get_queue('commits');"
            f"q.enqueue(jobs.commit_proposal, '{pid}'); q.enqueue(jobs.commit_proposal, '{pid}')"
        ),
    )
    stack.manage(
        "shell",
        "-c",
        "import time, django_rq; q = django_rq.get_queue('commits')\n"
        "for _ in range(100):\n    time.sleep(0.1)\n    if q.count == 0: break",
    )

    assert len(tickets_with_key(stack, f"acme-proposal-{pid}")) == 1
    assert stack.api("GET", f"/proposals/{pid}/", party["agent"]).json()["status"] == "committed"


@pytest.mark.parametrize("end", ["pending", "rejected", "cancelled"])
def test_no_write_without_approval(stack, end):
    party = stack.party()
    pid = submit(stack, party, key=f"nw-{uuid.uuid4().hex}").json()["id"]
    if end == "rejected":
        assert (
            stack.api(
                "POST", f"/proposals/{pid}/reject/", party["reviewer"], json={"reason": "no"}
            ).status_code
            == 200
        )
    elif end == "cancelled":
        assert stack.api("POST", f"/proposals/{pid}/cancel/", party["agent"]).status_code == 200

    # Give a worker every chance to (wrongly) pick it up, then look at what reached the CRM.
    stack.manage(
        "shell",
        "-c",
        "from approvals import outbox, services; outbox.drain(); services.commits_redispatch(grace=0)",
    )
    import time

    time.sleep(1.5)
    assert tickets_with_key(stack, f"acme-proposal-{pid}") == []
    assert stack.api("GET", f"/proposals/{pid}/", party["agent"]).json()["status"] == end


def test_errors_over_http(stack):
    party, other = stack.party(), stack.party()
    pid = submit(stack, party).json()["id"]

    assert stack.api("POST", "/proposals/", "agt_bad").status_code == 401
    assert stack.api("POST", f"/proposals/{pid}/approve/", party["agent"], json={}).status_code == 403
    assert stack.api("GET", f"/proposals/{pid}/", other["agent"]).status_code == 404
    assert stack.api("GET", f"/proposals/{pid}/", other["reviewer"]).status_code == 404
    bad = submit(stack, party, args={**ARGS, "priority": 5})
    assert bad.status_code == 400 and bad.json()["errors"][0]["loc"][-1] == "priority"


def test_an_hourly_limit_holds_under_concurrent_submissions(stack):
    party = stack.party()
    stack.manage(
        "shell",
        "-c",
        (
            "from approvals.models import Tenant, ToolPolicy; "
            f"ToolPolicy.objects.create(tenant=Tenant.objects.get(slug='{party['tenant']}'), name='three-an-hour', "
            "tool='crm.create_ticket', max_per_hour=3)"
        ),
    )

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(
            pool.map(
                lambda i: submit(stack, party, args={**ARGS, "subject": f"Outage report {i}"}), range(20)
            )
        )

    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(201) == 3, statuses
    assert statuses.count(429) == 17, statuses
    assert all(r.json()["check"] == "max_per_hour" for r in responses if r.status_code == 429)
    listed = stack.api("GET", "/proposals/", party["agent"]).json()["results"]
    assert len(listed) == 3
