"""Staging of Slack calls, in the caller's transaction, through the outbox (kind ``slack``).

* ``stage_post(proposal)``: at submission, when the tenant has its own Slack connection with a review
  channel: a ``SlackPost`` row (one per proposal) and a ``sync`` message. Nothing leaves before the
  proposal's transaction commits, and a Slack outage costs intake nothing (the worker sends it, retrying).
* ``stage_sync(proposal)``: after a transition of a proposal that has a message: the worker posts it if it
  is not posted yet, else updates it (``chat.update``) to the proposal's state at that time.
* ``stage_reminder(proposal)``: a reply in the message's thread when the proposal is still pending after
  ``ACME_REMIND_AFTER`` seconds (claimed once with the email reminder, ``approvals.notifications``).
* ``stage_ephemeral``: the answer to a click that decided nothing (the reason), sent by the worker once the
  click's request was answered. The reason modal is not staged: Slack's trigger_id lives 3 seconds, so
  ``approvals.slack.interactions`` opens it inside the click's request.
"""

from __future__ import annotations

from typing import Any

from adapters import connections
from approvals import outbox
from approvals.models import OutboxMessage, Proposal, SlackPost
from audit.prepared import Param, PreparedRead


def _stage(payload: dict[str, Any]) -> OutboxMessage:
    return outbox.stage(OutboxMessage.Kind.SLACK, payload)


def stage_post(proposal: Proposal) -> SlackPost | None:
    channel = connections.slack_review_channel(proposal.tenant.slug)
    if not channel:
        return None
    post = SlackPost.objects.create(proposal=proposal, channel=channel)
    _stage({"op": "sync", "tenant": proposal.tenant.slug, "proposal_id": str(proposal.pk)})
    return post


# Whether a proposal has a Slack message: asked on every status change, compiled once (audit.prepared).
_POSTED = PreparedRead(
    lambda proposal_id: SlackPost.objects.filter(proposal_id=proposal_id).values_list("pk", flat=True)[:1],
    proposal_id=Param.UUID,
)


def stage_sync(proposal: Proposal) -> None:
    if _POSTED.rows(proposal_id=proposal.pk):
        _stage({"op": "sync", "tenant": proposal.tenant.slug, "proposal_id": str(proposal.pk)})


def stage_ephemeral(*, tenant: str, channel: str, user: str, text: str) -> None:
    _stage({"op": "ephemeral", "tenant": tenant, "channel": channel, "user": user, "text": text})


def stage_reminder(proposal: Proposal) -> None:
    """A reminder in the thread of the proposal's message, when it has one (staged once: the caller's claim
    of ``Proposal.reminded_at`` is in the same transaction, so a restart neither loses nor repeats it)."""
    if _POSTED.rows(proposal_id=proposal.pk):
        _stage({"op": "reminder", "tenant": proposal.tenant.slug, "proposal_id": str(proposal.pk)})
