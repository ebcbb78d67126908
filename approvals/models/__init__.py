from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Tenant(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


class Role(models.TextChoices):
    REQUESTER = "requester", "Requester"
    REVIEWER = "reviewer", "Reviewer"
    ADMIN = "admin", "Admin"


# The roles that review (approve, reject, edit) a tenant's proposals. The one rule: ``Membership.can_review``,
# ``selectors.PersonScope`` and through it ``selectors.may_review(user, tenant_id)`` (what services and views
# ask) all read it from here.
REVIEW_ROLES = frozenset({Role.REVIEWER, Role.ADMIN})


def role_reviews(role: str) -> bool:
    """Whether a member with ``role`` reviews the tenant's proposals."""
    return role in REVIEW_ROLES


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    # The person's Slack user id in the tenant's workspace (``create_reviewer --slack-user-id``): a click on a
    # proposal's Slack message decides as the member it maps to, and only a reviewer's click decides.
    slack_user_id = models.CharField(max_length=32, blank=True, default="", db_default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_one_per_user_tenant"),
            models.UniqueConstraint(
                fields=["tenant", "slack_user_id"],
                condition=~Q(slack_user_id=""),
                name="membership_slack_user_unique_in_tenant",
            ),
            models.CheckConstraint(condition=Q(role__in=Role.values), name="membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"

    @property
    def can_review(self) -> bool:
        return role_reviews(self.role)


class AgentCredential(models.Model):
    """An AI agent's identity in one tenant. Only the token's sha256 is stored."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=100)
    allowed_tools = models.JSONField(default=list, help_text='Tool names, or ["*"] for every tool.')
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(
        max_length=16, editable=False, help_text="First characters, to recognise it."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    webhook_url = models.URLField(
        max_length=500, blank=True, help_text="Where the agent receives signed events about its proposals."
    )
    # The signing secret is derived (see approvals.webhooks.secret_for), never stored; bumping the version
    # rotates it.
    webhook_secret_version = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="agent_name_unique_in_tenant")]

    def __str__(self) -> str:
        return f"{self.name} ({self.tenant})"

    # DRF reads these on request.user.
    is_authenticated = True
    is_anonymous = False

    @property
    def username(self) -> str:
        return f"agent:{self.name}"


class UserToken(models.Model):
    """An API token of a person (reviewer or admin). Only the token's sha256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, default="api")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=16, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user} / {self.name} ({self.token_prefix}…)"


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
    shown = models.CharField(max_length=16, blank=True, help_text="The status the message last showed.")
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


class ToolPolicy(models.Model):
    """A policy rule for agents' tool calls, stored as data and edited in the admin (engine: adapters.policy).

    Exactly one rule applies to a call, the most specific enabled one: this agent + this tool, then this
    agent + "*", then every agent (agent empty) + this tool, then every agent + "*". Rules do not merge: an
    agent's own rule replaces the tenant-wide one, so it can relax a limit as well as tighten it. With no
    rule, only card numbers are refused. Empty limits mean "no limit".
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="tool_policies")
    agent = models.ForeignKey(
        AgentCredential,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tool_policies",
        help_text="Empty: every agent of the tenant. An agent's own rule replaces the tenant-wide one.",
    )
    tool = models.CharField(max_length=64, default="*", help_text='A tool name, or "*" for every tool.')
    name = models.CharField(
        max_length=100,
        help_text="Named in denials (the API's `policy`): say what it is for, e.g. support-bot-limits.",
    )
    description = models.TextField(blank=True)
    enabled = models.BooleanField(
        default=True, help_text="A disabled rule is ignored; the next most specific applies."
    )
    allowed_fields = models.JSONField(
        default=list,
        blank=True,
        help_text='Fields the agent may set, e.g. ["subject", "description"]. Empty: all. '
        "Required fields are always allowed.",
    )
    max_per_hour = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Proposals per hour per agent for each tool (0 pauses it). Empty: no limit.",
    )
    max_items = models.PositiveIntegerField(
        null=True, blank=True, help_text="Items per list argument (e.g. tags) in one call. Empty: no limit."
    )
    refuse_card_numbers = models.BooleanField(
        default=True,
        help_text="Refuse payment card numbers in free-text fields (subject, description, text...).",
    )
    risk_override = models.CharField(
        max_length=8,
        choices=Risk.choices,
        blank=True,
        default="",
        help_text="Raise the risk shown to reviewers (never lowers the tool's own risk). Empty: the tool's.",
    )
    allow_slack_markup = models.BooleanField(
        default=False,
        help_text="Slack messages: send links and mentions (<url|label>, <!channel>, <@user>) as Slack formatting. "
        "Off: '&', '<' and '>' are escaped, so the text posts literally. On: the preview spells each link's "
        "target and each mention out, and the risk is raised.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "tool policies"
        ordering = ["tenant", "tool", "agent", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="tool_policy_name_unique_in_tenant"),
            # One rule per scope, so which rule applies is never a matter of load order.
            models.UniqueConstraint(
                fields=["tenant", "tool"], condition=Q(agent__isnull=True), name="tool_policy_one_tenant_wide"
            ),
            models.UniqueConstraint(
                fields=["tenant", "agent", "tool"],
                condition=Q(agent__isnull=False),
                name="tool_policy_one_per_agent",
            ),
            models.CheckConstraint(
                condition=Q(risk_override__in=["", *Risk.values]), name="tool_policy_risk_override_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.tool}, {self.agent.name if self.agent is not None else 'every agent'})"

    def clean(self) -> None:
        # Typos would otherwise fail silently (a misspelt tool never matches, a misspelt field denies a call).
        from django.core.exceptions import ValidationError

        from adapters import registry
        from adapters.errors import UnknownTool

        errors: dict[str, str] = {}
        if self.agent is not None and self.tenant_id and self.agent.tenant_id != self.tenant_id:
            errors["agent"] = "This agent belongs to another tenant."
        known: list[str] | None = None
        # A tool named by its safe name (crm_create_ticket) is stored under its dotted name.
        self.tool = registry.canonical(self.tool)
        if self.tool != "*":
            try:
                known = list(registry.get(self.tool).args_model.model_fields)
            except UnknownTool as exc:
                errors["tool"] = f'Unknown tool; use "*" or one of: {", ".join(exc.allowed)}.'
        if not isinstance(self.allowed_fields, list) or not all(
            isinstance(f, str) for f in self.allowed_fields
        ):
            errors["allowed_fields"] = 'A JSON list of field names, e.g. ["subject", "description"].'
        elif known is not None:
            unknown = [f for f in self.allowed_fields if f not in known]
            if unknown:
                errors["allowed_fields"] = (
                    f"Not fields of {self.tool}: {', '.join(unknown)}; it has: {', '.join(known)}."
                )
        if errors:
            raise ValidationError(errors)


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
