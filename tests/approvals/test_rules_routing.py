"""Approval rules (issue 22), routing: a rule that routes a tool to a reviewer group lets only its members
decide (service and API: 403 not_in_review_group, nothing recorded), tells only them by email, and puts
the proposal in their "for you" list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from approvals import errors, notifications, rules, selectors, services
from approvals.accounts import person_create
from approvals.models import (
    Approval,
    Decision,
    Proposal,
    ReviewerEmail,
    ReviewerGroup,
    ReviewSnooze,
    Role,
    Status,
    ToolPolicy,
)
from audit.services import Where
from tests.approvals.test_api import submit

API = Where(channel="api")


@pytest.fixture
def finance(acme: Any) -> ReviewerGroup:
    """A "finance" group with one member (not acme.reviewer), and a rule routing tickets to it."""
    group = ReviewerGroup.objects.create(tenant=acme.tenant, name="finance")
    member = person_create(
        tenant=acme.tenant, username="acme-finance", role=Role.REVIEWER, password="pw-12345678"
    )
    member.email = "finance@acme.test"
    member.save()
    group.members.add(member)
    ToolPolicy.objects.create(
        tenant=acme.tenant, name="tickets-to-finance", tool="crm.create_ticket", review_group=group
    )
    return group


def proposal(pid: str) -> Proposal:
    return Proposal.objects.get(pk=pid)


@pytest.mark.django_db
class TestRouting:
    def test_a_reviewer_outside_the_group_is_refused_by_the_service(self, acme, finance):
        pid = submit(acme).json()["id"]
        assert proposal(pid).review_group == finance

        for decide in (
            lambda: services.proposal_approve(proposal=proposal(pid), reviewer=acme.reviewer, where=API),
            lambda: services.proposal_reject(
                proposal=proposal(pid), reviewer=acme.reviewer, reason="no", where=API
            ),
            lambda: services.proposal_request_changes(
                proposal=proposal(pid), reviewer=acme.reviewer, reason="no", where=API
            ),
        ):
            with pytest.raises(errors.NotInReviewGroup):
                decide()

        assert Approval.objects.filter(proposal_id=pid).count() == 0
        assert Decision.objects.filter(proposal_id=pid).count() == 0
        assert proposal(pid).status == Status.PENDING
        assert rules.may_decide(acme.reviewer, proposal(pid)) is False
        assert rules.may_decide(finance.members.get(), proposal(pid)) is True

    def test_the_api_answers_403_not_in_review_group_and_a_member_decides(self, acme, finance):
        pid = submit(acme).json()["id"]

        refused = acme.reviewer_client.post(f"/api/v1/proposals/{pid}/approve/", {}, format="json")

        assert refused.status_code == 403
        assert refused.json()["error"] == "not_in_review_group" and "finance" in refused.json()["detail"]
        assert Approval.objects.filter(proposal_id=pid).count() == 0
        services.proposal_approve(proposal=proposal(pid), reviewer=finance.members.get(), where=API)
        assert proposal(pid).status == Status.APPROVED

    def test_a_group_of_another_tenant_cannot_be_named_by_a_rule(self, acme, globex):
        theirs = ReviewerGroup.objects.create(tenant=globex.tenant, name="finance")
        rule = ToolPolicy(tenant=acme.tenant, name="r", tool="crm.create_ticket", review_group=theirs)
        with pytest.raises(Exception, match="another tenant"):
            rule.full_clean()

    def test_only_the_groups_members_are_emailed(self, acme, finance, settings):
        settings.ACME_EMAIL_ENABLED = True
        acme.reviewer.email = "rev@acme.test"
        acme.reviewer.save()

        routed = submit(acme).json()["id"]
        unrouted = submit(acme, {"channel": "#support", "text": "hi"}, tool="slack.post_message").json()["id"]

        def told(user: Any) -> set[str]:
            return {pid for email in ReviewerEmail.objects.filter(user=user) for pid in email.proposal_ids}

        assert told(finance.members.get()) == {routed, unrouted}
        assert told(acme.reviewer) == {unrouted}
        notifications.stage_new(proposal(routed))  # again, as a reminder would: still not to outsiders
        assert routed not in told(acme.reviewer)

    def test_for_you_lists_what_the_user_may_decide_and_has_not_snoozed_or_approved(self, acme, finance):
        member = finance.members.get()
        routed = submit(acme).json()["id"]
        unrouted = submit(acme, {"channel": "#support", "text": "hi"}, tool="slack.post_message").json()["id"]
        mine = submit(acme, {"channel": "#support", "text": "mine"}, tool="slack.post_message",
                      on_behalf_of=acme.reviewer.username).json()["id"]  # fmt: skip
        pending = Proposal.objects.filter(status=Status.PENDING)

        def for_you(user: Any) -> set[str]:
            return {str(pk) for pk in selectors.for_you(user, pending).values_list("pk", flat=True)}

        assert for_you(member) == {routed, unrouted, mine}
        assert for_you(acme.reviewer) == {unrouted}
        assert for_you(acme.requester) == set()
        ReviewSnooze.objects.create(
            proposal_id=unrouted, user=member, until=timezone.now() + timedelta(hours=1)
        )
        assert for_you(member) == {routed, mine}
        ReviewSnooze.objects.filter(user=member).update(until=timezone.now() - timedelta(seconds=1))
        Proposal.objects.filter(pk=mine).update(assignee=acme.reviewer)
        assert for_you(member) == {routed, unrouted}


@pytest.mark.django_db
def test_the_admin_puts_only_the_tenants_reviewers_in_its_groups(acme, globex):
    from django.contrib.auth import get_user_model
    from django.test import Client

    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-12345678")
    client = Client()
    client.force_login(root)
    url = "/admin/approvals/reviewergroup/add/"

    outsider = client.post(url, {"tenant": acme.tenant.pk, "name": "mixed", "members": [globex.reviewer.pk]})
    requester = client.post(url, {"tenant": acme.tenant.pk, "name": "mixed", "members": [acme.requester.pk]})
    own = client.post(url, {"tenant": acme.tenant.pk, "name": "mixed", "members": [acme.reviewer.pk]})

    assert outsider.status_code == 200 and requester.status_code == 200
    assert own.status_code == 302
    assert list(ReviewerGroup.objects.get(name="mixed").members.all()) == [acme.reviewer]
