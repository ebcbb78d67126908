"""What the reviewer sees is what is sent (issue 23): Slack formatting, the exact args on the review page,
the workflow under its steps' own policies, and revoked agents."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
import responses
from django.conf import settings
from django.contrib import admin
from django.test import Client, RequestFactory

from adapters import policy
from adapters.slack import messages
from approvals import errors, services
from approvals.models import AgentCredential, Proposal, SagaStep, Status, ToolPolicy, WebhookDelivery
from audit.models import AuditEvent
from audit.services import Where

API = Where(channel="api")
SLACK = settings.SLACK_API_URL
CRM = settings.CRM_BASE_URL
PHISH = "Please verify: <https://evil.example|https://sso.acme.example/verify> <!channel>"


@pytest.fixture(autouse=True)
def no_channel_limit(settings: Any) -> None:
    settings.ACME_RATE_LIMITS = {"slack.post_message": []}  # the per-channel limit has its own test below


def _submit(party: Any, tool: str, args: dict[str, Any]) -> Any:
    return party.agent_client.post("/api/v1/proposals/", {"tool": tool, "args": args}, format="json")


def _approve_and_commit(party: Any, proposal_id: str) -> None:
    response = party.reviewer_client.post(f"/api/v1/proposals/{proposal_id}/approve/", {}, format="json")
    assert response.status_code == 202, response.json()
    assert services.proposal_commit(proposal_id=proposal_id).outcome in ("committed", "noop")


def _posted(rsps: responses.RequestsMock) -> list[dict[str, Any]]:
    return [
        json.loads(cast(bytes, c.request.body))
        for c in rsps.calls
        if str(c.request.url).endswith("chat.postMessage")
    ]


def _tag(key: str) -> dict[str, Any]:
    """The metadata every post carries: the proposal's key, looked for before a resend."""
    return {"event_type": "acme_proposal", "event_payload": {"key": key}}


def _change(preview: dict[str, Any], field: str) -> Any:
    return next(c["after"] for c in preview["changes"] if c["field"] == field)


# --- item 1: Slack formatting ---------------------------------------------------------------------------


@pytest.mark.django_db
class TestSlackFormatting:
    def test_by_default_slack_receives_exactly_the_escaped_text_the_preview_showed(self, acme):
        submitted = _submit(acme, "slack.post_message", {"channel": "#general", "text": PHISH}).json()

        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            rsps.add(
                responses.POST, f"{SLACK}/chat.postMessage", json={"ok": True, "channel": "C1", "ts": "1.2"}
            )
            _approve_and_commit(acme, submitted["id"])
            posted = _posted(rsps)

        assert posted == [
            {
                "channel": "#general",
                "text": _change(submitted["preview"], "text"),
                "metadata": _tag(f"acme-proposal-{submitted['id']}"),
            }
        ]
        assert "<" not in posted[0]["text"] and "&lt;!channel&gt;" in posted[0]["text"]
        assert submitted["risk"] == "low"

    def test_where_the_policy_allows_markup_the_risk_is_high_and_slack_receives_the_text_as_previewed(
        self, acme
    ):
        ToolPolicy.objects.create(
            tenant=acme.tenant, name="links-ok", tool="slack.post_message", allow_slack_markup=True
        )

        submitted = _submit(acme, "slack.post_message", {"channel": "#general", "text": PHISH}).json()

        assert submitted["risk"] == "high"
        assert _change(submitted["preview"], "as Slack shows it") == (
            "Please verify: https://sso.acme.example/verify (→ https://evil.example) @channel"
        )
        assert messages.NOTE_MARKUP.format(policy="links-ok") in submitted["preview"]["notes"]
        # The policy changing after the preview does not change what the approved proposal sends.
        ToolPolicy.objects.filter(name="links-ok").update(allow_slack_markup=False)
        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            rsps.add(
                responses.POST, f"{SLACK}/chat.postMessage", json={"ok": True, "channel": "C1", "ts": "1.2"}
            )
            _approve_and_commit(acme, submitted["id"])
            assert _posted(rsps) == [
                {
                    "channel": "#general",
                    "text": _change(submitted["preview"], "text"),
                    "metadata": _tag(f"acme-proposal-{submitted['id']}"),
                }
            ]
        assert _change(submitted["preview"], "text") == PHISH

    def test_the_review_page_shows_the_link_target_and_the_mention(self, acme):
        ToolPolicy.objects.create(
            tenant=acme.tenant, name="links-ok", tool="slack.post_message", allow_slack_markup=True
        )
        proposal_id = _submit(acme, "slack.post_message", {"channel": "#general", "text": PHISH}).json()["id"]
        client = Client()
        client.force_login(acme.reviewer)

        page = client.get(f"/proposals/{proposal_id}/").content.decode()

        assert "https://sso.acme.example/verify (→ https://evil.example) @channel" in page
        assert "risk-high" in page


# --- item 2: the exact args with every non-printable-ASCII character visible ------------------------------


@pytest.mark.django_db
class TestExactArgsOnTheReviewPage:
    def test_a_homoglyph_is_shown_as_its_escape_beside_plain_ascii(self, acme):
        # "paypal" with a Cyrillic a (U+0430) for its first a
        proposal_id = _submit(
            acme, "slack.post_message", {"channel": "#general", "text": "Log in at p\u0430ypal.com now"}
        ).json()["id"]
        client = Client()
        client.force_login(acme.reviewer)

        page = client.get(f"/proposals/{proposal_id}/").content.decode()
        args_block = page.split('aria-label="Arguments as JSON"', 1)[1].split("</pre>", 1)[0]

        assert (
            'Log in at p<mark class="esc" title="U+0430 CYRILLIC SMALL LETTER A (\u0430)">\\u0430</mark>ypal.com now'
            in (args_block)
        )
        assert "\u0430" not in args_block.replace("(\u0430)", "")  # the glyph only in the mark's title

    def test_a_typed_backslash_u_is_not_taken_for_an_escape(self, acme):
        proposal_id = _submit(
            acme, "slack.post_message", {"channel": "#general", "text": "path C:\\u0430dmin"}
        ).json()["id"]
        client = Client()
        client.force_login(acme.reviewer)

        page = client.get(f"/proposals/{proposal_id}/").content.decode()

        assert "C:\\\\u0430dmin" in page
        assert '<mark class="esc" title="U+0430' not in page


# --- item 4: the workflow under each step's own policy ---------------------------------------------------

DIGEST = {
    "customer_email": "dana@example.com",
    "channel": "#accounts",
    "summary": "Renewal <!here> signed & done",
}


def _customer(rsps: responses.RequestsMock, users: list[dict[str, Any]] | None = None) -> None:
    rsps.add(
        responses.GET,
        f"{CRM}/api/v2/users/search.json",
        json={"users": [{"id": 501, "name": "Dana <!channel> Scully"}] if users is None else users},
    )


@pytest.mark.django_db
class TestWorkflowUnderItsStepsPolicies:
    def test_a_paused_slack_tool_refuses_the_workflow_at_intake_in_that_policys_words(self, acme):
        ToolPolicy.objects.create(
            tenant=acme.tenant, name="slack-paused", tool="slack.post_message", max_per_hour=0
        )

        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            _customer(rsps)
            response = _submit(acme, "workflow.customer_update_digest", DIGEST)
            sent = len(rsps.calls)

        assert response.status_code == 403
        assert response.json()["policy"] == "slack-paused"
        assert response.json()["detail"] == policy.TOOL_PAUSED.format(tool="slack.post_message")
        assert sent == 0  # refused before the CRM was read
        assert not Proposal.objects.exists()

    def test_a_card_number_in_the_summary_is_refused_by_the_slack_tools_rule(self, acme):
        response = _submit(
            acme, "workflow.customer_update_digest", {**DIGEST, "summary": "card 4111.1111.1111.1111"}
        )

        assert response.status_code == 403
        assert response.json()["check"] == policy.CARD_NUMBER

    def test_an_unknown_customer_is_a_400_at_intake(self, acme):
        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            _customer(rsps, users=[])
            response = _submit(acme, "workflow.customer_update_digest", DIGEST)

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_args"
        assert response.json()["errors"][0]["loc"] == ["args", "customer_email"]

    def test_the_preview_shows_the_exact_text_with_the_customers_name_and_slack_receives_it(self, acme):
        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            _customer(rsps)
            submitted = _submit(acme, "workflow.customer_update_digest", DIGEST).json()

        text = "Customer update: Dana &lt;!channel&gt; Scully (CRM #501): Renewal &lt;!here&gt; signed &amp; done"
        assert _change(submitted["preview"], "step 2: post to Slack") == f"#accounts: {text}"
        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            # The CRM renamed the customer since: the approved text is sent, not one rendered again.
            _customer(rsps, users=[{"id": 501, "name": "Someone Else"}])
            rsps.add(
                responses.POST, f"{SLACK}/chat.postMessage", json={"ok": True, "channel": "C9", "ts": "1.1"}
            )
            rsps.add(
                responses.POST,
                f"{CRM}/api/v2/tickets.json",
                status=201,
                json={"ticket": {"id": 900, "status": "new", "updated_at": "2026-11-23T10:00:00Z"}},
            )
            _approve_and_commit(acme, submitted["id"])
            assert _posted(rsps) == [
                {
                    "channel": "#accounts",
                    "text": text,
                    "metadata": _tag(f"acme-proposal-{submitted['id']}-step-1"),
                }
            ]

    def test_the_slack_step_takes_its_channels_rate_limit_and_resumes_after_it(self, acme, settings):
        settings.ACME_RATE_LIMITS = {"slack.post_message": [{"per": ["channel"], "rate": 0.01, "burst": 1}]}
        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            _customer(rsps)
            submitted = _submit(acme, "workflow.customer_update_digest", DIGEST).json()
            rsps.add(
                responses.POST, f"{SLACK}/chat.postMessage", json={"ok": True, "channel": "C9", "ts": "1.1"}
            )
            # A slack.post_message proposal to the same channel takes the channel's one token first.
            plain = services.proposal_submit(
                agent=acme.agent,
                tool="slack.post_message",
                args={"channel": "#accounts", "text": "hi"},
                where=API,
            ).proposal
            services.proposal_approve(proposal=plain, reviewer=acme.reviewer, where=API)
            services.proposal_commit(proposal_id=plain.pk)
            _customer(rsps)
            response = acme.reviewer_client.post(
                f"/api/v1/proposals/{submitted['id']}/approve/", {}, format="json"
            )
            assert response.status_code == 202
            result = services.proposal_commit(proposal_id=submitted["id"])

        assert result.outcome == "deferred"
        proposal = Proposal.objects.get(pk=submitted["id"])
        assert proposal.status == Status.APPROVED and "rate limit" in proposal.status_reason
        assert list(SagaStep.objects.filter(proposal=proposal).values_list("name", flat=True)) == [
            "lookup_customer"
        ]

    def test_the_slack_tools_hourly_limit_counts_workflow_posts(self, acme):
        ToolPolicy.objects.create(
            tenant=acme.tenant, name="slack-hourly", tool="slack.post_message", max_per_hour=1
        )
        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            _customer(rsps)
            assert _submit(acme, "workflow.customer_update_digest", DIGEST).status_code == 201

        response = _submit(acme, "slack.post_message", {"channel": "#accounts", "text": "hi"})

        assert response.status_code == 429
        assert response.json()["policy"] == "slack-hourly"


# --- item 5: revoking an agent ----------------------------------------------------------------------------


def _pending(party: Any, text: str = "hi") -> Proposal:
    return services.proposal_submit(
        agent=party.agent, tool="slack.post_message", args={"channel": "#general", "text": text}, where=API
    ).proposal


@pytest.mark.django_db
class TestRevokingAnAgent:
    def test_deactivation_cancels_its_pending_proposals_audited_without_a_webhook(self, acme):
        AgentCredential.objects.filter(pk=acme.agent.pk).update(webhook_url="https://agent.example/hooks")
        acme.agent.refresh_from_db()
        first, second = _pending(acme, "one"), _pending(acme, "two")
        committed_elsewhere = services.proposal_approve(
            proposal=_pending(acme, "three"), reviewer=acme.reviewer, where=API
        )

        cancelled = services.agent_deactivate(agent=acme.agent, by=acme.reviewer, where=API)

        assert cancelled == 2
        for proposal in (first, second):
            proposal.refresh_from_db()
            assert proposal.status == Status.CANCELLED
            assert proposal.status_reason == services.AGENT_REVOKED_REASON
        committed_elsewhere.refresh_from_db()
        assert committed_elsewhere.status == Status.APPROVED  # refused at its commit instead (below)
        assert (
            AuditEvent.objects.filter(action="proposal.cancelled", data__reason="agent_deactivated").count()
            == 2
        )
        assert AuditEvent.objects.filter(action="agent.deactivated", subject_id=str(acme.agent.pk)).exists()
        # The one webhook is the approval's; the cancellations sent none.
        assert list(WebhookDelivery.objects.values_list("event", flat=True)) == ["proposal.decided"]
        assert not AgentCredential.objects.get(pk=acme.agent.pk).is_active

    def test_an_approved_proposal_of_a_revoked_agent_is_refused_at_its_commit(self, acme):
        proposal = services.proposal_approve(proposal=_pending(acme), reviewer=acme.reviewer, where=API)
        services.agent_deactivate(agent=acme.agent, by=None, where=API)

        with responses.RequestsMock(assert_all_requests_are_fired=True):  # nothing may be sent
            assert services.proposal_commit(proposal_id=proposal.pk).outcome == "noop"

        proposal.refresh_from_db()
        assert proposal.status == Status.FAILED
        assert "deactivated" in proposal.status_reason
        assert AuditEvent.objects.filter(
            action="proposal.commit_refused", data__reason="agent_revoked"
        ).exists()

    def test_approving_a_pending_proposal_of_an_inactive_agent_is_refused_with_the_reason(self, acme):
        proposal = _pending(acme)
        AgentCredential.objects.filter(pk=acme.agent.pk).update(is_active=False)  # not through the service

        response = acme.reviewer_client.post(f"/api/v1/proposals/{proposal.pk}/approve/", {}, format="json")

        assert response.status_code == 409
        assert response.json() == {
            "error": "invalid_state",
            "status": "pending",
            "detail": errors.AGENT_REVOKED.format(agent=acme.agent.name),
        }
        proposal.refresh_from_db()
        assert proposal.status == Status.PENDING and not proposal.decisions.exists()

    def test_the_browser_says_why(self, acme):
        proposal = _pending(acme)
        AgentCredential.objects.filter(pk=acme.agent.pk).update(is_active=False)
        client = Client()
        client.force_login(acme.reviewer)

        response = client.post(f"/proposals/{proposal.pk}/approve/", {"comment": ""})

        assert response.status_code == 409
        assert "has been deactivated" in response.content.decode()

    def test_the_admins_checkbox_goes_through_the_service(self, acme, admin_user):
        proposal = _pending(acme)
        model_admin = admin.site._registry[AgentCredential]
        request = RequestFactory().post("/admin/")
        request.user = admin_user
        agent = AgentCredential.objects.get(pk=acme.agent.pk)
        form_class = model_admin.get_form(request, agent, change=True)
        data = {
            "tenant": acme.tenant.pk,
            "name": agent.name,
            "allowed_tools": json.dumps(agent.allowed_tools),
        }
        form = form_class(data, instance=agent)  # is_active left unticked
        assert form.is_valid(), form.errors

        model_admin.save_model(request, form.save(commit=False), form, change=True)

        proposal.refresh_from_db()
        assert proposal.status == Status.CANCELLED
        assert not AgentCredential.objects.get(pk=acme.agent.pk).is_active
