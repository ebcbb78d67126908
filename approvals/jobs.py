"""RQ jobs: thin. They take an id, and call one service.

They are handed off by ``approvals.queues`` (through the outbox), which names them by import path.
"""

from __future__ import annotations

from approvals import notifications, webhooks
from approvals.services import proposal_commit
from approvals.slack import deliver as slack_deliver


def commit_proposal(proposal_id: str) -> str:
    return proposal_commit(proposal_id=proposal_id).outcome


def deliver_webhook(delivery_id: str) -> str:
    return webhooks.deliver(delivery_id)


def send_reviewer_email(email_id: str) -> str:
    return notifications.email_send(email_id=int(email_id))


def send_slack(outbox_id: str) -> str:
    return slack_deliver.send(int(outbox_id))
