"""Commit: claim an approved proposal under a lease (``services.claim``; renewed while it runs, fenced by a
token: ``services.lease``), send it once (an idempotency key towards the outside system), wait out an open
breaker within a budget of attempts, record the outcome if the claim still owns it; re-stage lost commits."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db import connection as db_connection
from django.utils import timezone

from adapters import breaker, connections, http, registry
from adapters import errors as adapter_errors
from approvals import lifecycle, outbox
from approvals.models import (
    Decision,
    Proposal,
    Receipt,
    Status,
)
from approvals.services import lease
from approvals.services.base import _locked
from approvals.services.claim import _claim
from approvals.services.sagas import SagaFailed, _run_steps
from audit import services as audit
from audit.prepared_writes import PreparedInsert

logger = logging.getLogger(__name__)
_RECEIPT = PreparedInsert(Receipt)  # compiled once (audit.prepared)
# A commit that met Redis unavailable (breaker or rate-limit state) is tried again this many seconds later.
REDIS_RETRY_SECONDS = 5


@dataclass(frozen=True)
class CommitResult:
    outcome: str  # "committed" | "noop" | "deferred" | "stale" | "failed"
    proposal_id: str


def commit_budget() -> float:
    """Seconds a commit's outside calls may take in all (``ACME_COMMIT_BUDGET``). The lease no longer bounds
    them: the heartbeat renews it for as long as the commit runs, and a worker that stalls past it is fenced
    off (``services.lease``). The bound that remains is the RQ job timeout, which would kill the job with
    its outcome unrecorded: the budget stays well inside it, and each call within its own retry schedule."""
    return float(settings.ACME_COMMIT_BUDGET)


def proposal_commit(*, proposal_id: Any) -> CommitResult:
    """Commit an approved proposal exactly once. Safe to run twice, concurrently, or after a crash."""
    claimed = _claim(proposal_id)
    if claimed is None:
        return CommitResult("noop", str(proposal_id))
    proposal, decision, resumed = claimed
    token = proposal.lease_token
    try:
        # The heartbeat keeps the lease while the calls run; the calls end within the commit's budget, and
        # a wait the server asks for that the budget cannot cover is a deferral, not a failure.
        with lease.heartbeat(proposal.pk, token), http.deadline(commit_budget()):
            if registry.get(proposal.tool).steps:
                outcome = _run_steps(proposal)
            else:
                outcome = registry.execute(
                    proposal.tool,
                    proposal.args,
                    idempotency_key=proposal.crm_idempotency_key,
                    tenant=proposal.tenant.slug,
                    snapshot=(proposal.preview or {}).get("snapshot") or {},
                    resumed=resumed,
                )
    except SagaFailed as failed:
        return _finish_unsuccessful(proposal, decision, token, Status.FAILED, str(failed), attempts=1)
    except adapter_errors.Deferred as deferred:
        # Attempts sent before the wait count towards the budget, and make the next run a resumed one.
        return _finish_deferred(proposal, decision, token, deferred, attempts=deferred.attempts)
    except adapter_errors.StaleTarget as stale:
        return _finish_unsuccessful(proposal, decision, token, Status.STALE, str(stale), attempts=1)
    except adapter_errors.TransientFailure as failure:
        waited = _wait_for_breaker(proposal, failure)
        if waited is not None:
            return _finish_deferred(proposal, decision, token, waited, attempts=failure.attempts)
        return _finish_unsuccessful(
            proposal, decision, token, Status.FAILED, str(failure), attempts=failure.attempts
        )
    except adapter_errors.PermanentFailure as failure:
        return _finish_unsuccessful(
            proposal,
            decision,
            token,
            Status.FAILED,
            str(failure),
            attempts=failure.attempts,
            permanent=True,
        )
    except redis.RedisError as exc:
        # Our own shared state (breaker, rate limits) was unreachable, perhaps after the outside call went
        # through: nothing says the call was refused. Retry later with the same idempotency key (which never
        # doubles a write) instead of dead-lettering an approval that may already be done.
        logger.warning(
            "commit of %s met Redis unavailable (%s); retrying later", proposal.pk, type(exc).__name__
        )
        return _finish_deferred(
            proposal,
            decision,
            token,
            adapter_errors.Deferred(reason="redis_unavailable", retry_at=time.time() + REDIS_RETRY_SECONDS),
        )
    except (OperationalError, InterfaceError) as exc:
        if not _connection_lost(exc) or registry.get(proposal.tool).steps:
            # A statement that failed on a live connection (a timeout, a lock) is an error like any other. A
            # multi-step tool's steps are not told they resume (sagas.run_step), so a retried step could post
            # to Slack again: it fails as before, for an admin to check and requeue.
            logger.exception("commit of %s crashed", proposal.pk)
            return _finish_unsuccessful(
                proposal,
                decision,
                token,
                Status.FAILED,
                f"Internal error ({type(exc).__name__}).",
                attempts=1,
            )
        # Our own database connection went away during the calls (perhaps after the write went through, while
        # its record was being kept): like Redis above, nothing says the write was refused. Retry later with
        # the same idempotency key, counted as an attempt so that the retry runs as a resumed one (a Slack
        # post is looked for before it is sent again); if the database is still down, finishing fails too
        # and the lease hands the commit to the next worker.
        logger.warning("commit of %s lost its database (%s); retrying later", proposal.pk, type(exc).__name__)
        return _finish_deferred(
            proposal,
            decision,
            token,
            adapter_errors.Deferred(
                reason="database_unavailable", retry_at=time.time() + REDIS_RETRY_SECONDS
            ),
            attempts=1,
        )
    except Exception as exc:  # an unexpected error must not leave the proposal looking in progress
        logger.exception("commit of %s crashed", proposal.pk)
        return _finish_unsuccessful(
            proposal, decision, token, Status.FAILED, f"Internal error ({type(exc).__name__}).", attempts=1
        )
    with transaction.atomic():
        locked = _locked(proposal.pk)
        if not lease.fenced(locked, token):
            # Taken over while this worker stalled past its lease: the claim that owns it now records the
            # outcome (its retry replays the same write, never a second one); this one is only audited.
            lease.discard(
                locked,
                token,
                outcome="committed",
                data={"system": outcome.system, "external_id": outcome.external_id},
            )
            return CommitResult("noop", str(proposal.pk))
        _RECEIPT.insert(
            Receipt(
                proposal=locked,
                system=outcome.system,
                external_id=outcome.external_id,
                external_url=outcome.url,
                response_summary={**outcome.summary, "reconciled": True}
                if outcome.reconciled
                else outcome.summary,
                attempts=outcome.attempts,
                args_hash=locked.args_hash,
            )
        )
        locked.lease_until = None
        locked.commit_attempts += outcome.attempts
        lifecycle.transition(
            locked,
            "commit",
            actor=audit.SYSTEM,
            where=audit.WORKER,
            decision=decision,
            data={"system": outcome.system, "external_id": outcome.external_id},
            outbound={
                "system": outcome.system,
                "attempts": outcome.attempts,
                "external_id": outcome.external_id,
                "reconciled": outcome.reconciled,
            },
            fields=["lease_until", "commit_attempts"],
        )
    return CommitResult("committed", str(proposal.pk))


# SQLSTATEs of a server that ended the session: admin_shutdown, crash_shutdown, cannot_connect_now; and every
# "connection exception" (class 08).
_SESSION_ENDED = ("57P01", "57P02", "57P03")


def _connection_lost(exc: Exception) -> bool:
    """Whether ``exc`` says the database connection itself was lost (PostgreSQL: the server ended the session,
    or the driver lost it without an answer), not that a statement failed on a live one (a timeout, a lock,
    a constraint). Asking the connection afterwards says nothing: Django has opened a new one by then."""
    if db_connection.vendor != "postgresql":
        return False  # SQLite's errors (e.g. "database is locked") are statements failing, not a lost server
    if isinstance(exc, InterfaceError):
        return True
    state = getattr(exc.__cause__, "sqlstate", None)
    return state is None or state.startswith("08") or state in _SESSION_ENDED


def _wait_for_breaker(
    proposal: Proposal, failure: adapter_errors.TransientFailure
) -> adapter_errors.Deferred | None:
    """A commit whose retries ran out while its downstream's breaker opened (its own failures may have
    tripped it) met an outage, like the commits that will find the breaker open after it: it waits for
    the breaker too, instead of being the one dead letter of the outage. Within a budget of attempts
    (``ACME_COMMIT_MAX_ATTEMPTS``), so a downstream that never recovers still ends in the dead letters."""
    if proposal.commit_attempts + failure.attempts >= settings.ACME_COMMIT_MAX_ATTEMPTS:
        return None
    try:
        # The breaker of the proposal's tenant's connection (its own CRM has its own breaker).
        if (
            breaker.state(connections.breaker_key(proposal.tenant.slug, registry.get(proposal.tool).system))
            != "open"
        ):
            return None
    except redis.RedisError:
        return None
    # The breaker half-opens within a cooldown of now; a retry that comes too early is deferred again.
    return adapter_errors.Deferred(
        reason="breaker_open", retry_at=time.time() + float(settings.ACME_BREAKER_COOLDOWN)
    )


def _finish_deferred(
    proposal: Proposal,
    decision: Decision,
    token: int,
    deferred: adapter_errors.Deferred,
    *,
    attempts: int = 0,
) -> CommitResult:
    """An open breaker or a rate limit: not a failure; back to approved, retried when it may pass.
    ``attempts``: outbound attempts this run spent before it had to wait (they count towards the budget)."""
    retry_at = datetime.fromtimestamp(deferred.retry_at, tz=timezone.get_current_timezone())
    with transaction.atomic():
        locked = _locked(proposal.pk)
        if not lease.fenced(locked, token):
            lease.discard(locked, token, outcome="deferred", data={"reason": deferred.reason})
            return CommitResult("noop", str(proposal.pk))
        locked.lease_until = None
        locked.next_attempt_at = retry_at
        locked.commit_attempts += attempts
        lifecycle.transition(
            locked,
            "defer",
            actor=audit.SYSTEM,
            where=audit.WORKER,
            decision=decision,
            data={"reason": deferred.reason, "attempts": attempts},
            reason=lifecycle.waiting_reason(
                deferred.reason, system=registry.get(locked.tool).system, at=retry_at
            ),
            fields=["lease_until", "next_attempt_at", "commit_attempts"],
            commit_at=retry_at,
        )
    return CommitResult("deferred", str(proposal.pk))


def _finish_unsuccessful(
    proposal: Proposal,
    decision: Decision,
    token: int,
    status: Status,
    reason: str,
    *,
    attempts: int,
    permanent: bool = False,
) -> CommitResult:
    """``permanent``: the outside system refused the request itself (a 4xx): sent again, it fails again; the
    audit's ``outbound.call`` says so, and the reviewer's page offers no requeue."""
    with transaction.atomic():
        locked = _locked(proposal.pk)
        if not lease.fenced(locked, token):
            lease.discard(locked, token, outcome=str(status), data={"error": reason[:500]})
            return CommitResult("noop", str(proposal.pk))
        locked.lease_until = None
        locked.commit_attempts += attempts
        lifecycle.transition(
            locked,
            "go_stale" if status == Status.STALE else "fail",
            actor=audit.SYSTEM,
            where=audit.WORKER,
            decision=decision,
            reason=reason[:2000],
            outbound={
                "attempts": attempts,
                "error": reason[:500],
                **({"permanent": True} if permanent else {}),
            },
            fields=["lease_until", "commit_attempts"],
        )
    return CommitResult(str(status), str(proposal.pk))


def commits_redispatch(*, now: datetime | None = None, grace: int = 30, limit: int = 200) -> int:
    """Re-stage commits that should be running but are not: a lease that ran out (the worker died) or an
    approval whose job was lost (e.g. Redis restarted without persistence). The claim makes repeats harmless."""
    now = now or timezone.now()
    expired_leases = Proposal.objects.filter(status=Status.COMMITTING, lease_until__lt=now)
    lost = Proposal.objects.filter(status=Status.APPROVED, next_attempt_at__lt=now - timedelta(seconds=grace))
    ids = list(expired_leases.values_list("pk", flat=True)[:limit]) + list(
        lost.values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        with transaction.atomic():
            locked = _locked(pk)
            if locked.status == Status.APPROVED:
                # Push the next look further out so a slow queue is not flooded with duplicates.
                locked.next_attempt_at = now
                locked.save(update_fields=["next_attempt_at", "updated_at"])
            outbox.stage_commit(locked.pk)
    return len(ids)
