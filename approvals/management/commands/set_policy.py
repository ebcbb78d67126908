"""``manage.py set_policy --tenant SLUG --name NAME --tool TOOL [--agent NAME] [--risk low|medium|high]
[--approvals-required N] [--group GROUP]``: a tenant's approval rule (contract section 9), the same
``ToolPolicy`` row the admin edits.

Idempotent by (tenant, name): the same command again changes nothing; another value updates the rule in
place. What the command names (tool, agent, risk, approvals, group) is set as given, its options left out at
their defaults; the rule's other settings (field and rate limits) are left as they are. Validated as the
admin validates (``ToolPolicy.full_clean``). A group must exist: a rule routed to a group nobody is in would
leave its proposals to expire undecided.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from approvals.accounts import CLI
from approvals.models import AgentCredential, ReviewerGroup, Risk, Tenant, ToolPolicy
from audit import services as audit

FIELDS = ("tool", "agent", "risk", "approvals_required", "review_group")


class Command(BaseCommand):
    help = "Create or update a tenant's approval rule for a tool (idempotent by tenant and name)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--name", required=True, help="the rule's name, unique in the tenant")
        parser.add_argument("--tool", required=True, help='a tool name, or "*" for every tool')
        parser.add_argument("--agent", default=None, help="an agent of the tenant; left out: every agent")
        parser.add_argument("--risk", default="", choices=["", *Risk.values], help="left out: every risk")
        parser.add_argument(
            "--approvals-required", type=int, default=1, help="from distinct reviewers (1-10)"
        )
        parser.add_argument("--group", default=None, help="only this reviewer group's members may decide")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            tenant = Tenant.objects.get(slug=options["tenant"])
        except Tenant.DoesNotExist:
            raise CommandError(f"no tenant {options['tenant']!r}; create it with create_tenant") from None
        wanted: dict[str, Any] = {
            "tool": options["tool"],
            "agent": self._agent(tenant, options["agent"]),
            "risk": options["risk"],
            "approvals_required": options["approvals_required"],
            "review_group": self._group(tenant, options["group"]),
        }
        with transaction.atomic():
            rule = ToolPolicy.objects.select_for_update().filter(tenant=tenant, name=options["name"]).first()
            created = rule is None
            if rule is None:
                rule = ToolPolicy(tenant=tenant, name=options["name"])
            before = {name: getattr(rule, name) for name in FIELDS}
            for name, value in wanted.items():
                setattr(rule, name, value)
            try:
                rule.full_clean()  # clean() also canonicalises the tool's name
            except ValidationError as exc:
                problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
                raise CommandError(f"invalid rule: {problems}") from None
            changed = created or before != {name: getattr(rule, name) for name in FIELDS}
            if changed:
                rule.save()
                audit.record(
                    tenant=tenant.slug,
                    actor=audit.Actor(type="system", label="set_policy"),
                    action="policy.set",
                    where=CLI,
                    subject_type="tool_policy",
                    subject_id=str(rule.pk),
                    data={
                        "name": rule.name,
                        "tool": rule.tool,
                        "agent": rule.agent.name if rule.agent else "",
                        "risk": rule.risk,
                        "approvals_required": rule.approvals_required,
                        "group": rule.review_group.name if rule.review_group else "",
                        "created": created,
                    },
                )
        outcome = "created" if created else "updated" if changed else "unchanged"
        self.stdout.write(f"{outcome} policy {rule}")

    def _agent(self, tenant: Tenant, name: str | None) -> AgentCredential | None:
        if name is None:
            return None
        agent = AgentCredential.objects.filter(tenant=tenant, name=name).first()
        if agent is None:
            raise CommandError(f"no agent {name!r} in {tenant.slug}; create it with create_agent")
        return agent

    def _group(self, tenant: Tenant, name: str | None) -> ReviewerGroup | None:
        if name is None:
            return None
        group = ReviewerGroup.objects.filter(tenant=tenant, name=name).first()
        if group is None:
            raise CommandError(
                f"no reviewer group {name!r} in {tenant.slug}; create it with create_reviewer --group"
            )
        return group
