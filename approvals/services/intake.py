"""Intake limits: the per-agent submission budget, and backpressure on low-priority tools while commits back up.

"Rate limit" names four different things in this codebase; this module is the third:

* ``adapters.ratelimit`` -- outbound: token buckets on the calls a *commit* (or a read) makes to an outside
  system (per tool, tenant, channel); over it the call is ``Deferred`` and rescheduled, nothing refused;
* ``adapters.policy`` ``max_per_hour`` -- a tenant's *policy*: proposals per agent per tool in a sliding
  hour; over it ``RateLimited`` (429 ``rate_limited``, check ``max_per_hour``);
* ``approvals.services.intake`` -- the *submission budget*: submissions per agent, whatever the tool;
  over it 429 ``rate_limited`` (policy ``submission_budget``); and backpressure (429 ``backpressure``);
* ``adapters.preview_reads`` -- the *preview-read budget*: live reads a preview makes, per agent and per
  connection; over it 429 ``rate_limited`` (policy ``preview_reads``).

(The reviewers' login throttle, ``approvals.login_throttle``, is a fifth, and says "throttle".)
"""

from __future__ import annotations

import logging

import redis
from django.conf import settings
from django.utils import timezone

from adapters import errors as adapter_errors
from adapters import ratelimit
from adapters.http import retry_after_seconds
from approvals import queues
from approvals.models import AgentCredential, OutboxMessage

logger = logging.getLogger(__name__)


SUBMISSION_BUDGET = "submissions"
SUBMISSIONS_EXCEEDED = (
    "Too many submissions from this agent ({burst} at once, then {rate:g} a second, refused ones included); "
    "try again in {retry_after} seconds."
)


def _take_submission(agent: AgentCredential) -> None:
    """Every submission costs its agent a token, before any work is done on its body, and whether it is then
    accepted, replayed or refused: a refusal (a 256 KB body of tags, a policy denial) is bounded work, but
    unbounded in number it is not. A token bucket in Redis (adapters.ratelimit), shared by every process.
    Redis unreachable: the submission goes on (intake must not stop with the budget's store; the contract
    and the hourly policy still hold), and the outage is logged."""
    rate, burst = float(settings.ACME_SUBMIT_RATE), int(settings.ACME_SUBMIT_BURST)
    try:
        wait = ratelimit.acquire(f"submit:agent:{agent.pk}", rate, burst)
    except redis.RedisError:
        logger.warning("submission budget unavailable (Redis); submission of agent %s not counted", agent.pk)
        return
    if wait > 0:
        retry_after = retry_after_seconds(wait)
        raise adapter_errors.RateLimited(
            policy=SUBMISSION_BUDGET,
            check=SUBMISSION_BUDGET,
            retry_after=retry_after,
            detail=SUBMISSIONS_EXCEEDED.format(burst=burst, rate=rate, retry_after=retry_after),
        )


def commit_backlog() -> int:
    """Commits waiting: the RQ queue's length, plus outbox rows not yet handed off (Redis may be down)."""
    waiting = OutboxMessage.objects.filter(
        kind=OutboxMessage.Kind.COMMIT, dispatched_at__isnull=True, available_at__lte=timezone.now()
    ).count()
    try:
        waiting += queues.commit_queue_depth()
    except Exception:  # Redis unreachable: the outbox count stands alone
        logger.warning("commit queue depth unavailable")
    return waiting


def intake_allowed(*, tool: str) -> float | None:
    """None when a submission may proceed; else the seconds to wait (low-priority tools under backpressure)."""
    if tool not in settings.ACME_LOW_PRIORITY_TOOLS:
        return None
    if commit_backlog() <= settings.ACME_BACKPRESSURE_DEPTH:
        return None
    return float(settings.ACME_BACKPRESSURE_RETRY_AFTER)
