"""approvals/services/lease.py: the heartbeat keeps a long commit's lease; the fencing token refuses a
stalled worker's late result."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.utils import timezone

from adapters import errors as adapter_errors
from adapters import registry
from adapters.types import Outcome
from approvals import queues, services
from approvals.models import Proposal, Receipt, Status
from approvals.services import lease
from audit.models import AuditEvent
from audit.services import Where

API = Where(channel="api", ip="127.0.0.1")
ARGS = {"subject": "Broken login", "description": "Users cannot log in.", "priority": "high"}


def approved(party):
    proposal = services.proposal_submit(
        agent=party.agent, tool="crm.create_ticket", args=ARGS, where=API
    ).proposal
    return services.proposal_approve(proposal=proposal, reviewer=party.reviewer, where=API)


def outcome(external_id: str) -> Outcome:
    return Outcome(system="crm", external_id=external_id, summary={"id": external_id})


@pytest.fixture
def no_handoff(monkeypatch):
    """The approvals' commit jobs are not run (the test drives the commit, as a worker would)."""
    monkeypatch.setattr(queues, "enqueue_commit", lambda proposal_id: True)


# A real database connection per thread: the heartbeat renews on its own connection.
@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_keeps_a_long_commits_lease(acme, settings, monkeypatch, no_handoff):
    # given a short lease, renewed often, and a commit that takes well past it (a long 429 wait)
    settings.ACME_COMMIT_LEASE = 1
    settings.ACME_COMMIT_HEARTBEAT = 0.2
    proposal = approved(acme)
    seen: dict[str, Any] = {}

    def slow(name, args, **kwargs):
        time.sleep(2.5)
        # then another worker finds it held, and the sweep does not re-stage it
        seen["other_worker"] = services.proposal_commit(proposal_id=proposal.pk).outcome
        seen["restaged"] = services.commits_redispatch()
        lease_until = Proposal.objects.get(pk=proposal.pk).lease_until
        assert lease_until is not None
        seen["lease_left"] = (lease_until - timezone.now()).total_seconds()
        return outcome("77")

    monkeypatch.setattr(registry, "execute", slow)

    # when
    result = services.proposal_commit(proposal_id=proposal.pk)

    # then
    assert seen["other_worker"] == "noop"
    assert seen["restaged"] == 0
    assert seen["lease_left"] > 0
    assert result.outcome == "committed"
    assert Receipt.objects.filter(proposal=proposal).count() == 1


@pytest.mark.django_db(transaction=True)
def test_without_renewals_a_long_commit_loses_its_lease(acme, settings, monkeypatch, no_handoff):
    """The counterpart of the test above: what the heartbeat prevents."""
    settings.ACME_COMMIT_LEASE = 1
    settings.ACME_COMMIT_HEARTBEAT = 60
    proposal = approved(acme)
    seen: dict[str, Any] = {}

    def slow(name, args, **kwargs):
        time.sleep(1.5)
        seen["restaged"] = services.commits_redispatch()
        return outcome("77")

    monkeypatch.setattr(registry, "execute", slow)
    services.proposal_commit(proposal_id=proposal.pk)

    assert seen["restaged"] == 1


def renew_refused_after_takeover(acme):
    proposal = approved(acme)
    Proposal.objects.filter(pk=proposal.pk).update(status=Status.COMMITTING, lease_token=3)
    assert lease.renew(proposal.pk, 3) is True
    assert lease.renew(proposal.pk, 2) is False


@pytest.mark.django_db
def test_a_renewal_under_an_old_token_changes_nothing(acme):
    renew_refused_after_takeover(acme)


LATE_RESULTS: dict[str, Any] = {
    "committed": lambda: outcome("A-late"),
    "failed": adapter_errors.PermanentFailure(detail="crm answered 422", attempts=1, status=422),
    "stale": adapter_errors.StaleTarget("ticket 5 changed since the preview"),
    "deferred": adapter_errors.Deferred(reason="rate_limited", retry_at=time.time() + 30),
}


@pytest.mark.django_db
@pytest.mark.parametrize("late", sorted(LATE_RESULTS))
def test_a_stalled_workers_late_result_is_discarded(acme, monkeypatch, late):
    # given worker A claims the proposal, then stalls past its lease; worker B takes it over and commits
    proposal = approved(acme)
    results: list[str] = []

    def execute(name, args, **kwargs):
        if results:  # worker B's call
            return outcome("B-1")
        results.append("A started")
        Proposal.objects.filter(pk=proposal.pk).update(lease_until=timezone.now())
        results.append(services.proposal_commit(proposal_id=proposal.pk).outcome)  # worker B
        answer = LATE_RESULTS[late]
        if isinstance(answer, Exception):
            raise answer
        return answer()

    monkeypatch.setattr(registry, "execute", execute)

    # when A's late result arrives
    a = services.proposal_commit(proposal_id=proposal.pk)

    # then it is refused: B's outcome stands, one receipt, and the discarded result is audited
    assert results == ["A started", "committed"]
    assert a.outcome == "noop"
    proposal.refresh_from_db()
    assert proposal.status == Status.COMMITTED
    assert proposal.lease_token == 2
    assert list(Receipt.objects.filter(proposal=proposal).values_list("external_id", flat=True)) == ["B-1"]
    discarded = AuditEvent.objects.get(action=lease.DISCARDED_ACTION, subject_id=str(proposal.pk))
    assert discarded.result == "stale"
    assert (discarded.data["outcome"], discarded.data["token"], discarded.data["current_token"]) == (
        late,
        1,
        2,
    )
    assert AuditEvent.objects.filter(action="proposal.committed", subject_id=str(proposal.pk)).count() == 1


@pytest.mark.django_db(transaction=True)
def test_one_thread_renews_every_commit_in_flight_and_stops_with_each(acme, settings, no_handoff):
    import threading

    settings.ACME_COMMIT_LEASE = 1
    settings.ACME_COMMIT_HEARTBEAT = 0.1
    first = approved(acme)
    second_proposal = services.proposal_submit(
        agent=acme.agent, tool="crm.create_ticket", args={**ARGS, "subject": "Another"}, where=API
    ).proposal
    second = services.proposal_approve(proposal=second_proposal, reviewer=acme.reviewer, where=API)
    past = timezone.now()
    Proposal.objects.filter(pk__in=[first.pk, second.pk]).update(
        status=Status.COMMITTING, lease_token=1, lease_until=past
    )

    def lease_of(proposal: Proposal) -> Any:
        return Proposal.objects.get(pk=proposal.pk).lease_until

    with lease.heartbeat(first.pk, 1):
        with lease.heartbeat(second.pk, 1):
            time.sleep(0.5)
            assert lease_of(first) > past and lease_of(second) > past  # both renewed
            beating = [t for t in threading.enumerate() if t.name == "acme-lease-heartbeat"]
            assert len(beating) == 1  # one thread for both, not one per commit
        ended = lease_of(second)
        time.sleep(0.4)
        assert lease_of(second) == ended  # the second's block ended: no more renewals of it
        assert lease_of(first) > ended  # while the first's go on


def test_a_forked_child_starts_with_a_heartbeat_of_its_own():
    """A forking worker's child must not inherit the parent's heartbeat lock held by the parent's thread
    (it would wait on it forever) nor the parent's commits in flight."""
    import os

    beats = lease._HEARTBEATS
    with beats._lock:  # the parent's heartbeat thread holds its lock at the moment of the fork
        beats._due[("parent-commit", 1)] = (time.monotonic() + 60, 60.0)
        pid = os.fork()
        if pid == 0:  # the child: a fresh lock, nothing in flight
            ok = beats._lock.acquire(timeout=2) and not beats._due
            os._exit(0 if ok else 1)
        beats._due.pop(("parent-commit", 1))
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_beat_stuck_on_the_network_does_not_hold_the_commits_end(settings, monkeypatch):
    """The heartbeat's renewal hangs (a connection black-holed, no reset): the commit's block still ends
    within about one interval, instead of waiting for the beat for ever."""
    import threading

    settings.ACME_COMMIT_HEARTBEAT = 0.2
    started, release = threading.Event(), threading.Event()

    def stuck(proposal_id, token):
        started.set()
        release.wait(10)
        return True

    monkeypatch.setattr(lease, "renew", stuck)
    try:
        with lease.heartbeat("stuck-commit", 1):
            assert started.wait(5)  # a beat is under way, and hangs
            ended_at = time.monotonic()
        took = time.monotonic() - ended_at
    finally:
        release.set()
    assert (
        took < 5
    )  # one interval (0.2 s) plus scheduling; without the bound it waits the 10 s the beat hangs
