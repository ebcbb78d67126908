"""Approval rules (issue 22), which rule applies: a rule for one risk applies only at that risk and outranks
the rules for every risk; an edit that changes the risk takes the new risk's rule; ``set_policy`` and
``create_reviewer --group`` (contract section 9)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from adapters import policy
from adapters.types import Context, PolicyRule
from approvals import services
from approvals.models import Proposal, ReviewerGroup, Status, ToolPolicy
from audit.services import Where
from tests.approvals.test_api import submit
from tests.approvals.test_what_is_sent import PHISH

API = Where(channel="api")


class TestApprovalRule:
    def test_a_rule_for_one_risk_applies_only_at_that_risk_and_outranks_the_others(self):
        rules = (
            PolicyRule(name="bot-limits", agent="bot", tool="*", max_items=3),
            PolicyRule(name="high-two", tool="*", risk="high", approvals_required=2, review_group=7),
        )
        ctx = Context(tenant="acme", agent="bot", policy=rules)

        assert policy.approval_rule("crm.create_ticket", ctx, "high").name == "high-two"
        assert policy.approval_rule("crm.create_ticket", ctx, "medium").name == "bot-limits"
        assert (
            policy.approval_rule("crm.create_ticket", Context(tenant="acme"), "high") is policy.DEFAULT_RULE
        )
        # The checks of a call never use a rule for one risk.
        assert policy.effective_rule("crm.create_ticket", ctx).name == "bot-limits"
        assert (
            policy.effective_rule("crm.create_ticket", Context(tenant="a", policy=rules[1:])).name
            == "default"
        )


@pytest.mark.django_db
class TestSnapshot:
    def test_the_proposal_takes_the_rule_of_its_risk(self, acme):
        ToolPolicy.objects.create(
            tenant=acme.tenant, name="medium-two", tool="*", risk="medium", approvals_required=2
        )

        ticket = Proposal.objects.get(pk=submit(acme).json()["id"])  # crm.create_ticket: medium
        post = Proposal.objects.get(
            pk=submit(acme, {"channel": "#support", "text": "hi"}, tool="slack.post_message").json()["id"]
        )

        assert (ticket.risk, ticket.approvals_required, ticket.approval_rule) == ("medium", 2, "medium-two")
        assert (post.risk, post.approvals_required, post.approval_rule) == ("low", 1, "")

    def test_an_edit_that_raises_the_risk_takes_that_risks_rule(self, acme, settings):
        settings.ACME_RATE_LIMITS = {"slack.post_message": []}
        ToolPolicy.objects.create(
            tenant=acme.tenant, name="links-ok", tool="slack.post_message", allow_slack_markup=True
        )
        ToolPolicy.objects.create(
            tenant=acme.tenant, name="high-two", tool="*", risk="high", approvals_required=2
        )
        args = {"channel": "#general", "text": "hello"}
        pid = submit(acme, args, tool="slack.post_message").json()["id"]
        assert Proposal.objects.get(pk=pid).approvals_required == 1

        after = services.proposal_approve(
            proposal=Proposal.objects.get(pk=pid),
            reviewer=acme.reviewer,
            where=API,
            args={**args, "text": PHISH},
        )

        assert after.status == Status.PENDING
        stored = Proposal.objects.get(pk=pid)
        assert (stored.risk, stored.approvals_required, stored.approval_rule) == ("high", 2, "high-two")

    def test_a_rule_for_one_risk_may_not_set_what_it_cannot_decide(self, acme):
        rule = ToolPolicy(
            tenant=acme.tenant, name="r", tool="*", risk="high", risk_override="high", max_items=2
        )
        with pytest.raises(ValidationError) as raised:
            rule.full_clean()
        assert {"risk_override", "max_items"} <= set(raised.value.message_dict)


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
class TestCommands:
    def test_set_policy_is_idempotent_by_tenant_and_name(self, acme):
        ReviewerGroup.objects.create(tenant=acme.tenant, name="finance")
        command = ["set_policy", "--tenant", "acme", "--name", "two", "--tool", "crm_create_ticket"]

        first = run(*command, "--risk", "high", "--approvals-required", "2", "--group", "finance")
        again = run(*command, "--risk", "high", "--approvals-required", "2", "--group", "finance")
        changed = run(*command, "--risk", "high", "--approvals-required", "3", "--group", "finance")

        assert first.startswith("created") and again.startswith("unchanged") and changed.startswith("updated")
        rule = ToolPolicy.objects.get(tenant=acme.tenant)
        assert (rule.tool, rule.risk, rule.approvals_required) == ("crm.create_ticket", "high", 3)
        assert rule.review_group == ReviewerGroup.objects.get(tenant=acme.tenant, name="finance")

    @pytest.mark.parametrize(
        "extra, message",
        [
            (["--group", "nobody"], "no reviewer group"),
            (["--approvals-required", "11"], "approvals_required"),
            (["--agent", "ghost"], "no agent"),
        ],
    )
    def test_set_policy_refuses_what_the_admin_refuses(self, acme, extra, message):
        with pytest.raises(CommandError, match=message):
            run("set_policy", "--tenant", "acme", "--name", "r", "--tool", "*", *extra)
        assert not ToolPolicy.objects.exists()

    def test_set_policy_refuses_an_unknown_tool(self, acme):
        with pytest.raises(CommandError, match="Unknown tool"):
            run("set_policy", "--tenant", "acme", "--name", "r", "--tool", "crm.delete_everything")

    def test_create_reviewer_adds_to_a_group_created_if_missing(self, acme, globex):
        run("create_reviewer", "--tenant", "acme", "--username", "ann", "--group", "finance")
        run("create_reviewer", "--tenant", "acme", "--username", "bob", "--group", "finance")
        run("create_reviewer", "--tenant", "globex", "--username", "cat", "--group", "finance")

        group = ReviewerGroup.objects.get(tenant=acme.tenant, name="finance")
        assert sorted(group.members.values_list("username", flat=True)) == ["ann", "bob"]
        assert ReviewerGroup.objects.get(tenant=globex.tenant).members.get().username == "cat"
