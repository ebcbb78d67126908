"""RQ jobs: thin. They take an id, and call one service."""

from __future__ import annotations

import django_rq

COMMIT_QUEUE = "commits"


def commit_proposal(proposal_id: str) -> str:
    from approvals.services import proposal_commit

    return proposal_commit(proposal_id=proposal_id).outcome


def enqueue_commit(proposal_id: str, *, message_id: int) -> None:
    queue = django_rq.get_queue(COMMIT_QUEUE)
    # One job id per outbox message: a re-dispatched message replaces its own job instead of adding one.
    queue.enqueue(
        commit_proposal,
        proposal_id,
        job_id=f"commit-{proposal_id}-{message_id}",
        result_ttl=3600,
        failure_ttl=7 * 86400,
        description=f"commit proposal {proposal_id}",
    )


def deliver_webhook(delivery_id: str) -> str:
    from approvals.webhooks import deliver

    return deliver(delivery_id)


def enqueue_webhook(delivery_id: str, *, message_id: int) -> None:
    django_rq.get_queue("default").enqueue(
        deliver_webhook,
        delivery_id,
        job_id=f"webhook-{delivery_id}-{message_id}",
        result_ttl=3600,
        description=f"deliver webhook {delivery_id}",
    )


def commit_queue_depth() -> int:
    return int(django_rq.get_queue(COMMIT_QUEUE).count)
