"""RQ jobs: thin. They take an id, and call one service.

One job id per subject (``commit-<proposal>``, ``webhook-<delivery>``): a hand-off for a subject whose job
is still waiting in the queue adds nothing, so re-dispatches (a lost job, a slow queue) never pile up
duplicates. A job that already started or finished is replaced: the services themselves make a repeat
harmless (the commit claims its proposal under a lock; a delivery is sent only while pending).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import django_rq
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

COMMIT_QUEUE = "commits"
WEBHOOK_QUEUE = "default"


def commit_proposal(proposal_id: str) -> str:
    from approvals.services import proposal_commit

    return proposal_commit(proposal_id=proposal_id).outcome


def deliver_webhook(delivery_id: str) -> str:
    from approvals.webhooks import deliver

    return deliver(delivery_id)


def _enqueue_once(queue_name: str, func: Callable[[str], Any], subject: str, job_id: str, **options: Any) -> bool:
    queue = django_rq.get_queue(queue_name)
    try:
        if Job.fetch(job_id, connection=queue.connection).get_status() == JobStatus.QUEUED:
            return False
    except NoSuchJobError:
        pass
    queue.enqueue(func, subject, job_id=job_id, **options)
    return True


def enqueue_commit(proposal_id: str) -> bool:
    return _enqueue_once(COMMIT_QUEUE, commit_proposal, proposal_id, f"commit-{proposal_id}",
                         result_ttl=3600, failure_ttl=7 * 86400, description=f"commit proposal {proposal_id}")


def enqueue_webhook(delivery_id: str) -> bool:
    return _enqueue_once(WEBHOOK_QUEUE, deliver_webhook, delivery_id, f"webhook-{delivery_id}",
                         result_ttl=3600, description=f"deliver webhook {delivery_id}")


def commit_queue_depth() -> int:
    return int(django_rq.get_queue(COMMIT_QUEUE).count)
