"""approvals/views/: the reviewer UI through Django's test client (fast; the real browser is tests/browser)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, cast

import pytest
import responses
from django.conf import settings
from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext

from approvals import services
from approvals.forms import REASON_REQUIRED
from approvals.models import Decision, Proposal, Receipt, Status
from approvals.views import inbox as inbox_view
from audit.services import Where
from tests.conftest import own_connection

API = Where(channel="api", ip="127.0.0.1")
TICKETS_URL = f"{settings.CRM_BASE_URL}/api/v2/tickets.json"
TICKET_5_URL = f"{settings.CRM_BASE_URL}/api/v2/tickets/5.json"
LIVE_TICKET = {
    "id": 5,
    "subject": "Printer",
    "priority": "normal",
    "status": "open",
    "tags": [],
    "updated_at": "2026-11-23T10:00:00Z",
}


def ticket_args(n: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "subject": f"Printer {n} on fire",
        "description": "Smoke on floor 3.",
        "priority": "high",
        **extra,
    }


def submit(
    party: Any, n: int = 0, *, tool: str = "crm.create_ticket", args: dict[str, Any] | None = None, **kw: Any
) -> Proposal:
    args = args if args is not None else ticket_args(n)
    return services.proposal_submit(
        agent=party.agent, tool=tool, args=args, rationale="customer asked", where=API, **kw
    ).proposal


def reviewer_client(party: Any, **kw: Any) -> Client:
    client = Client(**kw)
    client.force_login(party.reviewer)
    return client


def url(name: str, proposal: Proposal) -> str:
    return f"/proposals/{proposal.pk}/{name + '/' if name else ''}"


@pytest.mark.django_db
class TestAccess:
    def test_login_is_required(self, acme):
        proposal = submit(acme)
        for path in ["/", url("", proposal), url("status", proposal), url("edit", proposal)]:
            response = Client().get(path)
            assert response.status_code == 302 and response["Location"].startswith(
                "/accounts/login/?next="
            ), path

    def test_login_page_and_logging_in(self, acme):
        client = Client()
        page = client.get("/accounts/login/")
        assert page.status_code == 200 and b'<label for="id_username">' in page.content

        response = client.post("/accounts/login/", {"username": "acme-reviewer", "password": "pw-12345678"})

        assert response.status_code == 302 and response["Location"] == "/"

    def test_logout_is_a_post(self, acme):
        client = reviewer_client(acme)
        assert b'action="/accounts/logout/"' in client.get("/").content
        assert client.post("/accounts/logout/").status_code == 302
        assert client.get("/").status_code == 302

    def test_another_tenants_proposal_is_a_404(self, acme, globex):
        theirs = submit(globex)
        client = reviewer_client(acme)

        for path in [url("", theirs), url("status", theirs), url("edit", theirs)]:
            assert client.get(path).status_code == 404, path
        response = client.post(url("approve", theirs))
        assert response.status_code == 404
        assert b"Nothing here" in response.content  # templates/404.html
        assert not Decision.objects.exists()

    def test_inbox_lists_only_the_reviewers_tenants(self, acme, globex):
        ours, theirs = submit(acme), submit(globex)

        content = reviewer_client(acme).get("/").content.decode()

        assert str(ours.pk) in content and str(theirs.pk) not in content

    def test_a_requester_sees_only_what_was_asked_on_their_behalf(self, acme):
        mine = submit(acme, 1, on_behalf_of=acme.requester)
        other = submit(acme, 2)
        client = Client()
        client.force_login(acme.requester)

        content = client.get("/").content.decode()

        assert str(mine.pk) in content and str(other.pk) not in content
        page = client.get(url("", mine)).content.decode()
        assert 'id="approve-form"' not in page  # a requester cannot decide


@pytest.mark.django_db
class TestInbox:
    def test_pending_first_oldest_first_then_the_rest_newest_first(self, acme):
        old, new = submit(acme, 1), submit(acme, 2)
        decided_a, decided_b = submit(acme, 3), submit(acme, 4)
        services.proposal_reject(proposal=decided_a, reviewer=acme.reviewer, reason="no", where=API)
        services.proposal_reject(proposal=decided_b, reviewer=acme.reviewer, reason="no", where=API)

        content = reviewer_client(acme).get("/").content.decode()

        order = [content.index(str(p.pk)) for p in (old, new, decided_b, decided_a)]
        assert order == sorted(order)

    def test_columns_and_counts(self, acme):
        submit(acme, 1)
        rejected = submit(acme, 2)
        services.proposal_reject(proposal=rejected, reviewer=acme.reviewer, reason="no", where=API)

        response = reviewer_client(acme).get("/")

        content = response.content.decode()
        assert "Create ticket &quot;Printer 1 on fire&quot; (high)" in content  # preview.summary
        assert "crm.create_ticket" in content and "acme-agent" in content and "medium" in content
        tabs = {t["value"]: t["count"] for t in response.context["status_tabs"]}
        assert tabs["pending"] == "1" and tabs["rejected"] == "1" and response.context["total"] == "2"

    def test_filters(self, acme):
        ticket = submit(acme, 1)
        message = submit(acme, tool="slack.post_message", args={"channel": "#ops", "text": "Deploy done"})
        rejected = submit(acme, 3)
        services.proposal_reject(proposal=rejected, reviewer=acme.reviewer, reason="no", where=API)
        client = reviewer_client(acme)

        def shown(query: str) -> set[str]:
            return {str(p.pk) for p in client.get(f"/?{query}").context["rows"]}

        assert shown("tool=slack.post_message") == {str(message.pk)}
        assert shown("status=rejected") == {str(rejected.pk)}
        assert shown("status=pending&tool=crm.create_ticket") == {str(ticket.pk)}
        assert shown("risk=low") == {str(message.pk)}
        assert shown(f"agent={acme.agent.pk}") == {str(ticket.pk), str(message.pk), str(rejected.pk)}
        assert shown("status=bogus&tool=nope") == {
            str(ticket.pk),
            str(message.pk),
            str(rejected.pk),
        }  # ignored

    def test_keyset_pages_walk_every_row_once_in_order(self, acme, monkeypatch):
        monkeypatch.setattr(inbox_view, "PAGE_SIZE", 3)
        proposals = [submit(acme, n) for n in range(8)]
        for p in proposals[5:]:
            services.proposal_reject(proposal=p, reviewer=acme.reviewer, reason="no", where=API)
        client = reviewer_client(acme)

        seen, query = [], ""
        for _ in range(10):
            response = client.get(f"/?{query}")
            seen += [str(p.pk) for p in response.context["rows"]]
            query = response.context["next_query"]
            if not query:
                break

        expected = [str(p.pk) for p in proposals[:5]] + [str(p.pk) for p in reversed(proposals[5:])]
        assert seen == expected

    def test_counts_are_one_capped_query_never_a_full_count(self, acme, monkeypatch):
        monkeypatch.setattr(inbox_view, "COUNT_CAP", 3)
        for n in range(5):
            submit(acme, n)
        with CaptureQueriesContext(connection) as ctx:
            response = reviewer_client(acme).get("/")
        counts = [q["sql"] for q in ctx.captured_queries if "COUNT(" in q["sql"].upper()]
        assert len(counts) == 1 and "LIMIT 4" in counts[0].upper()
        tabs = {t["value"]: t["count"] for t in response.context["status_tabs"]}
        assert tabs["pending"] == "3+" and tabs["rejected"] == "0" and response.context["total"] == "3+"

    def test_empty_state(self, acme):
        content = reviewer_client(acme).get("/").content.decode()
        assert "Nothing to review" in content

    def test_empty_state_with_filters(self, acme):
        submit(acme)
        content = reviewer_client(acme).get("/?status=failed").content.decode()
        assert "No proposal matches these filters" in content


def _grow(party: Any, n: int, start: int = 1000) -> None:
    """n proposals in every state the inbox and the page render, with their audit trail."""
    for i in range(n):
        proposal = submit(party, start + i)
        if i % 3 == 1:
            services.proposal_reject(proposal=proposal, reviewer=party.reviewer, reason="no", where=API)


@pytest.mark.django_db
class TestQueryCounts:
    def _count(self, client: Client, path: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(path)
        assert response.status_code == 200
        return len(ctx.captured_queries)

    def test_the_inbox_is_constant_as_data_grows(self, acme, globex):
        client = reviewer_client(acme)
        _grow(acme, 5)
        _grow(globex, 5)
        small = self._count(client, "/")
        _grow(acme, 45, start=2000)
        _grow(globex, 20, start=2000)
        assert self._count(client, "/") == small
        assert self._count(client, "/?status=pending&tool=crm.create_ticket") <= small

    def test_the_proposal_page_is_constant_as_data_grows(self, acme):
        client = reviewer_client(acme)
        _grow(acme, 5)
        first = submit(acme, 1)
        small = self._count(client, url("", first))
        _grow(acme, 45, start=2000)
        second = submit(acme, 2, on_behalf_of=acme.requester)
        services.proposal_approve(
            proposal=second,
            reviewer=acme.reviewer,
            where=API,
            comment="ok",
            args=ticket_args(2, priority="low"),
        )
        assert self._count(client, url("", second)) == small
        assert self._count(client, url("status", second)) < small


@pytest.mark.django_db
class TestProposalPage:
    def test_shows_rationale_diff_args_key_and_history(self, acme):
        proposal = submit(acme, 7, args=ticket_args(7, customer_email="Alice@Example.com", tags=["printer"]))

        response = reviewer_client(acme).get(url("", proposal))

        content = response.content.decode()
        assert "customer asked" in content
        assert 'class="diff-added"' in content and "alice@example.com" in content  # every field as added
        assert "&quot;priority&quot;: &quot;high&quot;" in content  # the exact args, as JSON
        assert proposal.idempotency_key in content
        assert "proposal.submitted" in content
        assert 'id="approve-form"' in content and 'id="reject-form"' in content
        # Pending: the panel is polled, slowly, in case another reviewer decides meanwhile.
        assert (
            'aria-live="polite"' in content
            and 'data-final="false"' in content
            and 'data-poll-ms="5000"' in content
        )

    def test_slack_message_preview(self, acme):
        proposal = submit(acme, tool="slack.post_message", args={"channel": "#ops", "text": "Deploy *done*"})

        content = reviewer_client(acme).get(url("", proposal)).content.decode()

        assert 'class="slack-preview"' in content and "Deploy *done*" in content and "#ops" in content

    def test_update_diff_is_before_and_after(self, acme):
        proposal = submit(acme)
        # An update's preview comes from the live ticket; here it is stored as the adapter would store it.
        Proposal.objects.filter(pk=proposal.pk).update(
            tool="crm.update_ticket",
            preview={
                "summary": "Update ticket #5: priority normal → urgent",
                "changes": [{"field": "priority", "before": "normal", "after": "urgent"}],
                "notes": ["High priority changes page the on-call."],
            },
        )

        content = reviewer_client(acme).get(url("", proposal)).content.decode()

        assert re.search(r'class="diff-changed">\s*<th scope="row">priority</th>', content)
        assert "removed: </span>normal</del>" in content and "new value: </span>urgent</ins>" in content
        assert "High priority changes page the on-call." in content


@pytest.mark.django_db
class TestDecisions:
    def test_approve(self, acme):
        proposal = submit(acme)

        response = reviewer_client(acme).post(url("approve", proposal), {"comment": "fine"}, follow=True)

        proposal.refresh_from_db()
        assert proposal.status == Status.APPROVED
        decision = Decision.objects.get(proposal=proposal)
        assert (decision.verdict, decision.reason, decision.channel) == ("approved", "fine", "web")
        content = response.content.decode()
        assert "Working on it…" in content and 'data-final="false"' in content

    def test_reject_needs_a_reason(self, acme):
        proposal = submit(acme)
        client = reviewer_client(acme)

        refused = client.post(url("reject", proposal), {"reason": "   "})
        assert refused.status_code == 400 and REASON_REQUIRED in refused.content.decode()
        assert Proposal.objects.get(pk=proposal.pk).status == Status.PENDING

        response = client.post(url("reject", proposal), {"reason": "duplicate of #12"}, follow=True)
        assert Proposal.objects.get(pk=proposal.pk).status == Status.REJECTED
        assert "duplicate of #12" in response.content.decode()

    def test_csrf_is_enforced(self, acme):
        proposal = submit(acme)
        client = reviewer_client(acme, enforce_csrf_checks=True)

        assert client.post(url("approve", proposal)).status_code == 403
        assert client.post(url("reject", proposal), {"reason": "x"}).status_code == 403
        assert not Decision.objects.exists()

        page = client.get(url("", proposal))
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
        assert found is not None
        token = found.group(1)
        assert client.post(url("approve", proposal), {"csrfmiddlewaretoken": token}).status_code == 302

    def test_a_reviewer_cannot_approve_what_was_asked_on_their_behalf(self, acme):
        proposal = submit(acme, on_behalf_of=acme.reviewer)
        client = reviewer_client(acme)

        page = client.get(url("", proposal)).content.decode()
        assert "made on your behalf" in page and 'id="approve-form"' not in page
        response = client.post(url("approve", proposal))

        assert response.status_code == 403
        assert "own behalf" in response.content.decode()
        assert client.get(url("edit", proposal)).status_code == 403
        assert not Decision.objects.exists()

    def test_a_second_approval_is_refused_and_records_nothing(self, acme):
        proposal = submit(acme)
        client, other_tab = reviewer_client(acme), reviewer_client(acme)

        first = client.post(url("approve", proposal))
        second = other_tab.post(url("approve", proposal))
        reject_after = other_tab.post(url("reject", proposal), {"reason": "too late"})

        assert first.status_code == 302
        assert second.status_code == 409 and "already approved" in second.content.decode()
        assert reject_after.status_code == 409
        assert Decision.objects.filter(proposal=proposal).count() == 1

    def test_get_cannot_decide(self, acme):
        proposal = submit(acme)
        assert reviewer_client(acme).get(url("approve", proposal)).status_code == 405


@pytest.mark.django_db
class TestEditThenApprove:
    def test_the_form_is_generated_from_the_args_model_and_prefilled(self, acme):
        proposal = submit(acme, args=ticket_args(1, tags=["printer", "floor-3"]))

        content = reviewer_client(acme).get(url("edit", proposal)).content.decode()

        assert re.search(r'<input type="text" name="subject" value="Printer 1 on fire"', content)
        assert '<option value="high" selected>high</option>' in content  # the CRM's values
        assert 'value="printer, floor-3"' in content
        assert 'name="customer_email"' in content and 'type="email"' in content

    def test_errors_come_from_the_contract_per_field(self, acme):
        proposal = submit(acme)
        data = {
            "step": "preview",
            "subject": "",
            "description": "x",
            "priority": "high",
            "customer_email": "not-an-email",
            "tags": "ok, Not A Tag!",
        }

        response = reviewer_client(acme).post(url("edit", proposal), data)

        assert response.status_code == 400
        errors = response.context["form"].errors
        assert set(errors) >= {"subject", "customer_email", "tags"}
        assert Proposal.objects.get(pk=proposal.pk).status == Status.PENDING

    def test_the_form_speaks_the_schemas_vocabulary_and_its_errors_are_plain_sentences(self, acme):
        """One vocabulary for priority (the schema's enum, its help text, the error); no pydantic prefix
        ("Value error,"); a blank subject says it has nothing visible; a bad tag is named."""
        from adapters.normalize import NOTHING_VISIBLE, PRIORITY_VOCABULARY

        proposal = submit(acme)
        client = reviewer_client(acme)
        form = client.get(url("edit", proposal)).context["form"]
        assert [value for value, _ in form.fields["priority"].choices if value] == [
            "low",
            "normal",
            "high",
            "urgent",
        ]
        assert form.fields["priority"].help_text.startswith(PRIORITY_VOCABULARY.split(" (")[0])

        data = {
            "step": "preview",
            "subject": " \u200b ",
            "description": "x",
            "priority": "whenever",
            "tags": "ok, no/slash",
        }
        errors = client.post(url("edit", proposal), data).context["form"].errors

        assert errors["subject"] == [NOTHING_VISIBLE]
        assert errors["priority"] == [f"unknown priority 'whenever'; use {PRIORITY_VOCABULARY}"]
        assert "'no/slash'" in errors["tags"][0]
        assert not any(message.startswith("Value error") for field in errors.values() for message in field)

    def test_preview_shows_the_edit_as_a_diff_then_confirm_approves_it(self, acme):
        proposal = submit(acme)
        client = reviewer_client(acme)
        data = {
            "step": "preview",
            "subject": "Printer 0 on fire",
            "description": "Smoke on floor 3.",
            "priority": "critical",
            "tags": "printer",
        }

        preview = client.post(url("edit", proposal), data)

        assert preview.status_code == 200
        edits = {row["field"]: row for row in preview.context["edits"]}
        assert edits["priority"]["before"] == "high" and edits["priority"]["after"] == "urgent"  # normalized
        assert edits["tags"]["kind"] == "added"
        assert Proposal.objects.get(pk=proposal.pk).status == Status.PENDING  # nothing decided yet

        signed = preview.context["signed_args"]
        response = client.post(
            url("edit", proposal), {"step": "confirm", "signed_args": signed, "comment": "bumped"}
        )

        assert response.status_code == 302
        proposal.refresh_from_db()
        assert proposal.status == Status.APPROVED and proposal.args["priority"] == "urgent"
        decision = Decision.objects.get(proposal=proposal)
        assert decision.reason == "bumped"
        assert decision.edited_from is not None
        assert {c["field"] for c in decision.edited_from} == {"priority", "tags"}
        page = client.get(url("", proposal)).content.decode()
        assert "Edited by the reviewer before approving" in page

    def test_the_edit_preview_does_not_count_the_agents_hourly_limit(self, acme):
        """The limit is the agent's; the proposal under review already counts towards it (as in the API)."""
        from approvals.models import ToolPolicy

        ToolPolicy.objects.create(tenant=acme.tenant, name="limits", tool="crm.create_ticket", max_per_hour=1)
        proposal = submit(acme)
        data = {
            "step": "preview",
            "subject": "Printer 0 on fire",
            "description": "Smoke on floor 3.",
            "priority": "low",
        }

        response = reviewer_client(acme).post(url("edit", proposal), data)

        assert response.status_code == 200, response.context["form"].errors
        assert "signed_args" in response.context

    def _update_proposal(self, acme: Any, rsps: responses.RequestsMock, live: dict[str, Any]) -> Proposal:
        own_connection(
            "acme"
        )  # acme's own CRM: ticket 5 there is its own (contract 6, tenant isolation outside)
        rsps.add(responses.GET, TICKET_5_URL, json={"ticket": live})
        return submit(acme, tool="crm.update_ticket", args={"ticket_id": 5, "priority": "high"})

    def test_a_crm_that_cannot_be_read_for_the_edit_preview_is_a_503_with_the_form(self, acme):
        with responses.RequestsMock() as rsps:
            proposal = self._update_proposal(acme, rsps, LIVE_TICKET)
            rsps.replace(responses.GET, TICKET_5_URL, status=403, json={"error": "Forbidden"})

            response = reviewer_client(acme).post(
                url("edit", proposal), {"step": "preview", "ticket_id": "5", "priority": "urgent"}
            )

        assert response.status_code == 503
        assert "could not be read" in str(response.context["form"].non_field_errors())
        assert Proposal.objects.get(pk=proposal.pk).status == Status.PENDING

    def test_confirm_refuses_an_edit_when_the_ticket_moved_after_its_preview(self, acme):
        client = reviewer_client(acme)
        with responses.RequestsMock() as rsps:
            proposal = self._update_proposal(acme, rsps, LIVE_TICKET)
            preview = client.post(
                url("edit", proposal), {"step": "preview", "ticket_id": "5", "priority": "low"}
            )
            assert preview.status_code == 200
            rsps.replace(
                responses.GET,
                TICKET_5_URL,
                json={"ticket": dict(LIVE_TICKET, priority="urgent", updated_at="2026-11-23T11:00:00Z")},
            )

            response = client.post(
                url("edit", proposal), {"step": "confirm", "signed_args": preview.context["signed_args"]}
            )

        assert response.status_code == 409
        assert "target changed" in response.content.decode()
        assert Proposal.objects.get(pk=proposal.pk).status == Status.PENDING
        assert not Decision.objects.exists()

    def test_a_tampered_confirmation_is_refused(self, acme):
        proposal = submit(acme)
        client = reviewer_client(acme)

        response = client.post(url("edit", proposal), {"step": "confirm", "signed_args": "forged:value"})

        assert response.status_code == 302 and response["Location"].endswith("/edit/")
        assert not Decision.objects.exists()


@pytest.mark.django_db
class TestLiveStatus:
    def test_the_fragment_follows_the_commit_to_the_receipt(self, acme):
        proposal = submit(acme)
        client = reviewer_client(acme)
        services.proposal_approve(proposal=proposal, reviewer=acme.reviewer, where=API)

        working = client.get(url("status", proposal))
        assert working["Cache-Control"] == "no-store"
        assert (
            "Working on it…" in working.content.decode() and 'data-final="false"' in working.content.decode()
        )
        assert 'data-poll-ms="1000"' in working.content.decode()  # the commit is moments away: every second

        with responses.RequestsMock() as rsps:
            rsps.add(
                responses.POST,
                TICKETS_URL,
                status=201,
                json={
                    "ticket": {
                        "id": 123,
                        "subject": "Printer 0 on fire",
                        "priority": "high",
                        "status": "new",
                        "updated_at": "2026-11-23T10:00:00Z",
                    }
                },
            )
            services.proposal_commit(proposal_id=proposal.pk)

        done = client.get(url("status", proposal)).content.decode()
        assert "Committed — ticket" in done and "#123" in done and 'data-final="true"' in done
        assert 'data-poll-ms="0"' in done
        receipt = Receipt.objects.get(proposal=proposal)
        assert receipt.external_url in done

    @pytest.mark.parametrize("reconciled", [True, False])
    def test_the_receipt_says_when_the_write_was_found_applied_rather_than_sent(self, acme, reconciled):
        proposal = submit(acme)
        services.proposal_approve(proposal=proposal, reviewer=acme.reviewer, where=API)
        with responses.RequestsMock() as rsps:
            rsps.add(
                responses.POST,
                TICKETS_URL,
                status=201,
                json={
                    "ticket": {
                        "id": 124,
                        "subject": "Printer 0 on fire",
                        "priority": "high",
                        "status": "new",
                        "updated_at": "2026-11-23T10:00:00Z",
                    }
                },
            )
            services.proposal_commit(proposal_id=proposal.pk)
        if reconciled:  # as crm.update_ticket records a write of an earlier attempt that it found applied
            receipt = Receipt.objects.get(proposal=proposal)
            receipt.response_summary = {**receipt.response_summary, "reconciled": True}
            receipt.save(update_fields=["response_summary"])

        page = reviewer_client(acme).get(url("", proposal)).content.decode()

        assert ">124</a>" in page  # the receipt is on the page either way
        assert ("nothing was sent again" in page) is reconciled

    def test_a_decision_made_elsewhere_shows_in_the_polled_fragment(self, acme):
        proposal = submit(acme)
        client = reviewer_client(acme)
        assert 'data-status="pending"' in client.get(url("status", proposal)).content.decode()

        services.proposal_reject(proposal=proposal, reviewer=acme.reviewer, reason="duplicate", where=API)

        fragment = client.get(url("status", proposal)).content.decode()
        assert 'data-status="rejected"' in fragment and 'data-final="true"' in fragment
        assert "Rejected." in fragment

    def test_a_waiting_and_a_failed_commit_say_why(self, acme):
        waiting, failed = submit(acme, 1), submit(acme, 2)
        for p in (waiting, failed):
            services.proposal_approve(proposal=p, reviewer=acme.reviewer, where=API)
        # The worker's reasons, as services._finish_deferred / _finish_unsuccessful write them.
        Proposal.objects.filter(pk=waiting.pk).update(
            status_reason="Waiting: the crm circuit breaker is open until 10:00:30 UTC."
        )
        Proposal.objects.filter(pk=failed.pk).update(
            status=Status.FAILED, status_reason="crm: 422 invalid priority"
        )
        client = reviewer_client(acme)

        assert "circuit breaker is open until 10:00:30" in client.get(url("status", waiting)).content.decode()
        body = client.get(url("status", failed)).content.decode()
        assert "Failed" in body and "crm: 422 invalid priority" in body and "dead-lettered" in body


@pytest.mark.django_db
def test_static_assets_are_served(acme):
    """Whitenoise serves the CSS and JS from the app server itself (gunicorn has no static handler)."""
    client = reviewer_client(acme)
    for path in ["/static/approvals/app.css", "/static/approvals/review.js"]:
        response = client.get(path)
        assert response.status_code == 200, path
        # Read as a stream only when it is one (whitenoise's file response; a sync iterator under WSGI).
        streamed = cast(StreamingHttpResponse, response)
        body = (
            b"".join(cast(Iterator[bytes], streamed.streaming_content))
            if response.streaming
            else response.content
        )
        assert len(body) > 500


@pytest.mark.django_db
def test_a_dead_letter_shows_its_attempts_and_a_workflow_its_steps(acme):
    from approvals.models import SagaStep

    proposal = submit(acme)
    services.proposal_approve(proposal=proposal, reviewer=acme.reviewer, where=Where(channel="web"))
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            f"{settings.CRM_BASE_URL}/api/v2/tickets.json",
            status=422,
            json={"error": "RecordInvalid"},
        )
        services.proposal_commit(proposal_id=proposal.pk)
    with responses.RequestsMock() as rsps:  # the workflow's preview reads the customer
        rsps.add(
            responses.GET,
            f"{settings.CRM_BASE_URL}/api/v2/users/search.json",
            json={"users": [{"id": 501, "name": "Dana"}]},
        )
        flow = submit(
            acme,
            tool="workflow.customer_update_digest",
            args={"customer_email": "dana@example.com", "channel": "#accounts", "summary": "Renewed."},
        )
    SagaStep.objects.create(proposal=flow, index=0, name="lookup_customer", state="done", result={})
    client = reviewer_client(acme)

    failed = client.get(url("status", proposal)).content.decode()
    steps = client.get(url("status", flow)).content.decode()

    # A 422 is the CRM refusing the request itself: the page says so and offers no requeue (issue 24, item 4).
    assert "after 1 attempt" in failed and "refused the request itself" in failed
    assert "requeue" not in failed
    assert "lookup_customer: done" in steps


@pytest.mark.django_db
def test_a_stale_update_says_what_it_needs_once(acme):
    """The reason says what happened, the status what it needs: not "It needs a new review. It needs a new
    proposal and a new review."."""
    from adapters.crm.tickets import STALE_TICKET

    proposal = submit(acme)
    Proposal.objects.filter(pk=proposal.pk).update(status=Status.STALE, status_reason=STALE_TICKET)

    body = reviewer_client(acme).get(url("status", proposal)).content.decode()

    assert STALE_TICKET in body
    assert body.count("needs a new") == 1 and "It needs a new proposal and a new review." in body


@pytest.mark.django_db
def test_a_workflow_that_ran_no_step_says_so_without_a_numbered_list(acme):
    with responses.RequestsMock() as rsps:  # the workflow's preview reads the customer
        rsps.add(
            responses.GET,
            f"{settings.CRM_BASE_URL}/api/v2/users/search.json",
            json={"users": [{"id": 501, "name": "Dana"}]},
        )
        flow = submit(
            acme,
            tool="workflow.customer_update_digest",
            args={"customer_email": "dana@example.com", "channel": "#accounts", "summary": "Renewed."},
        )
    client = reviewer_client(acme)
    assert "No step has run yet." in client.get(url("status", flow)).content.decode()

    Proposal.objects.filter(pk=flow.pk).update(status=Status.FAILED, status_reason="slack: channel_not_found")
    body = client.get(url("status", flow)).content.decode()

    assert "No step ran." in body and "No step has run yet." not in body
    assert '<ol class="steps">' not in body


@pytest.mark.django_db
def test_an_update_shows_its_ticket_and_flags_the_other_pending_changes_of_it(acme):
    """The page of an update names the ticket (subject, requester, a link to it as a person sees it), says when
    the "before" values were read, and both of two pending updates of the same ticket name each other."""
    own_connection("acme")
    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.GET,
            TICKET_5_URL,
            json={
                "ticket": {**LIVE_TICKET, "requester_id": 7},
                "users": [{"id": 7, "name": "Dana Scully", "email": "dana@example.com"}],
            },
        )
        first = submit(acme, tool="crm.update_ticket", args={"ticket_id": 5, "status": "pending"})
        second = submit(acme, tool="crm.update_ticket", args={"ticket_id": 5, "priority": "urgent"})
        alone = submit(acme, 1)
    client = reviewer_client(acme)

    page = client.get(url("", first)).content.decode()
    other = client.get(url("", second)).content.decode()
    unrelated = client.get(url("", alone)).content.decode()

    assert f'href="{settings.CRM_BASE_URL}/agent/tickets/5"' in page and "Printer" in page
    assert "Dana Scully &lt;dana@example.com&gt;" in page
    assert re.search(r'class="read-at"><time datetime="\d{4}-\d\d-\d\dT', page)
    assert "1 other pending proposal changes this ticket" in page and url("", second) in page
    assert "1 other pending proposal changes this ticket" in other and url("", first) in other
    assert "other pending proposal" not in unrelated

    services.proposal_reject(proposal=second, reviewer=acme.reviewer, reason="duplicate", where=API)
    assert "other pending proposal" not in client.get(url("", first)).content.decode()
