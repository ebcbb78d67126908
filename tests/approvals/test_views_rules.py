"""Approval rules in the reviewer's web pages (issue 22): "1 of 2 approvals" on the page, in the inbox and
after approving; a reviewer outside the group the proposal is routed to refused (403, nothing recorded);
the "For you" section (routing, snoozes, similar proposals grouped with what differs); the bulk view
(each decided on its own, bound to the args hash its row showed); snooze and reassign."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals import services
from approvals.accounts import person_create
from approvals.models import Approval, Decision, Proposal, ReviewerGroup, ReviewSnooze, Role, Status
from approvals.views import triage
from audit.models import AuditEvent
from tests.approvals.test_views import API, reviewer_client, submit, ticket_args, url

pytestmark = pytest.mark.django_db


def person(party: Any, name: str, role: str = Role.REVIEWER) -> Any:
    return person_create(tenant=party.tenant, username=f"{party.tenant.slug}-{name}", role=role)


def client_of(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def needs(proposal: Proposal, n: int, group: ReviewerGroup | None = None) -> Proposal:
    """The rule "n approvals (from group)", as a ToolPolicy snapshots it at submit."""
    Proposal.objects.filter(pk=proposal.pk).update(approvals_required=n, review_group=group)
    proposal.refresh_from_db()
    return proposal


def group_of(party: Any, name: str, *members: Any) -> ReviewerGroup:
    group = ReviewerGroup.objects.create(tenant=party.tenant, name=name)
    group.members.add(*members)
    return group


def text(response: Any) -> str:
    """The page's text, tags out and spaces squeezed (what a reader sees)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


class TestQuorum:
    def test_the_first_approval_is_recorded_as_1_of_2_and_the_second_commits(self, acme):
        second = person(acme, "second")
        proposal = needs(submit(acme), 2)

        page = text(reviewer_client(acme).get(url("", proposal)))
        assert "0 of 2 approvals" in page and "2 approvals" in page

        response = reviewer_client(acme).post(url("approve", proposal), {"comment": "fine"}, follow=True)

        assert response.status_code == 200
        page = text(response)
        assert "Your approval is recorded: 1 of 2 approvals" in page
        assert "1 of 2 approvals: acme-reviewer" in page  # the live panel: who approved
        assert Proposal.objects.get(pk=proposal.pk).status == Status.PENDING
        assert Approval.objects.filter(proposal=proposal).count() == 1 and not Decision.objects.exists()
        assert "1 of 2 approvals (acme-reviewer)" in text(reviewer_client(acme).get("/"))  # the inbox row
        panel = text(reviewer_client(acme).get(url("status", proposal)))
        assert "1 of 2 approvals: acme-reviewer" in panel and "1 more approval" in panel

        response = client_of(second).post(url("approve", proposal), {"comment": ""}, follow=True)

        assert "Approved. A worker is committing it now." in text(response)
        assert Proposal.objects.get(pk=proposal.pk).status != Status.PENDING
        assert Decision.objects.filter(proposal=proposal).count() == 1

    def test_approving_twice_is_a_409_that_records_nothing_more(self, acme):
        proposal = needs(submit(acme), 2)
        client = reviewer_client(acme)
        assert client.post(url("approve", proposal), {"comment": ""}).status_code == 302

        again = client.post(url("approve", proposal), {"comment": ""})

        assert again.status_code == 409
        assert "You already approved these args" in text(again)
        assert Approval.objects.filter(proposal=proposal).count() == 1

    def test_a_proposal_needing_one_approval_shows_no_count(self, acme):
        proposal = submit(acme)
        assert "approvals" not in text(reviewer_client(acme).get(url("", proposal)))

    def test_the_inbox_reads_the_approvals_of_its_page_in_one_query(self, acme):
        def count() -> int:
            with CaptureQueriesContext(connection) as ctx:
                assert reviewer_client(acme).get("/").status_code == 200
            return len(ctx.captured_queries)

        for n in range(2):
            services.proposal_approve(proposal=needs(submit(acme, n), 2), reviewer=acme.reviewer, where=API)
        few = count()
        for n in range(2, 8):
            services.proposal_approve(proposal=needs(submit(acme, n), 2), reviewer=acme.reviewer, where=API)

        assert count() == few


class TestRouting:
    def test_a_reviewer_outside_the_group_gets_a_403_and_records_nothing(self, acme):
        member = person(acme, "finance-1")
        proposal = needs(submit(acme), 1, group_of(acme, "finance", member))
        client = reviewer_client(acme)  # not in "finance"

        page = client.get(url("", proposal))
        assert page.status_code == 200
        assert "routed to the reviewer group finance" in text(page)
        assert 'id="approve-form"' not in page.content.decode()

        for action, data in [("approve", {"comment": ""}), ("reject", {"reason": "no"})]:
            response = client.post(url(action, proposal), data)
            assert response.status_code == 403, action
            assert "only its members can decide" in text(response)
        assert client.post(url("request_changes", proposal), {"reason": "x"}).status_code == 403
        assert not Approval.objects.exists() and not Decision.objects.exists()
        assert Proposal.objects.get(pk=proposal.pk).status == Status.PENDING
        assert not AuditEvent.objects.filter(action="proposal.approval_recorded").exists()

        # a member of the group decides
        assert client_of(member).post(url("approve", proposal), {"comment": ""}).status_code == 302
        assert Decision.objects.filter(proposal=proposal, reviewer=member).exists()

    def test_the_edit_page_refuses_a_reviewer_outside_the_group(self, acme):
        proposal = needs(submit(acme), 1, group_of(acme, "finance"))
        assert reviewer_client(acme).get(url("edit", proposal)).status_code == 403


class TestForYou:
    def test_routed_elsewhere_snoozed_and_already_approved_are_not_for_you(self, acme):
        mine = submit(acme, 1)
        elsewhere = needs(submit(acme, 2), 1, group_of(acme, "finance"))
        snoozed = submit(acme, 3)
        ReviewSnooze.objects.create(
            proposal=snoozed, user=acme.reviewer, until=timezone.now() + timedelta(hours=1)
        )
        approved = needs(submit(acme, 4), 2)
        services.proposal_approve(proposal=approved, reviewer=acme.reviewer, where=API)

        response = reviewer_client(acme).get("/")

        shown = {str(p.pk) for group in response.context["for_you"] for p in group.rows}
        assert shown == {str(mine.pk)}
        assert {str(p.pk) for p in response.context["rows"]} >= {str(elsewhere.pk), str(snoozed.pk)}

    def test_similar_proposals_are_grouped_with_the_fields_that_differ(self, acme):
        a = submit(acme, args=ticket_args(1, priority="high"))
        b = submit(acme, args=ticket_args(2, priority="low"))
        c = submit(acme, tool="slack.post_message", args={"channel": "#general", "text": "hello"})

        response = reviewer_client(acme).get("/")

        groups = response.context["for_you"]
        [tickets] = [g for g in groups if g.tool == "crm.create_ticket"]
        assert [p.pk for p in tickets.rows] == [a.pk, b.pk]
        assert tickets.differs == ["priority", "subject"]
        assert [d["field"] for d in tickets.rows[0].differences] == ["priority", "subject"]
        [message] = [g for g in groups if g.tool == "slack.post_message"]
        assert [p.pk for p in message.rows] == [c.pk] and message.differs == []
        assert "2 similar" in text(response) and "they differ in priority, subject" in text(response)


class TestBulk:
    def _post(self, client: Client, proposals: list[Proposal], **extra: Any) -> Any:
        data: dict[str, Any] = {"ids": [str(p.pk) for p in proposals], "verdict": "approve", "reason": ""}
        data.update({f"args_hash:{p.pk}": p.args_hash for p in proposals})
        data.update(extra)
        return client.post("/proposals/bulk/", data)

    def test_each_is_decided_and_one_that_changed_since_is_skipped(self, acme):
        proposals = [submit(acme, n) for n in range(3)]
        changed = proposals[1]
        shown = changed.args_hash
        Proposal.objects.filter(pk=changed.pk).update(args_hash="0" * 64)  # edited since the page was read

        response = self._post(reviewer_client(acme), proposals, **{f"args_hash:{changed.pk}": shown})

        assert response.status_code == 200
        results = {r["id"]: r for r in response.context["rows"]}
        assert results[str(proposals[0].pk)]["result"] == "decided"
        assert results[str(proposals[2].pk)]["result"] == "decided"
        assert (results[str(changed.pk)]["result"], results[str(changed.pk)]["error"]) == (
            "skipped",
            "args_changed",
        )
        assert Decision.objects.filter(proposal=changed).count() == 0
        assert Decision.objects.count() == 2
        assert "2 decided, 1 skipped" in text(response)

    def test_a_row_without_its_hash_is_not_decided(self, acme):
        proposal = submit(acme)
        response = reviewer_client(acme).post(
            "/proposals/bulk/", {"ids": [str(proposal.pk)], "verdict": "approve"}
        )
        assert response.context["rows"][0]["error"] == "args_changed"
        assert not Decision.objects.exists()

    def test_reject_needs_a_reason_and_another_tenants_id_is_not_found(self, acme, globex):
        ours, theirs = submit(acme), submit(globex)
        client = reviewer_client(acme)

        refused = self._post(client, [ours], verdict="reject")
        assert refused.status_code == 400 and not Decision.objects.exists()

        response = self._post(client, [ours, theirs], verdict="reject", reason="duplicates")
        results = {r["id"]: r for r in response.context["rows"]}
        assert results[str(ours.pk)]["status"] == Status.REJECTED
        assert results[str(theirs.pk)]["error"] == "not_found"
        assert Proposal.objects.get(pk=theirs.pk).status == Status.PENDING
        assert str(theirs.pk) not in [
            str(r["proposal"].pk) for r in response.context["rows"] if r["proposal"]
        ]

    def test_post_only_csrf_and_reviewers_only(self, acme):
        proposal = submit(acme)
        assert reviewer_client(acme).get("/proposals/bulk/").status_code == 405
        csrf = Client(enforce_csrf_checks=True)
        csrf.force_login(acme.reviewer)
        assert self._post(csrf, [proposal]).status_code == 403
        assert self._post(client_of(acme.requester), [proposal]).status_code == 403
        assert not Decision.objects.exists() and not Approval.objects.exists()

    def test_outside_the_group_is_skipped_and_a_partial_approval_stays_pending(self, acme):
        routed = needs(submit(acme, 1), 1, group_of(acme, "finance"))
        quorum = needs(submit(acme, 2), 2)

        response = self._post(reviewer_client(acme), [routed, quorum])

        results = {r["id"]: r for r in response.context["rows"]}
        assert results[str(routed.pk)]["error"] == "not_in_review_group"
        assert (results[str(quorum.pk)]["result"], results[str(quorum.pk)]["status"]) == (
            "decided",
            "pending",
        )
        assert not Decision.objects.exists() and Approval.objects.filter(proposal=quorum).count() == 1


class TestTriage:
    def test_snooze_hides_it_from_for_you_until_then(self, acme):
        proposal = submit(acme)
        client = reviewer_client(acme)

        assert client.post(url("snooze", proposal), {"until": "4h"}).status_code == 302

        snooze = ReviewSnooze.objects.get(proposal=proposal, user=acme.reviewer)
        assert abs((snooze.until - timezone.now()).total_seconds() - 4 * 3600) < 60
        assert client.get("/").context["for_you"] == []
        assert Proposal.objects.get(pk=proposal.pk).status == Status.PENDING
        assert client.post(url("snooze", proposal), {"until": "forever"}).status_code == 302
        assert ReviewSnooze.objects.get(proposal=proposal).until == snooze.until  # unchanged

    def test_until_tomorrow_is_9_the_next_morning(self):
        now = timezone.make_aware(datetime(2026, 11, 29, 22, 30))
        until = triage.snooze_until("tomorrow", now)
        assert until is not None and (until.day, until.hour, until.minute) == (30, 9, 0)

    def test_reassign_to_a_group_of_the_tenant_only(self, acme, globex):
        proposal = submit(acme)
        ours = group_of(acme, "finance")
        theirs = group_of(globex, "globex-finance")
        client = reviewer_client(acme)

        page = client.get(url("reassign", proposal))
        assert page.status_code == 200
        assert "finance" in text(page) and "globex-finance" not in text(page)

        client.post(url("reassign", proposal), {"to": f"group:{theirs.pk}"})
        assert Proposal.objects.get(pk=proposal.pk).review_group is None

        assert client.post(url("reassign", proposal), {"to": f"group:{ours.pk}"}).status_code == 302
        assert Proposal.objects.get(pk=proposal.pk).review_group == ours
        assert AuditEvent.objects.filter(action="proposal.reassigned", subject_id=str(proposal.pk)).exists()

    def test_reassign_to_a_reviewer_puts_it_in_their_for_you(self, acme):
        proposal = submit(acme)
        other = person(acme, "other")

        reviewer_client(acme).post(url("reassign", proposal), {"to": f"user:{other.pk}"})

        assert Proposal.objects.get(pk=proposal.pk).assignee == other
        shown = [p.pk for g in client_of(other).get("/").context["for_you"] for p in g.rows]
        assert shown == [proposal.pk]
        assert reviewer_client(acme).get("/").context["for_you"] == []
