"""Approval rules in Slack (issue 22): the message shows "1 of 2 approvals" (who) and the group a proposal is
routed to; a partial approval updates the message and tells the clicker it was recorded; a click by a
reviewer outside the group is refused like any other refusal (an ephemeral message, nothing recorded).
The Slack stand-in and signed clicks are those of ``test_slack_approvals``."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses

from approvals import outbox
from approvals.accounts import person_create
from approvals.models import (
    Approval,
    Decision,
    Membership,
    OutboxMessage,
    Proposal,
    ReviewerGroup,
    Role,
    Status,
)
from approvals.slack import interactions
from audit.models import AuditEvent
from tests.approvals import test_slack_approvals as loop
from tests.approvals.test_slack_approvals import _calls, _click, _ok, _posted, _signed, _submit

# The fixtures of the Slack loop's tests: acme's own Slack connection, no hourly limit on the channel.
slack = loop.slack
no_channel_limit = loop.no_channel_limit

SECOND = "U0SECOND"


def needs(proposal_id: str, n: int, group: ReviewerGroup | None = None) -> Proposal:
    Proposal.objects.filter(pk=proposal_id).update(approvals_required=n, review_group=group)
    return Proposal.objects.get(pk=proposal_id)


def second_reviewer(party: Any) -> Any:
    user = person_create(tenant=party.tenant, username="acme-second", role=Role.REVIEWER)
    Membership.objects.filter(user=user, tenant=party.tenant).update(slack_user_id=SECOND)
    return user


def blocks_text(call: dict[str, Any]) -> str:
    return json.dumps(call["blocks"])


@pytest.mark.django_db
class TestQuorumInSlack:
    def test_the_message_shows_1_of_2_and_a_partial_approval_updates_it(self, slack, client):
        second_reviewer(slack)
        proposal_id = _submit(slack)
        # The rule is snapshotted at submit; here set before the message is posted.
        proposal = needs(proposal_id, 2)
        with responses.RequestsMock() as rsps:
            _ok(rsps, "chat.postMessage")
            outbox.drain()
            [posted] = _calls(rsps, "chat.postMessage")
        assert "0 of 2 approvals" in blocks_text(posted)

        assert _signed(client, _click(proposal, "approve")).status_code == 200

        proposal.refresh_from_db()
        assert proposal.status == Status.PENDING and not Decision.objects.exists()
        assert Approval.objects.get(proposal=proposal).channel == "slack"
        with responses.RequestsMock() as rsps:
            _ok(rsps, "chat.update", "chat.postEphemeral")
            outbox.drain()
            [update] = _calls(rsps, "chat.update")
            [told] = _calls(rsps, "chat.postEphemeral")
        assert "1 of 2 approvals" in blocks_text(update) and "acme-reviewer" in blocks_text(update)
        assert '"Approve"' in blocks_text(update)  # still open for the second approval
        assert told["text"] == interactions.APPROVAL_RECORDED.format(given=1, required=2)

        assert _signed(client, _click(proposal, "approve", user=SECOND)).status_code == 200

        proposal.refresh_from_db()
        assert proposal.status == Status.APPROVED
        assert Decision.objects.filter(proposal=proposal).count() == 1

    def test_the_same_reviewer_clicking_twice_counts_once_and_is_told(self, slack, client):
        proposal = needs(_submit(slack), 2)
        _posted(str(proposal.pk))

        _signed(client, _click(proposal, "approve"))
        _signed(client, _click(proposal, "approve"))

        assert Approval.objects.filter(proposal=proposal).count() == 1
        texts = [m.payload["text"] for m in OutboxMessage.objects.filter(payload__op="ephemeral")]
        assert texts[-1].startswith("You already approved these args")


@pytest.mark.django_db
class TestRoutingInSlack:
    def test_a_reviewer_outside_the_group_is_refused_and_nothing_is_recorded(self, slack, client):
        group = ReviewerGroup.objects.create(tenant=slack.tenant, name="finance")
        proposal = needs(_submit(slack), 1, group)
        _posted(str(proposal.pk))
        events = AuditEvent.objects.count()

        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            _ok(rsps, "chat.postEphemeral")
            for action in ("approve", "reject", "request_changes"):
                assert _signed(client, _click(proposal, action)).status_code == 200
            outbox.drain()
            told = _calls(rsps, "chat.postEphemeral")
            assert not [c for c in rsps.calls if str(c.request.url).endswith("/views.open")]

        assert len(told) == 3
        assert all("routed to the reviewer group finance" in t["text"] for t in told)
        assert all(t["user"] == "U0REVIEWER" for t in told)
        assert Proposal.objects.get(pk=proposal.pk).status == Status.PENDING
        assert not Approval.objects.exists() and not Decision.objects.exists()
        assert AuditEvent.objects.count() == events

    def test_the_message_names_the_group_and_a_member_decides(self, slack, client):
        group = ReviewerGroup.objects.create(tenant=slack.tenant, name="finance")
        group.members.add(slack.reviewer)
        proposal_id = _submit(slack)
        needs(proposal_id, 1, group)
        with responses.RequestsMock() as rsps:
            _ok(rsps, "chat.postMessage")
            outbox.drain()
            [posted] = _calls(rsps, "chat.postMessage")
        assert "Only the group *finance* can decide" in blocks_text(posted)

        proposal = Proposal.objects.get(pk=proposal_id)
        assert _signed(client, _click(proposal, "approve")).status_code == 200
        assert Decision.objects.filter(proposal=proposal, reviewer=slack.reviewer).exists()
