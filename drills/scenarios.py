"""The drills. Each takes a running stack (tests/e2e/stack.py) and a party (tenant, agent, reviewer) and
returns an Outcome: one row of the report.

What is counted, for the proposals a drill approves:
* tickets  — tickets in the sandbox CRM whose subject carries the drill's tag (one per proposal expected);
* committed — proposals that ended ``committed`` (after an admin requeue of dead-lettered ones, where the
  drill says so: a dead letter is kept and recoverable, not lost);
* lost     — approved proposals that did not end committed with a ticket;
* doubled  — tickets beyond one per proposal, plus proposals beyond one per (racing) submission, plus
  approvals beyond one per proposal.
A drill fails on any loss or double, or when its own expectation is not met.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypedDict, cast

from tests.e2e.stack import PYTHON, ROOT, Stack

TERMINAL = {"committed", "failed", "rejected", "cancelled", "expired", "stale"}
DESCRIPTION = "A drill of the proving ground."


@dataclass
class Outcome:
    drill: str
    done: str
    expected: str
    proposals: int = 0
    committed: int = 0
    tickets: int = 0
    lost: int = 0
    doubled: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.skipped) or (self.lost == 0 and self.doubled == 0 and not self.problems)

    @property
    def verdict(self) -> str:
        return "SKIP" if self.skipped else "PASS" if self.ok else "FAIL"

    def check(self, condition: bool, problem: str) -> None:
        if not condition:
            self.problems.append(problem)


class Drill:
    """Helpers shared by the drills, bound to one stack, one party and one tag."""

    def __init__(self, stack: Stack, party: dict[str, str], name: str) -> None:
        self.stack, self.party, self.name = stack, party, name
        self.tag = f"{name}-{uuid.uuid4().hex[:6]}"

    def subject(self, i: int) -> str:
        return f"[{self.tag}] item {i}"

    def args(self, i: int) -> dict[str, str]:
        return {
            "subject": self.subject(i),
            "description": f"Drill {self.name}, item {i}.",
            "priority": "high",
        }

    def submit(self, i: int, key: str | None = None) -> Any:
        headers = {"Idempotency-Key": key} if key else {}
        return self.stack.api(
            "POST",
            "/proposals/",
            self.party["agent"],
            headers=headers,
            json={"tool": "crm.create_ticket", "args": self.args(i)},
        )

    def new(self, count: int) -> list[str]:
        ids = []
        for i in range(count):
            response = self.submit(i, key=uuid.uuid4().hex)
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        return ids

    def approve(self, pid: str) -> Any:
        return self.stack.api("POST", f"/proposals/{pid}/approve/", self.party["reviewer"], json={})

    def status(self, pid: str) -> dict[str, Any]:
        return self.stack.api("GET", f"/proposals/{pid}/", self.party["agent"]).json()

    def fault(self, **spec: Any) -> None:
        response = self.stack.sandbox("POST", "/_sandbox/faults", json={"target": "crm", **spec})
        assert response.status_code in (200, 201, 204), response.text

    def creates(self, pid: str) -> list[dict[str, Any]]:
        return [
            r
            for r in self.stack.sandbox("GET", "/_sandbox/requests").json()["requests"]
            if r["method"] == "POST" and r.get("idempotency_key") == f"acme-proposal-{pid}"
        ]

    def wait(self, pids: list[str], statuses: set[str], timeout: float = 90) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        final: dict[str, str] = {}
        while time.monotonic() < deadline:
            final = {pid: self.status(pid).get("status", "?") for pid in pids}
            if all(s in statuses for s in final.values()):
                break
            time.sleep(0.3)
        return final

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.1)
        return False

    def requeue_failed(self, pids: list[str]) -> int:
        failed = [p for p in pids if self.status(p).get("status") == "failed"]
        if failed:
            ids = ",".join(repr(p) for p in failed)
            self.stack.manage(
                "shell",
                "-c",
                (
                    "from django.contrib.auth import get_user_model; from approvals import services;"
                    "from approvals.models import Proposal; from audit.services import Where;"
                    f"admin = get_user_model().objects.get(username={self.party['reviewer_username']!r});"
                    f"[services.proposal_requeue(proposal=p, admin=admin, where=Where(channel='cli'))"
                    f" for p in Proposal.objects.filter(pk__in=[{ids}])]"
                ),
            )
        return len(failed)

    def settle(self, out: Outcome, pids: list[str], timeout: float = 90, *, requeue: bool = False) -> None:
        """Wait for every proposal to end, then count commits, tickets, losses and doubles."""
        final = self.wait(pids, TERMINAL, timeout)
        if requeue:
            requeued = self.requeue_failed(pids)
            if requeued:
                out.notes.append(f"{requeued} dead-lettered, requeued")
                final = self.wait(pids, {"committed"}, timeout)
        tickets = Counter(
            t.get("subject", "") for t in self.stack.tickets() if f"[{self.tag}]" in t.get("subject", "")
        )
        receipts = {pid: (self.status(pid).get("receipt") or {}).get("external_id") for pid in pids}
        out.proposals = len(pids)
        out.committed = sum(1 for s in final.values() if s == "committed")
        out.tickets = sum(tickets.values())
        out.doubled += sum(n - 1 for n in tickets.values() if n > 1)
        out.lost = sum(1 for pid in pids if final.get(pid) != "committed" or not receipts[pid])
        stuck = Counter(s for s in final.values() if s != "committed")
        if stuck:
            out.notes.append("ended " + ", ".join(f"{n} {s}" for s, n in stuck.items()))


def _timed(fn: Callable[[Stack, dict[str, str]], Outcome]) -> Callable[[Stack, dict[str, str]], Outcome]:
    def run(stack: Stack, party: dict[str, str]) -> Outcome:
        started = time.monotonic()
        outcome = fn(stack, party)
        outcome.seconds = round(time.monotonic() - started, 1)
        return outcome

    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


# --- the drills ------------------------------------------------------------------------------------------


@_timed
def racing_submissions(stack: Stack, party: dict[str, str]) -> Outcome:
    d = Drill(stack, party, "race-submit")
    out = Outcome(
        d.name,
        "20 identical POSTs at once with one Idempotency-Key, and 20 without a key",
        "1 proposal per group (one 201, replays 200), 1 ticket each",
    )
    key = uuid.uuid4().hex
    with ThreadPoolExecutor(20) as pool:
        keyed = list(pool.map(lambda _: d.submit(0, key=key), range(20)))
        derived = list(pool.map(lambda _: d.submit(1), range(20)))
    pids = []
    for group, responses in (("keyed", keyed), ("derived", derived)):
        codes = Counter(r.status_code for r in responses)
        ids = {r.json()["id"] for r in responses if r.status_code in (200, 201)}
        out.check(set(codes) <= {200, 201} and codes[201] == 1, f"{group}: statuses {dict(codes)}")
        out.doubled += max(0, len(ids) - 1)
        pids.extend(sorted(ids)[:1])
        out.notes.append(f"{group}: {dict(sorted(codes.items()))}")
    for pid in pids:
        out.check(d.approve(pid).status_code == 202, f"approve {pid} failed")
    d.settle(out, pids)
    return out


@_timed
def racing_approvals(stack: Stack, party: dict[str, str]) -> Outcome:
    d = Drill(stack, party, "race-approve")
    out = Outcome(
        d.name,
        "10 proposals, each approved by 5 concurrent requests",
        "per proposal one 202 and four 409; 10 tickets",
    )
    pids = d.new(10)
    with ThreadPoolExecutor(10) as pool:
        results = list(
            pool.map(lambda pid: (pid, d.approve(pid).status_code), [p for p in pids for _ in range(5)])
        )
    per = {pid: Counter(code for p, code in results if p == pid) for pid in pids}
    for pid, codes in per.items():
        out.check(set(codes) <= {202, 409}, f"{pid}: statuses {dict(codes)}")
        out.doubled += max(0, codes[202] - 1)
        out.check(codes[202] >= 1, f"{pid}: no approval succeeded")
    out.notes.append(f"statuses {dict(Counter(code for _, code in results))}")
    d.settle(out, pids)
    return out


def _commit_in_process(stack: Stack, pid: str) -> subprocess.Popen:
    code = f"from approvals.jobs import commit_proposal; print('OUTCOME', commit_proposal({pid!r}))"
    return subprocess.Popen(  # noqa: S603
        [PYTHON, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=stack.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@_timed
def commit_job_twice(stack: Stack, party: dict[str, str]) -> Outcome:
    d = Drill(stack, party, "commit-twice")
    out = Outcome(
        d.name,
        "the commit job run by the worker and by 2 more processes at once (CRM slowed 2 s), "
        "then once more after the commit",
        "1 ticket; the extra runs are no-ops",
    )
    (pid,) = d.new(1)
    d.fault(mode="delay", seconds=2, count=1)
    out.check(d.approve(pid).status_code == 202, "approve failed")
    extra = [_commit_in_process(stack, pid) for _ in range(2)]
    outcomes = [p.communicate(timeout=120)[0] for p in extra]
    d.wait([pid], TERMINAL)
    outcomes.append(_commit_in_process(stack, pid).communicate(timeout=120)[0])
    said = [line.split()[-1] for text in outcomes for line in text.splitlines() if line.startswith("OUTCOME")]
    out.notes.append(f"extra runs said {said}")
    out.check(len(said) == 3, f"an extra run crashed: {outcomes}")
    d.settle(out, [pid])
    creates = [r for r in d.creates(pid) if not r.get("fault")]
    out.check(len(creates) <= 1 or out.tickets == 1, f"{len(creates)} create calls")
    return out


# Seconds from the kill to the proposal committed by another worker, with the default lease settings.
KILL9_RECOVERY_TARGET = 15


@_timed
def worker_kill9(stack: Stack, party: dict[str, str]) -> Outcome:
    d = Drill(stack, party, "kill-9")
    out = Outcome(
        d.name,
        "kill -9 of the worker while the CRM holds its create call (written, unanswered); default lease "
        "settings (the live worker renews its lease, a dead one's runs out)",
        f"a new worker takes over once the lease runs out, in < {KILL9_RECOVERY_TARGET} s; 1 ticket",
    )
    (pid,) = d.new(1)
    d.fault(mode="write_then_timeout", seconds=30, count=1)
    out.check(d.approve(pid).status_code == 202, "approve failed")
    reached = d.wait_until(lambda: bool(d.creates(pid)), timeout=30)
    out.check(reached, "the commit never reached the CRM")
    out.check(d.status(pid)["status"] == "committing", "not committing when killed")
    killed_at = time.monotonic()
    stack.kill("worker", signal.SIGKILL)
    stack.start_worker("worker")
    d.wait([pid], TERMINAL, timeout=90)
    recovered = time.monotonic() - killed_at
    d.settle(out, [pid], timeout=90)
    out.check(recovered < KILL9_RECOVERY_TARGET, f"recovered in {recovered:.1f} s")
    out.notes.append(f"recovered in {recovered:.1f} s; {len(d.creates(pid))} create calls, same key")
    return out


@_timed
def redis_restart(stack: Stack, party: dict[str, str]) -> Outcome:
    d = Drill(stack, party, "redis-restart")
    out = Outcome(
        d.name,
        "approve 5, stop Redis at once (no persistence: queued jobs lost), approve 5 more "
        "while it is down, start it again",
        "all 10 committed once (the outbox re-dispatches)",
    )
    if not stack.redis_port:
        out.skipped = "needs the stack's private Redis"
        return out
    pids = d.new(10)
    codes = [d.approve(pid).status_code for pid in pids[:5]]
    stack.redis_stop()
    codes += [d.approve(pid).status_code for pid in pids[5:]]
    out.check(codes == [202] * 10, f"approvals answered {codes}")
    time.sleep(2)
    stack.redis_start()
    d.settle(out, pids, timeout=120)
    return out


@_timed
def crm_503_storm(stack: Stack, party: dict[str, str]) -> Outcome:
    d = Drill(stack, party, "503-storm")
    out = Outcome(
        d.name,
        "the CRM answers 503 to the next 15 calls while 4 approvals commit",
        "retries, breaker; commits wait for the breaker (an admin requeues any dead letter); "
        "all 4 committed once",
    )
    pids = d.new(4)
    d.fault(mode="status", status=503, count=15)
    for pid in pids:
        out.check(d.approve(pid).status_code == 202, "approve failed")
    d.settle(out, pids, timeout=120, requeue=True)
    left = stack.sandbox("GET", "/_sandbox/faults").json().get("faults", [])
    if left:
        out.notes.append(f"{sum(int(f.get('count', 0)) for f in left)} armed 503s unused")
        stack.sandbox("DELETE", "/_sandbox/faults")
    return out


@_timed
def crm_429_storm(stack: Stack, party: dict[str, str]) -> Outcome:
    d = Drill(stack, party, "429-storm")
    out = Outcome(
        d.name,
        "the CRM answers 429 with Retry-After: 1 to the next 4 calls, 3 approvals",
        "each retry waits >= Retry-After; 3 tickets",
    )
    pids = d.new(3)
    d.fault(mode="429", retry_after=1, count=4)
    for pid in pids:
        out.check(d.approve(pid).status_code == 202, "approve failed")
    d.settle(out, pids)
    too_soon = 0
    for pid in pids:
        calls = sorted(d.creates(pid), key=lambda r: r["time"])
        for before, after in itertools.pairwise(calls):
            if before.get("fault") in ("429", 429) and after["time"] - before["time"] < 0.9:
                too_soon += 1
    out.check(too_soon == 0, f"{too_soon} retries came sooner than Retry-After")
    out.notes.append(f"{sum(len(d.creates(p)) for p in pids)} create calls for 3 tickets")
    return out


@_timed
def write_then_timeout(stack: Stack, party: dict[str, str]) -> Outcome:
    d = Drill(stack, party, "write-timeout")
    out = Outcome(
        d.name,
        "the CRM creates the ticket, then never answers (client timeout 3 s)",
        "the retry with the same Idempotency-Key finds it: 1 ticket",
    )
    (pid,) = d.new(1)
    d.fault(mode="write_then_timeout", seconds=5, count=1)
    out.check(d.approve(pid).status_code == 202, "approve failed")
    d.settle(out, [pid])
    calls = d.creates(pid)
    out.check(len(calls) >= 2, f"expected a retry, saw {len(calls)} create calls")
    out.notes.append(f"{len(calls)} create calls, same key")
    return out


@_timed
def postgres_connection_drop(stack: Stack, party: dict[str, str]) -> Outcome:
    d = Drill(stack, party, "pg-drop")
    out = Outcome(
        d.name,
        "pg_terminate_backend() on every connection to the stack's database while a commit "
        "waits on the CRM (3 s)",
        "the commit completes (or is taken over): 1 ticket",
    )
    url = stack.env.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        out.skipped = "needs PostgreSQL"
        return out
    import psycopg

    (pid,) = d.new(1)
    d.fault(mode="delay", seconds=3, count=1)
    out.check(d.approve(pid).status_code == 202, "approve failed")
    out.check(d.wait_until(lambda: d.status(pid)["status"] == "committing", timeout=30), "never committing")
    time.sleep(0.5)
    with psycopg.connect(url, autocommit=True) as conn:
        # An aggregate always returns one row.
        killed = cast(
            "tuple[Any, ...]",
            conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone(),
        )[0]
    out.notes.append(f"{killed} connections terminated")
    with contextlib.suppress(Exception):
        d.status(pid)  # the web process meets its dead connection here, and recovers
    d.settle(out, [pid], timeout=90)
    return out


@_timed
def slack_lost_answer(stack: Stack, party: dict[str, str]) -> Outcome:
    d = Drill(stack, party, "slack-lost-answer")
    out = Outcome(
        d.name,
        "Slack posts the message, then the answer is lost (connection dropped after the write); the sandbox "
        "Slack keeps no Idempotency-Key, as the real one",
        "the retry looks the post up by its metadata (conversations.history) and adopts it: 1 message",
    )
    text = f"[{d.tag}] drill message"
    config = stack.sandbox("POST", "/_sandbox/config", json={"slack_idempotency": False})
    out.check(config.status_code == 200, f"sandbox config: {config.status_code}")
    try:
        submitted = stack.api(
            "POST",
            "/proposals/",
            party["agent"],
            headers={"Idempotency-Key": uuid.uuid4().hex},
            json={"tool": "slack.post_message", "args": {"channel": "#support", "text": text}},
        )
        assert submitted.status_code == 201, submitted.text
        pid = submitted.json()["id"]
        d.fault(
            target="slack", mode="write_then_timeout", seconds=0, count=1, path="/slack/api/chat.postMessage"
        )
        out.check(d.approve(pid).status_code == 202, "approve failed")
        final = d.wait([pid], TERMINAL)
    finally:
        stack.sandbox("POST", "/_sandbox/config", json={"slack_idempotency": True})
    posted = [m for m in stack.sandbox("GET", "/_sandbox/messages").json()["messages"] if m["text"] == text]
    receipt = d.status(pid).get("receipt") or {}
    out.proposals = 1
    out.committed = int(final.get(pid) == "committed")
    out.tickets = len(posted)  # the writes: messages in the channel
    out.doubled = max(0, len(posted) - 1)
    out.lost = int(not out.committed or not receipt.get("external_id"))
    adopted = [f"{m['channel']}:{m['ts']}" for m in posted]
    out.check(receipt.get("external_id") in adopted, f"receipt {receipt.get('external_id')} is not the post")
    posts = [
        r
        for r in stack.sandbox("GET", "/_sandbox/requests").json()["requests"]
        if r["path"].endswith("chat.postMessage") and r.get("idempotency_key") == f"acme-proposal-{pid}"
    ]
    out.notes.append(f"{len(posts)} chat.postMessage call(s), {len(posted)} message(s)")
    return out


# Run in this order: the storms go last (they open the CRM breaker, which later drills would meet).
DRILLS: list[Callable[[Stack, dict[str, str]], Outcome]] = [
    racing_submissions,
    racing_approvals,
    commit_job_twice,
    write_then_timeout,
    worker_kill9,
    slack_lost_answer,
    postgres_connection_drop,
    redis_restart,
    crm_429_storm,
    crm_503_storm,
]


class StackEnv(TypedDict):
    """The keys of ``STACK_ENV``: typed so that ``running_stack(**STACK_ENV)`` checks (no ``workers`` key)."""

    ACME_HTTP_TIMEOUT: str
    ACME_BREAKER_COOLDOWN: str
    ACME_RETRY_MAX: str
    ACME_RETRY_BASE: str


# The stack every drill runs on: short timeouts so that recoveries take seconds, not minutes. The commit
# lease keeps its default (ACME_COMMIT_LEASE, renewed by the heartbeat): the kill -9 drill measures it.
STACK_ENV: StackEnv = {
    "ACME_HTTP_TIMEOUT": "3",
    "ACME_BREAKER_COOLDOWN": "2",
    "ACME_RETRY_MAX": "5",
    "ACME_RETRY_BASE": "0.05",
}
