"""Slack approvals (issue 19 parts 1 and 6, contract section 8): a pending proposal is posted to its
tenant's review channel, a signed click decides through the same services as the web UI, and the message
follows the proposal to its outcome. Slack is a ``responses`` stand-in; the outbox is drained as the
worker's housekeeping would (RQ runs the jobs in-process in the tests)."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any, cast
from urllib.parse import urlencode

import pytest
import responses
from django.utils import timezone
from slack_sdk.signature import SignatureVerifier

from adapters.models import Connection
from approvals import outbox
from approvals.models import Decision, Membership, OutboxMessage, Proposal, SlackPost, Status
from approvals.slack import interactions
from audit.models import AuditEvent
from tests.conftest import own_connection

SLACK = "https://acme.slack.test/api"
SECRET = "acme-slack-signing-secret"
TEAM = "T0ACME"
REVIEWER = "U0REVIEWER"
URL = "/api/v1/slack/interactions/"


@pytest.fixture(autouse=True)
def no_channel_limit(settings: Any) -> None:
    settings.ACME_RATE_LIMITS = {"slack.post_message": []}


@pytest.fixture
def slack(acme: Any, fast_retries: Any, sleeps: Any) -> Any:
    """acme's own Slack (team learned with auth.test), its reviewer mapped to a Slack user."""
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, f"{SLACK}/auth.test", json={"ok": True, "team_id": TEAM, "user_id": "UBOT"})
        own_connection(
            "acme",
            "slack",
            base_url=SLACK,
            token="xoxb-acme",
            signing_secret=SECRET,
            review_channel="#approvals",
        )
    Membership.objects.filter(user=acme.reviewer, tenant=acme.tenant).update(slack_user_id=REVIEWER)
    return acme


def _submit(party: Any, text: str = "hello") -> str:
    response = party.agent_client.post(
        "/api/v1/proposals/",
        {"tool": "slack.post_message", "args": {"channel": "#general", "text": text}},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return str(response.json()["id"])


def _calls(rsps: responses.RequestsMock, method: str) -> list[dict[str, Any]]:
    return [
        json.loads(cast(bytes, c.request.body))
        for c in rsps.calls
        if str(c.request.url).endswith("/" + method)
    ]


def _signed(
    client: Any, payload: dict[str, Any], *, secret: str = SECRET, age: int = 0, signature: str | None = None
) -> Any:
    body = urlencode({"payload": json.dumps(payload)})
    timestamp = str(int(time.time()) - age)
    sig = signature or SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return client.post(
        URL,
        data=body,
        content_type="application/x-www-form-urlencoded",
        HTTP_X_SLACK_REQUEST_TIMESTAMP=timestamp,
        HTTP_X_SLACK_SIGNATURE=sig,
    )


def _click(
    proposal: Proposal, action: str, *, user: str = REVIEWER, value: str | None = None
) -> dict[str, Any]:
    return {
        "type": "block_actions",
        "team": {"id": TEAM},
        "user": {"id": user},
        "channel": {"id": "C0APPROVALS"},
        "trigger_id": "trigger-1",
        "container": {"type": "message", "message_ts": "100.1", "channel_id": "C0APPROVALS"},
        "actions": [{"action_id": action, "value": value or f"{proposal.pk}:{proposal.args_hash}"}],
    }


def _ok(rsps: responses.RequestsMock, *methods: str) -> None:
    for method in methods:
        rsps.add(
            responses.POST, f"{SLACK}/{method}", json={"ok": True, "channel": "C0APPROVALS", "ts": "100.1"}
        )


def _history(rsps: responses.RequestsMock, *, messages: list[dict[str, Any]]) -> None:
    rsps.add(
        responses.GET,
        f"{SLACK}/conversations.list",
        json={"ok": True, "channels": [{"id": "C0APPROVALS", "name": "approvals"}]},
    )
    rsps.add(
        responses.GET,
        f"{SLACK}/conversations.history",
        json={"ok": True, "messages": messages, "has_more": False},
    )


def _posted(proposal_id: str) -> None:
    with responses.RequestsMock() as rsps:
        _ok(rsps, "chat.postMessage")
        outbox.drain()


@pytest.mark.django_db
class TestTheLoop:
    def test_connection_learns_its_team_with_auth_test(self, slack):
        assert Connection.objects.get(tenant="acme", system="slack").team_id == TEAM

    def test_a_pending_proposal_is_posted_with_its_buttons(self, slack):
        proposal_id = _submit(slack, "deploy done")
        proposal = Proposal.objects.get(pk=proposal_id)

        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            _ok(rsps, "chat.postMessage")
            outbox.drain()
            posted = _calls(rsps, "chat.postMessage")
            assert rsps.calls[0].request.headers["Authorization"] == "Bearer xoxb-acme"

        assert len(posted) == 1 and posted[0]["channel"] == "#approvals"
        actions = next(b for b in posted[0]["blocks"] if b["type"] == "actions")
        buttons = {e["text"]["text"]: e for e in actions["elements"] if e["type"] == "button"}
        assert set(buttons) == {"Approve", "Reject", "Request changes", "Open"}
        assert (
            buttons["Approve"]["value"] == buttons["Reject"]["value"] == f"{proposal_id}:{proposal.args_hash}"
        )
        assert proposal_id in buttons["Open"]["url"]
        assert any("deploy done" in json.dumps(b) for b in posted[0]["blocks"])
        assert any("low" in json.dumps(b) for b in posted[0]["blocks"])  # the risk
        post = SlackPost.objects.get(proposal_id=proposal_id)
        assert (post.state, post.ts, post.channel) == ("posted", "100.1", "C0APPROVALS")

        # A second drain or re-dispatch never posts it again.
        with responses.RequestsMock() as rsps:
            from approvals.slack import deliver

            assert deliver.sync(proposal_id) == "unchanged"
            assert len(rsps.calls) == 0

    def test_signed_click_approves_commits_and_updates_the_message(self, slack, client):
        proposal_id = _submit(slack)
        _posted(proposal_id)
        proposal = Proposal.objects.get(pk=proposal_id)

        response = _signed(client, _click(proposal, "approve"))

        assert response.status_code == 200
        proposal.refresh_from_db()
        assert proposal.status == Status.APPROVED
        decision = Decision.objects.get(proposal=proposal)
        assert (decision.reviewer, decision.channel, decision.args_hash) == (
            slack.reviewer,
            "slack",
            proposal.args_hash,
        )
        event = AuditEvent.objects.get(action="proposal.approved", subject_id=proposal_id)
        assert (event.channel, event.actor_label) == ("slack", "acme-reviewer")

        with responses.RequestsMock() as rsps:
            rsps.add(
                responses.POST,
                f"{SLACK}/chat.postMessage",
                json={"ok": True, "channel": "C0GENERAL", "ts": "200.1"},
            )
            _ok(rsps, "chat.update")
            outbox.drain()  # the commit, then the message's updates
            outbox.drain()
            updates = _calls(rsps, "chat.update")

        proposal.refresh_from_db()
        assert proposal.status == Status.COMMITTED
        assert updates and updates[-1]["ts"] == "100.1" and updates[-1]["channel"] == "C0APPROVALS"
        final = json.dumps(updates[-1]["blocks"])
        assert "committed" in final and "acme-reviewer" in final
        assert '"Approve"' not in final  # no buttons once decided

    def test_reject_opens_a_modal_whose_submission_decides_with_the_reason(self, slack, client):
        proposal_id = _submit(slack)
        _posted(proposal_id)
        proposal = Proposal.objects.get(pk=proposal_id)

        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            _ok(rsps, "views.open")
            assert _signed(client, _click(proposal, "reject")).status_code == 200
            # Open by the time Slack has its answer, no worker needed: the trigger_id lives 3 seconds.
            opened = _calls(rsps, "views.open")
            outbox.drain()
        assert opened[0]["trigger_id"] == "trigger-1"
        view = opened[0]["view"]
        assert Proposal.objects.get(pk=proposal_id).status == Status.PENDING  # nothing decided yet

        submission = {
            "type": "view_submission",
            "team": {"id": TEAM},
            "user": {"id": REVIEWER},
            "view": {
                "callback_id": view["callback_id"],
                "private_metadata": view["private_metadata"],
                "state": {
                    "values": {
                        "reason": {"reason_input": {"type": "plain_text_input", "value": "Wrong channel"}}
                    }
                },
            },
        }
        assert _signed(client, submission).status_code == 200

        proposal.refresh_from_db()
        assert proposal.status == Status.REJECTED
        decision = Decision.objects.get(proposal=proposal)
        assert (decision.reason, decision.channel) == ("Wrong channel", "slack")
        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            _ok(rsps, "chat.update")
            outbox.drain()
            assert "Wrong channel" in json.dumps(_calls(rsps, "chat.update")[0]["blocks"])

    def test_a_modal_slack_will_not_open_tells_the_reviewer_to_click_again(self, slack, client):
        proposal_id = _submit(slack)
        _posted(proposal_id)
        proposal = Proposal.objects.get(pk=proposal_id)

        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            rsps.add(responses.POST, f"{SLACK}/views.open", json={"ok": False, "error": "expired_trigger_id"})
            _ok(rsps, "chat.postEphemeral")
            assert _signed(client, _click(proposal, "reject")).status_code == 200
            outbox.drain()
            told = _calls(rsps, "chat.postEphemeral")
        assert told[0]["text"] == interactions.MODAL_FAILED
        assert Proposal.objects.get(pk=proposal_id).status == Status.PENDING
        assert not Decision.objects.filter(proposal=proposal).exists()

    def test_request_changes_opens_a_modal_whose_submission_sends_the_proposal_back(self, slack, client):
        proposal_id = _submit(slack)
        _posted(proposal_id)
        proposal = Proposal.objects.get(pk=proposal_id)

        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            _ok(rsps, "views.open")
            assert _signed(client, _click(proposal, "request_changes")).status_code == 200
            outbox.drain()
            view = _calls(rsps, "views.open")[0]["view"]
        assert view["callback_id"] == "changes_reason"

        submission = {
            "type": "view_submission",
            "team": {"id": TEAM},
            "user": {"id": REVIEWER},
            "view": {
                "callback_id": view["callback_id"],
                "private_metadata": view["private_metadata"],
                "state": {"values": {"reason": {"reason_input": {"value": "Post it in #ops instead"}}}},
            },
        }
        assert _signed(client, submission).status_code == 200

        proposal.refresh_from_db()
        assert proposal.status == Status.CHANGES_REQUESTED
        assert "Post it in #ops instead" in proposal.status_reason
        assert Decision.objects.get(proposal=proposal).channel == "slack"
        # The message follows it, and remembers that it did ("changes_requested" is 17 characters).
        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            _ok(rsps, "chat.update")
            outbox.drain()
        assert SlackPost.objects.get(proposal=proposal).shown == Status.CHANGES_REQUESTED

    # Spaces, or invisible characters alone (zero-width space, word joiner, Braille blank): no reason.
    @pytest.mark.parametrize("blank", ["  ", "\u200b\u2060\u2800"])
    def test_a_submission_without_a_reason_is_refused_in_the_modal(self, slack, client, blank):
        proposal = Proposal.objects.get(pk=_submit(slack))
        submission = {
            "type": "view_submission",
            "team": {"id": TEAM},
            "user": {"id": REVIEWER},
            "view": {
                "callback_id": "reject_reason",
                "private_metadata": f"{proposal.pk}:{proposal.args_hash}:C0APPROVALS",
                "state": {"values": {"reason": {"reason_input": {"value": blank}}}},
            },
        }
        response = _signed(client, submission)
        assert response.json()["response_action"] == "errors"
        assert Decision.objects.count() == 0


@pytest.mark.django_db
class TestRefusals:
    @pytest.mark.parametrize(
        "how",
        ["forged", "stale", "unsigned", "other-secret"],
    )
    def test_a_forged_or_stale_signature_is_a_401_and_records_nothing(self, slack, client, how):
        proposal = Proposal.objects.get(pk=_submit(slack))
        events = AuditEvent.objects.count()
        outbox_rows = OutboxMessage.objects.count()
        payload = _click(proposal, "approve")

        if how == "forged":
            response = _signed(client, payload, signature="v0=" + "0" * 64)
        elif how == "stale":
            response = _signed(client, payload, age=6 * 60)
        elif how == "other-secret":
            response = _signed(client, payload, secret="someone-elses-secret")
        else:
            response = client.post(
                URL,
                data=urlencode({"payload": json.dumps(payload)}),
                content_type="application/x-www-form-urlencoded",
            )

        assert response.status_code == 401
        assert response.json()["detail"] == interactions.UNSIGNED
        assert Proposal.objects.get(pk=proposal.pk).status == Status.PENDING
        assert Decision.objects.count() == 0
        assert (AuditEvent.objects.count(), OutboxMessage.objects.count()) == (events, outbox_rows)

    def test_a_payload_naming_another_workspace_is_refused(self, slack, client):
        proposal = Proposal.objects.get(pk=_submit(slack))
        payload = {**_click(proposal, "approve"), "team": {"id": "T0OTHER"}}
        assert _signed(client, payload).status_code == 401
        assert Decision.objects.count() == 0

    def test_a_click_by_an_unmapped_user_records_nothing_and_is_told_why(self, slack, client):
        proposal = Proposal.objects.get(pk=_submit(slack))
        _posted(str(proposal.pk))
        events = AuditEvent.objects.count()

        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            _ok(rsps, "chat.postEphemeral")
            assert _signed(client, _click(proposal, "approve", user="U0STRANGER")).status_code == 200
            outbox.drain()
            told = _calls(rsps, "chat.postEphemeral")

        assert told == [{"channel": "C0APPROVALS", "user": "U0STRANGER", "text": interactions.NOT_MAPPED}]
        assert Proposal.objects.get(pk=proposal.pk).status == Status.PENDING
        assert Decision.objects.count() == 0 and AuditEvent.objects.count() == events

    def test_the_requester_cannot_approve_their_own_proposal_from_slack(self, slack, client):
        from approvals.services import proposal_submit  # noqa: F401  (on_behalf_of through the API below)

        Membership.objects.filter(user=slack.reviewer, tenant=slack.tenant).update(slack_user_id="")
        Membership.objects.filter(user=slack.requester, tenant=slack.tenant).update(
            slack_user_id="U0REQ", role="reviewer"
        )
        response = slack.agent_client.post(
            "/api/v1/proposals/",
            {
                "tool": "slack.post_message",
                "args": {"channel": "#general", "text": "mine"},
                "on_behalf_of": "acme-requester",
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
        proposal = Proposal.objects.get(pk=response.json()["id"])
        assert proposal.on_behalf_of == slack.requester

        with responses.RequestsMock() as rsps:
            _ok(rsps, "chat.postMessage", "chat.postEphemeral")
            assert _signed(client, _click(proposal, "approve", user="U0REQ")).status_code == 200
            outbox.drain()
            told = _calls(rsps, "chat.postEphemeral")
        assert Decision.objects.count() == 0
        assert "your own behalf" in told[0]["text"]

    def test_a_double_click_decides_once(self, slack, client):
        proposal = Proposal.objects.get(pk=_submit(slack))
        _posted(str(proposal.pk))

        assert _signed(client, _click(proposal, "approve")).status_code == 200
        assert _signed(client, _click(proposal, "approve")).status_code == 200

        assert Decision.objects.filter(proposal=proposal).count() == 1
        assert AuditEvent.objects.filter(action="proposal.approved", subject_id=str(proposal.pk)).count() == 1
        ephemerals = OutboxMessage.objects.filter(kind="slack", payload__op="ephemeral")
        assert [m.payload["text"] for m in ephemerals] == [
            "This proposal is approved; it can be approved only while pending."
        ]

    def test_a_click_on_args_that_changed_records_nothing(self, slack, client):
        proposal = Proposal.objects.get(pk=_submit(slack))
        response = _signed(client, _click(proposal, "approve", value=f"{proposal.pk}:{'0' * 64}"))
        assert response.status_code == 200
        assert Decision.objects.count() == 0
        assert OutboxMessage.objects.filter(kind="slack", payload__text=interactions.ARGS_CHANGED).exists()


@pytest.mark.django_db
class TestReliableNotifications:
    def test_slack_down_at_submit_does_not_block_intake_and_the_post_is_retried(self, slack, settings):
        settings.ACME_BREAKER_FAILURES = 100  # the outage below does not open the breaker (its own tests)
        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, f"{SLACK}/chat.postMessage", status=503)
            proposal_id = _submit(slack)  # 201: intake is not held by Slack
            outbox.drain()
            assert len(_calls(rsps, "chat.postMessage")) >= 1

        post = SlackPost.objects.get(proposal_id=proposal_id)
        assert (post.state, post.ts, post.attempts) == ("pending", "", 1)
        assert "503" in post.last_error or "gave up" in post.last_error
        retry = OutboxMessage.objects.filter(kind="slack", dispatched_at__isnull=True).get()
        assert retry.payload == {"op": "sync", "tenant": "acme", "proposal_id": proposal_id}
        assert retry.available_at > post.updated_at  # backoff: not due at once

        # Slack is back; the retry comes due. An earlier attempt may have posted: the channel is read first.
        OutboxMessage.objects.filter(pk=retry.pk).update(available_at=retry.created_at)
        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            _history(rsps, messages=[])
            _ok(rsps, "chat.postMessage")
            outbox.drain()
            posted = _calls(rsps, "chat.postMessage")
        post.refresh_from_db()
        assert (post.state, post.ts) == ("posted", "100.1")
        assert posted[0]["metadata"] == {
            "event_type": "acme_proposal",
            "event_payload": {"key": f"acme-review-{proposal_id}"},
        }

    def test_a_post_whose_answer_was_lost_is_found_again_not_posted_twice(self, slack, settings):
        settings.ACME_BREAKER_FAILURES = 100
        with responses.RequestsMock() as rsps:
            rsps.add(
                responses.POST, f"{SLACK}/chat.postMessage", status=502
            )  # Slack posted; the answer was lost
            proposal_id = _submit(slack)
            outbox.drain()
        OutboxMessage.objects.filter(dispatched_at__isnull=True).update(available_at=timezone.now())

        tagged = {
            "type": "message",
            "ts": "150.5",
            "text": "x",
            "metadata": {
                "event_type": "acme_proposal",
                "event_payload": {"key": f"acme-review-{proposal_id}"},
            },
        }
        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            _history(rsps, messages=[tagged])
            _ok(rsps, "chat.update")
            outbox.drain()
            updated = _calls(rsps, "chat.update")
            assert _calls(rsps, "chat.postMessage") == []

        post = SlackPost.objects.get(proposal_id=proposal_id)
        assert (post.state, post.ts, post.channel) == ("posted", "150.5", "C0APPROVALS")
        assert updated[0]["ts"] == "150.5"

    def test_a_tenant_without_a_review_channel_gets_no_post(self, acme):
        _submit(acme)
        assert SlackPost.objects.count() == 0
        assert not OutboxMessage.objects.filter(kind="slack").exists()


@pytest.mark.django_db(transaction=True)
def test_the_whole_loop_against_the_sandbox_slack_and_its_click_page(
    acme, live_server, settings, monkeypatch
):
    """The sandbox Slack (``make run``'s) as the stand-in: auth.test, the post with its buttons, a click from
    its demo page signed and sent to the gateway, the message updated."""
    import threading

    import requests

    from adapters.sandbox import slack_review
    from adapters.sandbox.server import make_server

    server = make_server("127.0.0.1", 0, crm_token="sandbox", slack_token="sandbox")
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    sandbox = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("SLACK_SANDBOX_REQUEST_URL", f"{live_server.url}{URL}")
    settings.SLACK_API_URL = f"{sandbox}/slack/api"
    try:
        own_connection(
            "acme",
            "slack",
            base_url=f"{sandbox}/slack/api",
            token="sandbox",
            signing_secret=slack_review.signing_secret(),
            review_channel="#general",
        )
        assert Connection.objects.get(tenant="acme", system="slack").team_id == slack_review.TEAM_ID
        Membership.objects.filter(user=acme.reviewer, tenant=acme.tenant).update(
            slack_user_id=slack_review.DEMO_USER
        )
        proposal_id = _submit(acme, "from the sandbox")
        outbox.drain()
        message = next(m for m in server.store.messages if m.get("blocks"))
        assert "Approve" in requests.get(f"{sandbox}/slack/demo", timeout=5).text

        value = f"{proposal_id}:{Proposal.objects.get(pk=proposal_id).args_hash}"
        clicked = requests.post(
            f"{sandbox}/slack/demo/click",
            data={"channel": message["channel"], "ts": message["ts"], "action_id": "approve", "value": value},
            allow_redirects=False,
            timeout=10,
        )
        assert clicked.status_code == 303
        assert slack_review._state(server.store)["sent"][-1]["status"] == 200
        assert Proposal.objects.get(pk=proposal_id).status in (Status.APPROVED, Status.COMMITTED)
        outbox.drain()
        outbox.drain()
        assert Proposal.objects.get(pk=proposal_id).status == Status.COMMITTED
        assert "committed" in json.dumps(message["blocks"])  # chat.update replaced them
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.django_db
def test_the_agents_text_is_shown_in_the_message_never_interpreted(slack):
    """An agent's proposal must not ping the review channel or dress a link up as another one."""
    proposal_id = _submit(slack, "Hi <!channel> see <https://evil.example|https://sso.acme.example>")

    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        _ok(rsps, "chat.postMessage")
        outbox.drain()
        sent = json.dumps(_calls(rsps, "chat.postMessage")[0])  # the fallback text and the blocks

    assert SlackPost.objects.get(proposal_id=proposal_id).state == "posted"
    assert "<!channel>" not in sent and "<https://evil.example" not in sent
    assert "&lt;!channel&gt;" in sent


@pytest.mark.django_db
def test_seed_demo_connects_the_demo_tenant_to_the_sandbox_slack(settings):
    from django.core.management import call_command

    from adapters.sandbox import slack_review

    settings.DEBUG = True  # seed_demo's accounts have a published password: development only
    call_command("seed_demo", stdout=__import__("io").StringIO())

    row = Connection.objects.get(tenant="acme", system="slack")
    assert (row.team_id, row.review_channel) == (slack_review.TEAM_ID, "#general")
    assert Membership.objects.get(user__username="reviewer", tenant__slug="acme").slack_user_id == (
        slack_review.DEMO_USER
    )
    assert SlackPost.objects.filter(proposal__status="pending").exists()  # the samples wait in Slack


@pytest.mark.django_db
class TestReminders:
    def test_a_pending_proposal_is_reminded_once_in_its_message_thread(self, slack, settings):
        from approvals import notifications

        settings.ACME_REMIND_AFTER = 60
        proposal_id = _submit(slack)
        _posted(proposal_id)
        Proposal.objects.filter(pk=proposal_id).update(created_at=timezone.now() - timedelta(hours=2))

        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            _ok(rsps, "chat.postMessage")
            assert notifications.remind_due() == 1
            assert notifications.remind_due() == 0  # a second pass (another worker, a restart) claims nothing
            outbox.drain()
            replies = _calls(rsps, "chat.postMessage")
        assert len(replies) == 1
        assert replies[0]["thread_ts"] == "100.1" and replies[0]["channel"] == "C0APPROVALS"
        assert replies[0]["text"].startswith("Reminder: still waiting for a review")

    def test_a_proposal_decided_before_its_reminder_left_gets_no_reply(self, slack, settings, client):
        from approvals import notifications

        settings.ACME_REMIND_AFTER = 60
        proposal_id = _submit(slack)
        _posted(proposal_id)
        Proposal.objects.filter(pk=proposal_id).update(created_at=timezone.now() - timedelta(hours=2))
        assert notifications.remind_due() == 1
        Proposal.objects.filter(pk=proposal_id).update(status=Status.CANCELLED)

        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            _ok(rsps, "chat.postMessage", "chat.update")
            outbox.drain()
            assert not [c for c in _calls(rsps, "chat.postMessage") if "thread_ts" in c]


@pytest.mark.django_db
def test_an_unsigned_request_costs_one_query_however_many_workspaces(
    slack, client, django_assert_max_num_queries
):
    from adapters import connections

    for n in range(20):
        Connection.objects.create(
            tenant=f"other-{n}",
            system="slack",
            base_url=SLACK,
            token_encrypted=connections.encrypt("xoxb-other"),
            signing_secret_encrypted=connections.encrypt(f"secret-{n}"),
            team_id=f"T{n}",
        )
    proposal = Proposal.objects.get(pk=_submit(slack))
    with django_assert_max_num_queries(1):
        response = _signed(client, _click(proposal, "approve"), signature="v0=" + "0" * 64)
    assert response.status_code == 401
