"""approvals/services.py: the status machine, the commit's exactly-once guarantees, and the audit it writes."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import responses
from django.conf import settings
from django.utils import timezone

from adapters import errors as adapter_errors
from adapters import registry
from approvals import errors, outbox, services
from approvals.models import OutboxMessage, Proposal, Receipt, Status
from audit.models import AuditEvent
from audit.services import Where

API = Where(channel="api", ip="127.0.0.1")
TICKETS_URL = f"{settings.CRM_BASE_URL}/api/v2/tickets.json"
ARGS = {"subject": "Broken login", "description": "Users cannot log in.", "priority": "high"}


def created(rsps, ticket_id=77):
    rsps.add(
        responses.POST,
        TICKETS_URL,
        status=201,
        json={
            "ticket": {
                "id": ticket_id,
                "subject": "Broken login",
                "priority": "high",
                "status": "new",
                "updated_at": "2026-11-23T10:00:00Z",
            }
        },
    )


def pending(party, **kw):
    return services.proposal_submit(
        agent=party.agent, tool="crm.create_ticket", args=kw.pop("args", ARGS), where=API, **kw
    ).proposal


def approved(party):
    proposal = pending(party)
    # Approve without running the on-commit hand-off: the tests drive the commit themselves.
    return services.proposal_approve(proposal=proposal, reviewer=party.reviewer, where=API)


@pytest.mark.django_db
class TestCommit:
    def test_a_commit_run_twice_sends_one_request(self, acme):
        proposal = approved(acme)

        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            created(rsps, 77)
            first = services.proposal_commit(proposal_id=proposal.pk)
            second = services.proposal_commit(proposal_id=proposal.pk)
            assert len(rsps.calls) == 1

        assert (first.outcome, second.outcome) == ("committed", "noop")
        assert Receipt.objects.get(proposal=proposal).external_id == "77"

    @pytest.mark.parametrize("end", ["pending", "rejected", "cancelled", "expired"])
    def test_no_write_without_approval(self, acme, end):
        proposal = pending(acme)
        if end == "rejected":
            services.proposal_reject(proposal=proposal, reviewer=acme.reviewer, reason="no", where=API)
        elif end == "cancelled":
            services.proposal_cancel(proposal=proposal, agent=acme.agent, where=API)
        elif end == "expired":
            Proposal.objects.filter(pk=proposal.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
            assert services.proposal_expire_due() == 1

        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            created(rsps)
            assert services.proposal_commit(proposal_id=proposal.pk).outcome == "noop"
            assert len(rsps.calls) == 0

        assert Proposal.objects.get(pk=proposal.pk).status == end
        assert not Receipt.objects.exists()

    def test_args_changed_after_approval_are_refused(self, acme):
        proposal = approved(acme)
        Proposal.objects.filter(pk=proposal.pk).update(args={**ARGS, "subject": "Tampered"})

        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            created(rsps)
            assert services.proposal_commit(proposal_id=proposal.pk).outcome == "noop"
            assert len(rsps.calls) == 0

        proposal.refresh_from_db()
        assert proposal.status == Status.FAILED
        assert AuditEvent.objects.filter(
            action="proposal.commit_refused", subject_id=str(proposal.pk)
        ).exists()

    def test_a_4xx_fails_the_proposal_after_one_attempt(self, acme):
        proposal = approved(acme)

        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, TICKETS_URL, status=422, json={"error": "RecordInvalid"})
            assert services.proposal_commit(proposal_id=proposal.pk).outcome == "failed"
            assert len(rsps.calls) == 1

        proposal.refresh_from_db()
        assert proposal.status == Status.FAILED
        assert proposal.status_reason
        assert proposal.commit_attempts == 1

    def test_an_open_breaker_defers_without_failing(self, acme, monkeypatch):
        proposal = approved(acme)
        retry_at = time.time() + 30

        def deferred(*args, **kwargs):
            raise adapter_errors.Deferred(reason="breaker_open", retry_at=retry_at)

        monkeypatch.setattr(registry, "execute", deferred)

        assert services.proposal_commit(proposal_id=proposal.pk).outcome == "deferred"

        proposal.refresh_from_db()
        assert proposal.status == Status.APPROVED
        assert "circuit breaker" in proposal.status_reason
        assert proposal.commit_attempts == 0
        later = OutboxMessage.objects.order_by("-id").first()
        assert later is not None
        assert later.available_at.timestamp() == pytest.approx(retry_at, abs=1)
        # Not before its time: a commit job arriving early does nothing.
        assert services.proposal_commit(proposal_id=proposal.pk).outcome == "noop"

    def test_a_commits_calls_end_within_its_budget(self, acme, settings):
        """The calls must end inside the commit's budget (the RQ job timeout would kill the job with its
        outcome unrecorded): a wait the server asks for that the budget cannot cover defers the commit to
        the time the server named (here the second 429 asks for 1 s when about 0.8 s of the budget is left)."""
        settings.ACME_COMMIT_BUDGET = 1.8  # seconds for the outside calls
        proposal = approved(acme)

        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, TICKETS_URL, status=429, headers={"Retry-After": "1"})
            started = time.monotonic()
            result = services.proposal_commit(proposal_id=proposal.pk)
            took = time.monotonic() - started
            sent = len(rsps.calls)

        assert result.outcome == "deferred"
        assert sent == 2  # without the bound: all five attempts, four waits of 1 s, past the budget
        assert took < 2
        proposal.refresh_from_db()
        assert proposal.status == Status.APPROVED and proposal.lease_until is None
        assert proposal.commit_attempts == 2
        assert proposal.next_attempt_at is not None
        assert proposal.next_attempt_at.timestamp() == pytest.approx(time.time() + 1, abs=1)

    def test_a_commit_whose_retries_trip_the_breaker_waits_for_it_like_the_others(
        self, acme, settings, fast_retries, sleeps
    ):
        proposal = approved(acme)

        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, TICKETS_URL, status=503)
            assert services.proposal_commit(proposal_id=proposal.pk).outcome == "deferred"
            assert len(rsps.calls) == settings.ACME_RETRY_MAX  # its own five failures opened the breaker

        proposal.refresh_from_db()
        assert proposal.status == Status.APPROVED  # waiting, not dead-lettered
        assert "circuit breaker is open" in proposal.status_reason
        assert proposal.commit_attempts == 5
        later = OutboxMessage.objects.order_by("-id").first()
        assert later is not None and later.dispatched_at is None
        assert later.available_at.timestamp() == pytest.approx(
            time.time() + settings.ACME_BREAKER_COOLDOWN, abs=5
        )
        assert AuditEvent.objects.filter(action="proposal.commit_deferred", data__attempts=5).count() == 1

        # Once the downstream is back (the breaker closed), the same approval commits, with the same key.
        from adapters import breaker

        breaker.reset("crm")
        Proposal.objects.filter(pk=proposal.pk).update(next_attempt_at=timezone.now())
        with responses.RequestsMock() as rsps:
            created(rsps)
            assert services.proposal_commit(proposal_id=proposal.pk).outcome == "committed"
            assert rsps.calls[0].request.headers["Idempotency-Key"] == f"acme-proposal-{proposal.pk}"
        assert Proposal.objects.get(pk=proposal.pk).commit_attempts == 6

    def test_a_commit_past_its_attempt_budget_is_dead_lettered_even_with_the_breaker_open(
        self, acme, settings, fast_retries, sleeps
    ):
        settings.ACME_COMMIT_MAX_ATTEMPTS = 5
        proposal = approved(acme)

        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, TICKETS_URL, status=503)
            assert services.proposal_commit(proposal_id=proposal.pk).outcome == "failed"

        proposal.refresh_from_db()
        assert (proposal.status, proposal.commit_attempts) == (Status.FAILED, 5)

    def test_a_transient_failure_with_the_breaker_closed_is_dead_lettered(self, acme, settings, sleeps):
        settings.ACME_BREAKER_FAILURES = 50  # these failures do not open it
        proposal = approved(acme)

        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, TICKETS_URL, status=503)
            assert services.proposal_commit(proposal_id=proposal.pk).outcome == "failed"

        assert Proposal.objects.get(pk=proposal.pk).status == Status.FAILED

    def test_a_stale_target_is_not_overwritten(self, acme, monkeypatch):
        proposal = approved(acme)

        def stale(*args, **kwargs):
            raise adapter_errors.StaleTarget("ticket 5 changed since the preview")

        monkeypatch.setattr(registry, "execute", stale)

        assert services.proposal_commit(proposal_id=proposal.pk).outcome == "stale"
        assert Proposal.objects.get(pk=proposal.pk).status == Status.STALE

    def test_a_live_lease_keeps_other_workers_out_and_an_expired_one_is_taken_over(self, acme):
        proposal = approved(acme)
        Proposal.objects.filter(pk=proposal.pk).update(
            status=Status.COMMITTING, lease_until=timezone.now() + timedelta(seconds=60)
        )

        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            created(rsps, 9)
            assert services.proposal_commit(proposal_id=proposal.pk).outcome == "noop"
            assert len(rsps.calls) == 0
            Proposal.objects.filter(pk=proposal.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
            assert services.commits_redispatch() == 1
            assert services.proposal_commit(proposal_id=proposal.pk).outcome == "committed"
            assert rsps.calls[0].request.headers["Idempotency-Key"] == f"acme-proposal-{proposal.pk}"

        assert AuditEvent.objects.filter(action="proposal.commit_started", data__resumed=True).count() == 1


@pytest.mark.django_db
class TestTransitions:
    def test_illegal_transitions_raise_invalid_transition(self, acme):
        proposal = pending(acme)
        services.proposal_reject(proposal=proposal, reviewer=acme.reviewer, reason="no", where=API)

        with pytest.raises(errors.InvalidTransition):
            services.proposal_approve(proposal=proposal, reviewer=acme.reviewer, where=API)
        with pytest.raises(errors.InvalidTransition):
            services.proposal_cancel(proposal=proposal, agent=acme.agent, where=API)

    def test_approving_an_expired_proposal_expires_it(self, acme):
        proposal = pending(acme)
        Proposal.objects.filter(pk=proposal.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

        with pytest.raises(errors.InvalidTransition):
            services.proposal_approve(proposal=proposal, reviewer=acme.reviewer, where=API)

        assert Proposal.objects.get(pk=proposal.pk).status == Status.EXPIRED

    def test_the_database_refuses_an_unknown_status(self, acme):
        from django.db import IntegrityError, transaction

        proposal = pending(acme)
        with pytest.raises(IntegrityError), transaction.atomic():
            Proposal.objects.filter(pk=proposal.pk).update(status="teleported")

    def test_approval_stages_the_commit_in_the_outbox(self, acme):
        proposal = approved(acme)

        message = OutboxMessage.objects.get()
        assert message.payload == {"proposal_id": str(proposal.pk)}
        assert message.dispatched_at is None  # the hand-off waits for the transaction to commit

    def test_the_hand_off_after_commit_enqueues_once_and_marks_the_row(
        self, acme, monkeypatch, django_capture_on_commit_callbacks
    ):
        from approvals import queues

        enqueued = []
        monkeypatch.setattr(queues, "enqueue_commit", lambda pk: enqueued.append(pk))
        with django_capture_on_commit_callbacks(execute=True):
            proposal = approved(acme)

        assert enqueued == [str(proposal.pk)]
        message = OutboxMessage.objects.get()
        assert message.dispatched_at is not None and message.attempts == 1
        assert outbox.drain() == 0  # nothing left for the housekeeping pass
        assert enqueued == [str(proposal.pk)]

    def test_a_drain_that_got_the_row_first_leaves_the_hand_off_nothing_to_do(
        self, acme, monkeypatch, django_capture_on_commit_callbacks
    ):
        from approvals import queues

        enqueued = []
        monkeypatch.setattr(queues, "enqueue_commit", lambda pk: enqueued.append(pk))
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            proposal = approved(acme)
        assert outbox.drain() == 1  # the housekeeping pass runs between the commit and the hand-off

        for callback in callbacks:
            callback()

        assert enqueued == [str(proposal.pk)]  # handed off once, by the drain
        assert OutboxMessage.objects.get().attempts == 1

    def test_a_failed_hand_off_after_commit_leaves_the_row_for_the_drain(
        self, acme, monkeypatch, django_capture_on_commit_callbacks
    ):
        import redis

        from approvals import queues

        def down(*args, **kwargs):
            raise redis.ConnectionError("down")

        monkeypatch.setattr(queues, "enqueue_commit", down)
        with django_capture_on_commit_callbacks(execute=True):
            proposal = approved(acme)  # the approval itself stands

        assert Proposal.objects.get(pk=proposal.pk).status == Status.APPROVED
        message = OutboxMessage.objects.get()
        assert message.dispatched_at is None and message.attempts == 1 and "down" in message.last_error
        enqueued = []
        monkeypatch.setattr(queues, "enqueue_commit", lambda pk: enqueued.append(pk))
        assert outbox.drain() == 1
        assert enqueued == [str(proposal.pk)]
        assert OutboxMessage.objects.get().dispatched_at is not None

    def test_outbox_keeps_messages_while_redis_is_down(self, acme, monkeypatch):
        approved(acme)
        from approvals import queues

        def down(*args, **kwargs):
            import redis

            raise redis.ConnectionError("down")

        monkeypatch.setattr(queues, "enqueue_commit", down)
        assert outbox.drain() == 0
        message = OutboxMessage.objects.get()
        assert message.dispatched_at is None and "down" in message.last_error

        monkeypatch.undo()
        with responses.RequestsMock() as rsps:
            created(rsps)
            assert outbox.drain() == 1
        assert OutboxMessage.objects.get().dispatched_at is not None

    def test_the_audit_trail_of_one_life(self, acme):
        proposal = approved(acme)
        with responses.RequestsMock() as rsps:
            created(rsps)
            services.proposal_commit(proposal_id=proposal.pk)

        events = list(AuditEvent.objects.filter(subject_id=str(proposal.pk)).order_by("id"))
        assert [e.action for e in events] == [
            "proposal.submitted",
            "proposal.approved",
            "proposal.commit_started",
            "outbound.call",
            "proposal.committed",
        ]
        assert [e.actor_type for e in events] == ["agent", "user", "system", "system", "system"]
        assert [e.channel for e in events] == ["api", "api", "worker", "worker", "worker"]
        decision = proposal.decisions.get()
        assert all(e.decision_id == str(decision.pk) for e in events[1:])
        assert {e.args_hash for e in events} == {proposal.args_hash}


@pytest.mark.django_db
def test_a_commit_waiting_in_the_queue_is_not_enqueued_twice(acme, settings):
    import django_rq

    from approvals import queues

    settings.RQ_QUEUES = {name: {**conf, "ASYNC": True} for name, conf in settings.RQ_QUEUES.items()}
    queue = django_rq.get_queue(queues.COMMIT_QUEUE)
    proposal_id = "11111111-2222-3333-4444-555555555555"
    try:
        assert queues.enqueue_commit(proposal_id) is True
        assert queues.enqueue_commit(proposal_id) is False  # still queued: a re-dispatch adds nothing
        assert queue.job_ids.count(f"commit-{proposal_id}") == 1
    finally:
        queue.remove(f"commit-{proposal_id}")
        queue.connection.delete(f"rq:job:commit-{proposal_id}")


def test_hand_offs_reuse_the_process_redis_client_instead_of_connecting_each_time():
    from approvals import queues

    first, again = queues.get_queue(queues.COMMIT_QUEUE), queues.get_queue(queues.COMMIT_QUEUE)

    assert first.connection is again.connection  # one pool: no new TCP connection and handshake per hand-off
    assert queues.get_queue(queues.WEBHOOK_QUEUE).connection is first.connection  # same URL, same pool


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_proposal_under_its_lock_leaves_its_tenant_and_agent_free(acme):
    """While a decision or a commit holds a proposal's row lock, the tenant's submissions (whose foreign-key
    check takes FOR KEY SHARE on the tenant row) and the agent's token bookkeeping go on; the proposal alone
    is held."""
    import psycopg
    from django.db import connection, transaction

    proposal = pending(acme)
    db = connection.settings_dict
    with psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"] or None,
        host=db["HOST"],
        port=db["PORT"] or 5432,
        autocommit=True,
    ) as other:
        other.execute("SET lock_timeout = '1s'")
        with transaction.atomic():
            services._locked(proposal.pk)
            other.execute("SELECT 1 FROM approvals_tenant WHERE id = %s FOR KEY SHARE", [acme.tenant.pk])
            other.execute(
                "UPDATE approvals_agentcredential SET last_used_at = now() WHERE id = %s", [acme.agent.pk]
            )
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("SELECT 1 FROM approvals_proposal WHERE id = %s FOR UPDATE", [proposal.pk])


@pytest.mark.django_db(transaction=True)
def test_a_commits_hand_off_mark_is_not_waited_for_on_disk_but_a_reminders_is(acme, monkeypatch):
    """The outbox's mark on a commit (whose job claims its proposal under a lock, so a second hand-off after
    a crash is harmless) is committed without waiting for the disk on PostgreSQL; the mark on a Slack call,
    which a second hand-off would send twice, is flushed."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from approvals import queues

    monkeypatch.setattr(queues, "enqueue_commit", lambda pk: True)
    monkeypatch.setattr(queues, "enqueue_slack", lambda pk: True)
    with CaptureQueriesContext(connection) as marks, transaction.atomic():
        commit = outbox.stage(OutboxMessage.Kind.COMMIT, {"proposal_id": "x"})
        slack = outbox.stage(OutboxMessage.Kind.SLACK, {"op": "ephemeral"})
    # (the hand-offs, and their marks, ran right after the COMMIT)

    relaxed = [q["sql"] for q in marks.captured_queries if "synchronous_commit" in q["sql"]]
    assert len(relaxed) == (1 if connection.vendor == "postgresql" else 0)
    commit.refresh_from_db()
    slack.refresh_from_db()
    assert commit.dispatched_at is not None and commit.attempts == 1
    assert slack.dispatched_at is not None and slack.attempts == 1
