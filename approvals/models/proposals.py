"""What is asked and what became of it: proposals, their statuses, decisions, receipts, saga steps."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from approvals.models.accounts import AgentCredential, Tenant


class Status(models.TextChoices):
    PENDING = "pending"
    APPROVED = "approved"
    COMMITTING = "committing"
    COMMITTED = "committed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FAILED = "failed"
    STALE = "stale"
    # A reviewer asked the agent for a corrected call (final: the agent submits a new one under a new key).
    CHANGES_REQUESTED = "changes_requested"


class Risk(models.TextChoices):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Proposal(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="proposals")
    agent = models.ForeignKey(AgentCredential, on_delete=models.PROTECT, related_name="proposals")
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    tool = models.CharField(max_length=64)
    args = models.JSONField(help_text="Normalized args: exactly what a commit sends.")
    args_hash = models.CharField(max_length=64)
    # The hash of the args as the agent submitted them, kept when a reviewer's edit changes ``args_hash``: an
    # agent's retry of its own submission is a replay of it, not a reuse of its key for other args. Empty on
    # proposals stored before it existed (their ``args_hash`` stands in). ``db_default`` for raw inserts.
    submitted_args_hash = models.CharField(max_length=64, blank=True, default="", db_default="")
    rationale = models.TextField(blank=True)
    risk = models.CharField(max_length=8, choices=Risk.choices)
    preview = models.JSONField(default=dict)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.PENDING)
    status_reason = models.TextField(blank=True, help_text="Why it waits or failed, for people.")
    idempotency_key = models.CharField(max_length=255)
    expires_at = models.DateTimeField()
    commit_attempts = models.PositiveIntegerField(default=0)
    # A worker committing the proposal holds it until then, renewing it while the commit runs
    # (services.commit heartbeat); past it, another worker may take over.
    lease_until = models.DateTimeField(null=True, blank=True)
    # The fencing token: raised by every claim. A worker renews its lease and records its outcome only
    # while the token is still the one its claim took, so a worker that stalled past its lease (and was
    # taken over) cannot overwrite the outcome of the one that took over.
    lease_token = models.PositiveIntegerField(default=0, db_default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A failed (dead-lettered) commit an admin chose not to retry.
    discarded_at = models.DateTimeField(null=True, blank=True)
    # When the reminder (still pending after ACME_REMIND_AFTER) and the escalation to the tenant's admins
    # (still pending near expiry) were claimed: set once by a conditional UPDATE, so a restart neither
    # loses nor repeats them (approvals.notifications).
    reminded_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # The approval rule (approvals.models.ToolPolicy), snapshotted at submit and again when a reviewer's edit
    # changes the risk: how many distinct reviewers must approve the current args, and the group whose
    # members alone may decide (None: every reviewer of the tenant). ``approval_rule``: the rule's name.
    approvals_required = models.PositiveSmallIntegerField(default=1, db_default=1)
    review_group = models.ForeignKey(
        "approvals.ReviewerGroup", null=True, blank=True, on_delete=models.PROTECT, related_name="proposals"
    )
    approval_rule = models.CharField(max_length=100, blank=True, default="", db_default="")
    # Handed to one person (a reassignment): their "for you" list shows it.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Keys are each agent's own (as the derived key, which includes the agent): two agents of one
            # tenant may both send "order-1" without one replaying, or learning of, the other's proposal.
            models.UniqueConstraint(
                fields=["agent", "idempotency_key"], name="proposal_agent_idempotency_key_unique"
            ),
            models.CheckConstraint(condition=Q(status__in=Status.values), name="proposal_status_valid"),
            models.CheckConstraint(condition=Q(risk__in=Risk.values), name="proposal_risk_valid"),
            models.CheckConstraint(
                condition=Q(approvals_required__gte=1, approvals_required__lte=10),
                name="proposal_approvals_required_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "status", "created_at"], name="proposal_inbox"),
            models.Index(fields=["tenant", "-created_at", "id"], name="proposal_tenant_recent"),
            models.Index(fields=["agent", "tool", "created_at"], name="proposal_agent_tool_recent"),
            models.Index(fields=["status", "lease_until"], name="proposal_status_lease"),
            # Newest-first lists (admin change list; an agent's GET /api/v1/proposals/), found by
            # bench/scale.py at 1M proposals: without them each page sorts every row (1.6-1.8 s).
            models.Index(fields=["-created_at", "-id"], name="proposal_recent"),
            models.Index(fields=["agent", "-created_at", "-id"], name="proposal_agent_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.tool} {self.status} ({self.id})"

    @property
    def crm_idempotency_key(self) -> str:
        """The key sent to the outside system: one per proposal, the same on every attempt."""
        return f"acme-proposal-{self.id}"


class Verdict(models.TextChoices):
    APPROVED = "approved"
    REJECTED = "rejected"
    CHANGES_REQUESTED = "changes_requested"


class Channel(models.TextChoices):
    API = "api"
    WEB = "web"
    CLI = "cli"
    SLACK = "slack"


class Decision(models.Model):
    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="decisions")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    verdict = models.CharField(max_length=24, choices=Verdict.choices)
    reason = models.TextField(blank=True)
    args_hash = models.CharField(max_length=64, help_text="Hash of the exact args approved.")
    edited_from = models.JSONField(
        null=True, blank=True, help_text="When the reviewer edited the args: the changes, field by field."
    )
    channel = models.CharField(max_length=8, choices=Channel.choices)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=256, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at"]
        constraints = [
            # A proposal is decided once: a second approval cannot be recorded even by a racing request.
            models.UniqueConstraint(fields=["proposal"], name="decision_one_per_proposal"),
            models.CheckConstraint(condition=Q(verdict__in=Verdict.values), name="decision_verdict_valid"),
        ]
        indexes = [models.Index(fields=["-at", "-id"], name="decision_recent")]

    def __str__(self) -> str:
        return f"{self.verdict} by {self.reviewer} ({self.proposal_id})"


class Receipt(models.Model):
    proposal = models.OneToOneField(Proposal, on_delete=models.PROTECT, related_name="receipt")
    system = models.CharField(max_length=32)
    external_id = models.CharField(max_length=128)
    external_url = models.URLField(max_length=500, blank=True)
    response_summary = models.JSONField(default=dict)
    attempts = models.PositiveIntegerField(default=1)
    args_hash = models.CharField(max_length=64, help_text="Hash of the args that were sent.")
    committed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.system} #{self.external_id}"


class SagaStep(models.Model):
    """The persisted result of one step of a multi-step proposal: a crash resumes at the next step, and a
    failure later on knows what to undo."""

    class State(models.TextChoices):
        DONE = "done"
        COMPENSATED = "compensated"
        COMPENSATION_FAILED = "compensation_failed"

    proposal = models.ForeignKey(Proposal, on_delete=models.PROTECT, related_name="saga_steps")
    index = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=64)
    state = models.CharField(max_length=24, choices=State.choices)
    result = models.JSONField(default=dict)
    error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["proposal", "index"]
        constraints = [models.UniqueConstraint(fields=["proposal", "index"], name="saga_step_once")]

    def __str__(self) -> str:
        return f"{self.proposal_id} #{self.index} {self.name} {self.state}"
