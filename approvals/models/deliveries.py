"""What goes out and comes in: the outbox, Slack posts, agent webhooks, reviewer emails, inbound events."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from approvals.models.accounts import AgentCredential, Tenant
from approvals.models.proposals import Proposal


class OutboxMessage(models.Model):
    """An event that must leave the database, written in the same transaction as the change.

    The dispatcher hands it to Redis (RQ) and only then marks it dispatched, so an approval made while
    Redis is down is enqueued once Redis is back. Handlers are idempotent, so a hand-off repeated after
    a crash between enqueue and mark does no harm.
    """

    class Kind(models.TextChoices):
        COMMIT = "commit"
        WEBHOOK = "webhook"
        SLACK = "slack"  # a Web API call to a tenant's Slack (approvals.slack.deliver): post, update, modal
        EMAIL = "email"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    available_at = models.DateTimeField(db_index=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["available_at"], condition=Q(dispatched_at__isnull=True), name="outbox_undispatched"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.payload}"


class SlackPost(models.Model):
    """A pending proposal's message in its tenant's Slack review channel: one per proposal.

    ``ts`` is set once ``chat.postMessage`` answered, under this row's lock, so a repeated or concurrent
    post finds it and updates the message instead of posting a second one. ``state`` and ``last_error`` are
    the delivery's state for the admin; ``shown`` is the proposal status the message last showed."""

    class State(models.TextChoices):
        PENDING = "pending"  # staged, not posted yet (or its last attempt failed and a retry is staged)
        POSTED = "posted"
        FAILED = "failed"  # retries ran out

    proposal = models.OneToOneField(Proposal, on_delete=models.CASCADE, related_name="slack_post")
    channel = models.CharField(max_length=100, help_text="The review channel it was (to be) posted to.")
    ts = models.CharField(max_length=32, blank=True, help_text="Slack's id of the message in its channel.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    shown = models.CharField(max_length=32, blank=True, help_text="The status the message last showed.")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["pending", "posted", "failed"]), name="slack_post_state_valid"
            )
        ]

    def __str__(self) -> str:
        return f"slack {self.channel} {self.ts or '-'} ({self.state})"


class WebhookDelivery(models.Model):
    """One event for an agent's callback URL. Its id is the event id the agent deduplicates on."""

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    agent = models.ForeignKey(AgentCredential, on_delete=models.CASCADE, related_name="webhook_deliveries")
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    url = models.URLField(max_length=500)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # When the next attempt is due; a pending delivery long past it lost its job and is staged again.
    next_attempt_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["pending", "delivered", "failed"]), name="webhook_state_valid"
            )
        ]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(state="pending"), name="webhook_pending_due")
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.agent} ({self.state})"


class ReviewerEmail(models.Model):
    """One email to a reviewer (or a tenant's admin) about proposals: new ones (batched: at most one a
    minute per reviewer, listing what arrived), a reminder, an escalation. Staged with the proposal's
    transaction, handed to a worker through the outbox, retried with backoff; its state is what the admin
    shows. ``open``: still collecting proposals until ``send_after``; ``sending``: claimed by one worker (a
    conditional UPDATE, so it is never sent twice)."""

    class Kind(models.TextChoices):
        NEW = "new"
        REMINDER = "reminder"
        ESCALATION = "escalation"

    class State(models.TextChoices):
        OPEN = "open"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="reviewer_emails")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    proposal_ids = models.JSONField(default=list)
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    send_after = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["open", "sending", "sent", "failed"]),
                name="reviewer_email_state_valid",
            )
        ]
        indexes = [models.Index(fields=["user", "kind", "state"], name="reviewer_email_open")]

    def __str__(self) -> str:
        return f"{self.kind} email to {self.user} ({self.state})"


class InboundEvent(models.Model):
    """A signed event received from an outside system (e.g. the CRM's "new urgent ticket"), kept so an agent
    can react to it. ``(source, event_id)`` is unique across tenants: a redelivered event is recorded once,
    and an event replayed into another tenant's URL is never recorded there."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="inbound_events")
    source = models.CharField(max_length=32)
    event_id = models.CharField(max_length=128)
    type = models.CharField(max_length=64, blank=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at"]
        constraints = [
            models.UniqueConstraint(fields=["source", "event_id"], name="inbound_event_once_globally")
        ]
        indexes = [models.Index(fields=["tenant", "-received_at"], name="inbound_tenant_recent")]

    def __str__(self) -> str:
        return f"{self.source}:{self.event_id}"
