"""The rules a tenant stores for its agents' calls (turned into adapters.policy's plain data by services)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from approvals.models.accounts import AgentCredential, Tenant
from approvals.models.proposals import Risk
from approvals.models.rules import ReviewerGroup

MAX_APPROVALS = 10


class ToolPolicy(models.Model):
    """A policy rule for agents' tool calls, stored as data and edited in the admin (engine: adapters.policy).

    Exactly one rule checks a call, the most specific enabled one among the rules for every risk (``risk``
    empty): this agent + this tool, then this agent + "*", then every agent (agent empty) + this tool, then
    every agent + "*". Rules do not merge: an agent's own rule replaces the tenant-wide one, so it can relax
    a limit as well as tighten it. With no rule, only card numbers are refused. Empty limits mean "no limit".

    Exactly one rule says who approves and how many (``approvals_required``, ``review_group``), chosen once
    the proposal's risk is known (the tool's, raised by the checking rule's ``risk_override`` and by the
    preview): a rule scoped to that risk outranks every rule for every risk; among rules of the same risk
    scope, the most specific as above. So a tenant-wide "high risk needs 2" holds for an agent that has its
    own rule for every risk (made, say, for its field limits); an agent's own rule for that risk replaces it
    for that agent. A rule for one risk decides only that: its content limits stay at their defaults and it
    cannot override the risk (``clean`` refuses otherwise). With no rule: one approval, any reviewer.
    Snapshotted onto the proposal at submit (and again when a reviewer's edit changes its risk): editing a
    rule changes what later proposals need, not pending ones.
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
    risk = models.CharField(
        max_length=8,
        choices=Risk.choices,
        blank=True,
        default="",
        help_text="Empty: the rule applies at every risk. Else only to proposals of that risk, and it decides "
        "only how many approve and who (its other limits must stay at their defaults).",
    )
    approvals_required = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_APPROVALS)],
        help_text="Approvals from distinct reviewers before the proposal commits (1-10). The requester never counts.",
    )
    review_group = models.ForeignKey(
        ReviewerGroup,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="tool_policies",
        help_text="Only this group's members may decide. Empty: every reviewer of the tenant.",
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
                fields=["tenant", "tool", "risk"],
                condition=Q(agent__isnull=True),
                name="tool_policy_one_tenant_wide",
            ),
            models.UniqueConstraint(
                fields=["tenant", "agent", "tool", "risk"],
                condition=Q(agent__isnull=False),
                name="tool_policy_one_per_agent",
            ),
            models.CheckConstraint(
                condition=Q(risk_override__in=["", *Risk.values]), name="tool_policy_risk_override_valid"
            ),
            models.CheckConstraint(condition=Q(risk__in=["", *Risk.values]), name="tool_policy_risk_valid"),
            models.CheckConstraint(
                condition=Q(approvals_required__gte=1, approvals_required__lte=MAX_APPROVALS),
                name="tool_policy_approvals_required_valid",
            ),
            # A rule for one risk cannot change the risk it was chosen by.
            models.CheckConstraint(
                condition=Q(risk="") | Q(risk_override=""), name="tool_policy_risk_rule_keeps_risk"
            ),
        ]

    def __str__(self) -> str:
        scope = f"{self.tool}, {self.agent.name if self.agent is not None else 'every agent'}"
        return f"{self.name} ({scope}{f', {self.risk} risk' if self.risk else ''})"

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
        group = self.review_group if self.review_group_id is not None else None
        if group is not None and self.tenant_id and group.tenant_id != self.tenant_id:
            errors["review_group"] = "This reviewer group belongs to another tenant."
        if self.risk:
            ignored = {
                "risk_override": self.risk_override != "",
                "allowed_fields": bool(self.allowed_fields),
                "max_per_hour": self.max_per_hour is not None,
                "max_items": self.max_items is not None,
                "refuse_card_numbers": not self.refuse_card_numbers,
                "allow_slack_markup": self.allow_slack_markup,
            }
            for field, is_set in ignored.items():
                if is_set:
                    errors.setdefault(
                        field,
                        "A rule for one risk decides only approvals and who gives them; set this on the rule "
                        "for every risk.",
                    )
        if errors:
            raise ValidationError(errors)
