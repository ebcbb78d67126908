"""The live inbox's JSON (issue 19 part 5): what inbox.js polls, scoped to the person's tenants."""

from __future__ import annotations

import pytest

from approvals import services
from audit.services import Where
from tests.approvals.test_views import reviewer_client, submit


@pytest.mark.django_db
def test_the_live_counts_follow_new_and_decided_proposals_of_the_persons_tenants_only(acme, globex):
    client = reviewer_client(acme)
    submit(globex, 9)  # another tenant's: never counted
    before = client.get("/inbox/live/").json()
    assert before["pending"] == "0"

    proposal = submit(acme, 1)
    submit(acme, 2)
    after = client.get("/inbox/live/")

    assert after["Cache-Control"] == "no-store"
    assert after.json()["pending"] == "2" and after.json()["counts"]["pending"] == 2
    services.proposal_reject(
        proposal=proposal, reviewer=acme.reviewer, reason="dup", where=Where(channel="api")
    )
    decided = client.get("/inbox/live/").json()
    assert decided["pending"] == "1" and decided["counts"]["rejected"] == 1
    # the same filters as the page (here: another agent's proposals only): its list changes when these do
    assert client.get(f"/inbox/live/?agent={globex.agent.pk}").json()["counts"]["pending"] == 0


@pytest.mark.django_db
def test_the_inbox_title_counts_what_waits(acme):
    client = reviewer_client(acme)
    assert "<title>Inbox" in client.get("/").content.decode()

    submit(acme, 1)
    page = client.get("/").content.decode()

    assert "<title>(1) Inbox" in page
    assert 'src="/static/approvals/inbox.js"' in page and 'id="inbox-rows"' in page
    assert "<title>(1) Inbox" in client.get("/?status=committed").content.decode()


@pytest.mark.django_db
def test_the_live_counts_need_a_login(acme):
    from django.test import Client

    response = Client().get("/inbox/live/")

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
