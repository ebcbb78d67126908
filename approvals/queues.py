"""Queue access: the RQ queues and the hand-off of one job per subject.

One job id per subject (``commit-<proposal>``, ``webhook-<delivery>``): a hand-off for a subject whose job
is still waiting in the queue adds nothing, so re-dispatches (a lost job, a slow queue) never pile up
duplicates. A job that already started or finished is replaced: the services themselves make a repeat
harmless (the commit claims its proposal under a lock; a delivery is sent only while pending).

The jobs are named by their import path (``approvals.jobs.*``), which RQ resolves in the worker: handing
off a commit needs no import of the code that runs it, so the outbox (which every service uses) does not
depend on the services (which the jobs call).
"""

from __future__ import annotations

from typing import Any

import django_rq
from django_rq.settings import QUEUES
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

from adapters.redis import client_for

COMMIT_QUEUE = "commits"
WEBHOOK_QUEUE = "default"
COMMIT_JOB = "approvals.jobs.commit_proposal"
WEBHOOK_JOB = "approvals.jobs.deliver_webhook"
EMAIL_JOB = "approvals.jobs.send_reviewer_email"
SLACK_JOB = "approvals.jobs.send_slack"


def get_queue(name: str) -> Queue:
    """django-rq's queue ``name`` (RQ_QUEUES), on this process's pooled client for its URL.

    ``django_rq.get_queue`` alone builds a new Redis client on every call: a new pool, so a new TCP
    connection and handshake for each hand-off (one per approval and per committed proposal's webhook),
    which cost more than the enqueue itself."""
    return django_rq.get_queue(name, connection=client_for(QUEUES[name]["URL"]))


def _enqueue_once(queue_name: str, func: str, subject: str, job_id: str, **options: Any) -> bool:
    queue = get_queue(queue_name)
    try:
        if Job.fetch(job_id, connection=queue.connection).get_status() == JobStatus.QUEUED:
            return False
    except NoSuchJobError:
        pass
    queue.enqueue(func, subject, job_id=job_id, **options)
    return True


def enqueue_commit(proposal_id: str) -> bool:
    return _enqueue_once(
        COMMIT_QUEUE,
        COMMIT_JOB,
        proposal_id,
        f"commit-{proposal_id}",
        result_ttl=3600,
        failure_ttl=7 * 86400,
        description=f"commit proposal {proposal_id}",
    )


def enqueue_webhook(delivery_id: str) -> bool:
    return _enqueue_once(
        WEBHOOK_QUEUE,
        WEBHOOK_JOB,
        delivery_id,
        f"webhook-{delivery_id}",
        result_ttl=3600,
        description=f"deliver webhook {delivery_id}",
    )


def enqueue_slack(outbox_id: int) -> bool:
    """A Slack call staged in the outbox (post or update a proposal's message, answer a click)."""
    return _enqueue_once(
        WEBHOOK_QUEUE,
        SLACK_JOB,
        str(outbox_id),
        f"slack-{outbox_id}",
        result_ttl=3600,
        description=f"slack call {outbox_id}",
    )


def enqueue_email(email_id: int) -> bool:
    """A batch of reviewer email (approvals.notifications); its job claims the row, so a repeat is harmless."""
    return _enqueue_once(
        WEBHOOK_QUEUE,
        EMAIL_JOB,
        str(email_id),
        f"email-{email_id}",
        result_ttl=3600,
        description=f"reviewer email {email_id}",
    )


def commit_queue_depth() -> int:
    return int(get_queue(COMMIT_QUEUE).count)
