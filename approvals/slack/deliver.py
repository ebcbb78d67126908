"""The worker's side of the Slack outbox messages (``approvals.jobs.send_slack``).

``sync`` posts a proposal's message once and updates it afterwards. The ``SlackPost`` row is locked while
Slack is called and its ``ts`` saved in the same transaction: a repeated or concurrent sync (a re-dispatch,
a double click's two decisions racing) waits, then finds the ``ts`` and updates instead of posting again.
The lock is held across the call on purpose, bounded by ``CALL_BUDGET`` seconds: a second post is worse
than a sync that waits. A failure that may heal is retried later with exponential backoff (a new outbox
message due then); the post's state and last error are what the admin shows.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from adapters import connections, http
from adapters.errors import Deferred, DownstreamError, TransientFailure
from adapters.slack import messages, web
from approvals import outbox
from approvals.models import OutboxMessage, SlackPost, Status
from approvals.slack import blocks

logger = logging.getLogger(__name__)

CALL_BUDGET = 10.0  # seconds for one Slack call, its retries included
MAX_ATTEMPTS = 8  # syncs of one post before it is marked failed
BACKOFF_BASE = 5.0  # seconds; doubles per attempt
BACKOFF_CAP = 600.0


def find_tagged(
    conn: connections.Resolved, channel: str, key: str, *, oldest: float
) -> tuple[str, str] | None:
    """The (channel id, ts) of a message in ``channel`` posted since ``oldest`` whose metadata carries
    ``key`` (``tag(key)``), or None; raises TransientFailure when the history cannot be read. The commit
    path's look-up for a post whose answer was lost (``adapters.slack.messages.find``)."""
    channel_id = messages._channel_id(conn, channel)  # its resolver of '#name' to the id history takes
    ts = messages.find(conn, channel_id, key, oldest=oldest)
    return (channel_id, ts) if ts else None


def tag(key: str) -> dict[str, Any]:
    """Slack message metadata naming ``key``: a post found again by ``find_tagged``."""
    return {"event_type": messages.METADATA_EVENT, "event_payload": {"key": key}}


def post_key(proposal_id: Any) -> str:
    """The tag of a proposal's review message in its channel's history."""
    return f"acme-review-{proposal_id}"


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, attempts - 1)))


def send(outbox_id: int) -> str:
    message = OutboxMessage.objects.filter(pk=outbox_id).first()
    if message is None:
        return "gone"
    payload: dict[str, Any] = message.payload
    op = payload.get("op")
    if op == "sync":
        return sync(payload["proposal_id"])
    if op == "reminder":
        return remind(payload)
    conn = connections.resolve(payload["tenant"], "slack")
    try:
        with http.deadline(CALL_BUDGET):
            if op == "ephemeral":
                web.call(
                    conn,
                    "chat.postEphemeral",
                    {"channel": payload["channel"], "user": payload["user"], "text": payload["text"]},
                )
            else:
                return "unknown"
    except DownstreamError as exc:
        logger.warning("slack %s failed: %s", op, getattr(exc, "detail", str(exc)))
        return "failed"
    return "sent"


def remind(payload: dict[str, Any]) -> str:
    """Reply in the proposal's message thread that it still waits (``notify.stage_reminder``). Retried with
    backoff while it may heal and the message is not posted yet; nothing once the proposal is decided."""
    post = (
        SlackPost.objects.select_related("proposal__tenant")
        .filter(proposal_id=payload["proposal_id"])
        .first()
    )
    if post is None or post.proposal.status != Status.PENDING:
        return "none"
    attempts = int(payload.get("attempts") or 0) + 1
    conn = connections.resolve(post.proposal.tenant.slug, "slack")
    try:
        if not post.ts:
            raise TransientFailure(detail="the review message is not posted yet", attempts=0)
        with http.deadline(CALL_BUDGET):
            web.call(
                conn,
                "chat.postMessage",
                {"channel": post.channel, "thread_ts": post.ts, "text": blocks.reminder_text(post.proposal)},
            )
    except DownstreamError as exc:
        if attempts < MAX_ATTEMPTS and isinstance(exc, (TransientFailure, Deferred)):
            outbox.stage(
                OutboxMessage.Kind.SLACK,
                {**payload, "attempts": attempts},
                available_at=timezone.now() + backoff(attempts),
            )
            return "retry"
        logger.warning("slack reminder failed: %s", getattr(exc, "detail", str(exc)))
        return "failed"
    return "sent"


def sync(proposal_id: str) -> str:
    """Post the proposal's message, or update it to the proposal's current state; idempotent.

    A post is counted (``attempts``) in its own transaction before it is sent: after an attempt whose
    answer was lost (a timeout, a 5xx, a worker that died mid-call) the next one first looks for the
    message in the channel's history by the tag every post carries (``web.tag``) and adopts it instead of
    posting a second one."""
    SlackPost.objects.filter(proposal_id=proposal_id, ts="").update(attempts=F("attempts") + 1)
    with transaction.atomic():
        post = (
            SlackPost.objects.select_for_update()
            .select_related("proposal__tenant", "proposal__agent")
            .filter(proposal_id=proposal_id)
            .first()
        )
        if post is None:
            return "none"
        proposal = post.proposal
        shown = blocks.shown_state(proposal)
        if post.ts and post.shown == shown:
            return "unchanged"
        conn = connections.resolve(proposal.tenant.slug, "slack")
        text, body = blocks.message(proposal)
        try:
            with http.deadline(CALL_BUDGET):
                if not post.ts and post.attempts > 1:
                    found = find_tagged(
                        conn, post.channel, post_key(proposal.pk), oldest=post.created_at.timestamp() - 120
                    )
                    if found is not None:
                        post.channel, post.ts = found
                if post.ts:
                    web.call(
                        conn,
                        "chat.update",
                        {"channel": post.channel, "ts": post.ts, "text": text, "blocks": body},
                    )
                else:
                    answer = web.call(
                        conn,
                        "chat.postMessage",
                        {
                            "channel": post.channel,
                            "text": text,
                            "blocks": body,
                            "metadata": tag(post_key(proposal.pk)),
                        },
                    )
                    post.ts = answer.ts or ""
                    post.channel = answer.channel or post.channel
        except DownstreamError as exc:
            if post.ts:
                post.attempts += 1  # an update's failure (a post was counted before it was sent)
            post.last_error = str(getattr(exc, "detail", "") or exc)[:1000]
            # What may heal (timeouts, 5xx, an open breaker, a rate limit) is retried; a refusal
            # (channel_not_found, invalid_auth...) is not, until the connection is fixed.
            retry = post.attempts < MAX_ATTEMPTS and isinstance(exc, (TransientFailure, Deferred))
            if retry:
                outbox.stage(
                    OutboxMessage.Kind.SLACK,
                    {"op": "sync", "tenant": proposal.tenant.slug, "proposal_id": str(proposal.pk)},
                    available_at=timezone.now() + backoff(post.attempts),
                )
            elif not post.ts:
                post.state = SlackPost.State.FAILED
            post.save(update_fields=["attempts", "last_error", "state", "updated_at"])
            return "retry" if retry else "failed"
        post.state = SlackPost.State.POSTED
        post.shown = shown
        post.last_error = ""
        post.save()
        return "posted"
