"""The REST API of contract 3, with the CRM mocked at the adapter boundary (``responses``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import responses
from django.conf import settings

from approvals.models import Proposal, Status
from audit.models import AuditEvent
from tests.conftest import own_connection

TICKET = {
    "subject": "Printer on fire",
    "description": "Smoke from the printer on floor 3.",
    "priority": "critical",
    "customer_email": "Alice@Example.com",
}
TICKETS_URL = f"{settings.CRM_BASE_URL}/api/v2/tickets.json"


def submit(
    party: Any,
    args: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    tool: str = "crm.create_ticket",
    **extra: Any,
):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    body = {
        "tool": tool,
        "args": args if args is not None else TICKET,
        "rationale": "customer asked",
        **extra,
    }
    return party.agent_client.post("/api/v1/proposals/", body, format="json", **headers)


def crm_created(rsps: responses.RequestsMock, ticket_id: int = 4242) -> None:
    rsps.add(
        responses.POST,
        TICKETS_URL,
        status=201,
        json={
            "ticket": {
                "id": ticket_id,
                "subject": "Printer on fire",
                "priority": "urgent",
                "status": "new",
                "created_at": "2026-11-23T10:00:00Z",
                "updated_at": "2026-11-23T10:00:00Z",
            }
        },
    )


@pytest.mark.django_db
class TestSubmit:
    def test_creates_a_pending_proposal_with_normalized_args_and_preview(self, acme):
        response = submit(acme)

        assert response.status_code == 201, response.content
        body = response.json()
        assert body["status"] == "pending"
        assert body["tenant"] == "acme"
        assert body["args"]["priority"] == "urgent"
        assert body["args"]["customer_email"] == "alice@example.com"
        assert body["preview"]["summary"]
        assert {c["field"] for c in body["preview"]["changes"]} >= {"subject", "priority"}
        assert all(c["before"] is None for c in body["preview"]["changes"])
        assert body["decision"] is None and body["receipt"] is None
        assert body["links"]["review"].endswith(f"/proposals/{body['id']}/")
        assert body["idempotency_key"].startswith("derived-")
        assert AuditEvent.objects.filter(action="proposal.submitted", subject_id=body["id"]).count() == 1

    @pytest.mark.parametrize(
        ("extra", "field"),
        [
            ({"rationale": 123}, "rationale"),
            ({"tool": 5}, "tool"),
            ({"on_behalf_of": 5}, "on_behalf_of"),
        ],
    )
    def test_text_fields_take_strings_only(self, acme, extra, field):
        response = acme.agent_client.post(
            "/api/v1/proposals/", {"tool": "crm.create_ticket", "args": TICKET, **extra}, format="json"
        )

        assert response.status_code == 400, response.content
        assert response.json()["error"] == "invalid_args"
        # A type error, not a lookup of the number's text ("Unknown tool '5'", "unknown person").
        assert response.json()["errors"] == [
            {"loc": [field], "msg": "Not a valid string.", "type": "invalid"}
        ]
        assert not Proposal.objects.exists()

    def test_same_key_same_args_is_a_replay(self, acme):
        first = submit(acme, key="k-1")
        second = submit(acme, dict(TICKET, subject="  Printer on fire "), key="k-1")  # normalizes to the same

        assert first.status_code == 201
        assert second.status_code == 200
        assert second["Idempotent-Replayed"] == "true"
        assert second.json()["id"] == first.json()["id"]
        assert Proposal.objects.count() == 1

    def test_same_key_other_args_is_409(self, acme):
        submit(acme, key="k-1")
        response = submit(acme, dict(TICKET, subject="Something else"), key="k-1")

        assert response.status_code == 409
        assert response.json()["error"] == "idempotency_key_reused"
        assert Proposal.objects.count() == 1

    def test_a_key_is_the_agents_own(self, acme):
        """Another agent of the tenant sending the same key, with the same args or others, makes its own
        proposal: it neither gets the first agent's proposal back (which it may not read) nor learns its id."""
        from approvals.accounts import agent_create

        first = submit(acme, key="order-1").json()
        _, token = agent_create(tenant=acme.tenant, name="second-agent", tools=["*"])
        other = acme.client(token)
        assert other.get(f"/api/v1/proposals/{first['id']}/").status_code == 404

        same = other.post(
            "/api/v1/proposals/",
            {"tool": "crm.create_ticket", "args": TICKET},
            format="json",
            HTTP_IDEMPOTENCY_KEY="order-1",
        )
        changed = other.post(
            "/api/v1/proposals/",
            {"tool": "crm.create_ticket", "args": dict(TICKET, subject="Other")},
            format="json",
            HTTP_IDEMPOTENCY_KEY="order-2",
        )
        first_again = submit(acme, key="order-2")  # and the other way round

        assert same.status_code == 201, same.content
        assert same.json()["id"] != first["id"]
        assert changed.status_code == 201, changed.content
        assert first_again.status_code == 201, first_again.content
        assert first["id"] not in (changed.json()["id"], first_again.json()["id"])
        # Each agent's own key still replays its own proposal.
        replay = other.post(
            "/api/v1/proposals/",
            {"tool": "crm.create_ticket", "args": TICKET},
            format="json",
            HTTP_IDEMPOTENCY_KEY="order-1",
        )
        assert (replay.status_code, replay.json()["id"]) == (200, same.json()["id"])
        assert submit(acme, key="order-1").json()["id"] == first["id"]
        assert Proposal.objects.count() == 4

    def test_same_key_for_someone_else_is_409(self, acme):
        """on_behalf_of decides who may not approve the proposal: under the same key it is another request."""
        first = submit(acme, key="k-obo", on_behalf_of=acme.requester.username)
        response = submit(acme, key="k-obo")

        assert first.status_code == 201
        assert (response.status_code, response.json()["error"]) == (409, "idempotency_key_reused")
        assert submit(acme, key="k-obo", on_behalf_of=acme.requester.username).status_code == 200
        assert Proposal.objects.count() == 1

    def test_without_key_the_derived_key_deduplicates(self, acme):
        assert submit(acme).status_code == 201
        assert submit(acme).status_code == 200
        assert Proposal.objects.count() == 1

    @pytest.mark.parametrize(
        ("args", "field"),
        [
            (dict(TICKET, subject=123), "subject"),
            (dict(TICKET, surprise="x"), "surprise"),
            (dict(TICKET, priority="whenever"), "priority"),
            ({k: v for k, v in TICKET.items() if k != "subject"}, "subject"),
            (dict(TICKET, customer_email="not-an-email"), "customer_email"),
        ],
    )
    def test_invalid_args_name_the_field(self, acme, args, field):
        response = submit(acme, args)

        assert response.status_code == 400
        body = response.json()
        assert body["error"] == "invalid_args"
        assert body["detail"]
        assert any(e["loc"][-1] == field for e in body["errors"]), body
        assert Proposal.objects.count() == 0

    def test_unknown_tool_is_400(self, acme):
        response = submit(acme, tool="crm.delete_everything")

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_args"
        assert "crm.create_ticket" in response.json()["allowed"]

    def test_args_must_be_an_object(self, acme):
        response = acme.agent_client.post(
            "/api/v1/proposals/", {"tool": "crm.create_ticket", "args": [1]}, format="json"
        )

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_args"

    def test_malformed_json_is_400_in_the_error_shape(self, acme):
        response = acme.agent_client.post("/api/v1/proposals/", "{not json", content_type="application/json")

        assert response.status_code == 400
        assert set(response.json()) >= {"error", "detail"}

    def test_tool_outside_the_agents_allowance_is_policy_denied(self, acme):
        acme.agent.allowed_tools = ["slack.post_message"]
        acme.agent.save()

        response = submit(acme)

        assert response.status_code == 403
        assert response.json()["error"] == "policy_denied"
        assert response.json()["policy"] == "allowed_tools"
        assert AuditEvent.objects.filter(action="proposal.denied", result="denied").count() == 1

    def test_people_cannot_submit(self, acme):
        response = acme.reviewer_client.post(
            "/api/v1/proposals/", {"tool": "crm.create_ticket", "args": TICKET}, format="json"
        )

        assert response.status_code == 403

    def test_on_behalf_of_must_be_a_member(self, acme, globex):
        response = submit(acme, on_behalf_of=globex.requester.username)

        assert response.status_code == 400
        assert response.json()["errors"][0]["loc"] == ["on_behalf_of"]


@pytest.mark.django_db
class TestAuth:
    def test_bad_token_is_401(self, acme):
        response = acme.client("agt_nope").get("/api/v1/proposals/")

        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"

    def test_no_token_is_401(self, acme):
        response = acme.client(None).get("/api/v1/proposals/")

        assert response.status_code == 401
        assert response.json()["error"] == "unauthenticated"

    def test_revoked_agent_is_401(self, acme):
        acme.agent.is_active = False
        acme.agent.save()

        assert acme.agent_client.get("/api/v1/proposals/").status_code == 401

    def test_tokens_are_stored_hashed(self, acme):
        acme.agent.refresh_from_db()
        assert acme.agent_token not in acme.agent.token_hash
        assert len(acme.agent.token_hash) == 64


@pytest.mark.django_db
class TestReadAndIsolation:
    def test_another_tenants_proposal_is_404_for_agent_and_reviewer(self, acme, globex):
        pid = submit(acme).json()["id"]

        for client in (globex.agent_client, globex.reviewer_client):
            assert client.get(f"/api/v1/proposals/{pid}/").status_code == 404
            assert client.post(f"/api/v1/proposals/{pid}/approve/", {}, format="json").status_code == 404
            assert client.get(f"/api/v1/proposals/{pid}/receipt/").status_code == 404
        assert globex.reviewer_client.get("/api/v1/proposals/").json()["results"] == []

    def test_list_filters_and_scopes(self, acme):
        submit(acme)
        submit(acme, {"channel": "#support", "text": "hello"}, tool="slack.post_message")

        everything = acme.reviewer_client.get("/api/v1/proposals/").json()["results"]
        slack_only = acme.agent_client.get("/api/v1/proposals/?tool=slack.post_message").json()["results"]
        pending = acme.agent_client.get("/api/v1/proposals/?status=pending").json()["results"]

        assert len(everything) == 2
        assert [p["tool"] for p in slack_only] == ["slack.post_message"]
        assert len(pending) == 2
        assert acme.agent_client.get("/api/v1/proposals/?status=bogus").status_code == 400

    def test_receipt_is_404_until_committed(self, acme):
        pid = submit(acme).json()["id"]

        response = acme.agent_client.get(f"/api/v1/proposals/{pid}/receipt/")

        assert response.status_code == 404
        assert response.json()["error"] == "not_found"


@pytest.mark.django_db
class TestDecide:
    def test_approve_commits_once_with_the_idempotency_key(self, acme, django_capture_on_commit_callbacks):
        pid = submit(acme).json()["id"]

        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            crm_created(rsps, ticket_id=4242)
            with django_capture_on_commit_callbacks(execute=True):
                response = acme.reviewer_client.post(
                    f"/api/v1/proposals/{pid}/approve/", {"comment": "ok"}, format="json"
                )
            assert len(rsps.calls) == 1
            sent = rsps.calls[0].request
            assert sent.headers["Idempotency-Key"] == f"acme-proposal-{pid}"
            assert sent.headers["Authorization"] == f"Bearer {settings.CRM_API_TOKEN}"
            assert json.loads(cast(bytes, sent.body)) == {
                "ticket": {
                    "subject": "Printer on fire",
                    "comment": {"body": "Smoke from the printer on floor 3."},
                    "priority": "urgent",
                    "requester": {"email": "alice@example.com"},
                }
            }

        assert response.status_code == 202
        assert response.json()["decision"]["verdict"] == "approved"
        detail = acme.agent_client.get(f"/api/v1/proposals/{pid}/").json()
        assert detail["status"] == "committed"
        assert detail["receipt"]["external_id"] == "4242"
        receipt = acme.agent_client.get(f"/api/v1/proposals/{pid}/receipt/").json()
        assert receipt["external_id"] == "4242" and receipt["system"] == "crm"

    def test_approve_twice_is_409(self, acme, django_capture_on_commit_callbacks):
        pid = submit(acme).json()["id"]
        with responses.RequestsMock() as rsps:
            crm_created(rsps)
            with django_capture_on_commit_callbacks(execute=True):
                acme.reviewer_client.post(f"/api/v1/proposals/{pid}/approve/", {}, format="json")

        response = acme.reviewer_client.post(f"/api/v1/proposals/{pid}/approve/", {}, format="json")

        assert response.status_code == 409
        assert response.json()["error"] == "invalid_state"

    def test_agent_cannot_approve(self, acme):
        pid = submit(acme).json()["id"]

        response = acme.agent_client.post(f"/api/v1/proposals/{pid}/approve/", {}, format="json")

        assert response.status_code == 403
        assert Proposal.objects.get(pk=pid).status == Status.PENDING

    def test_requester_role_cannot_approve(self, acme):
        pid = submit(acme).json()["id"]
        # The requester sees proposals made on their behalf, but cannot decide on them.
        pid2 = submit(
            acme, dict(TICKET, subject="for requester"), on_behalf_of=acme.requester.username
        ).json()["id"]

        assert (
            acme.client(acme.requester_token)
            .post(f"/api/v1/proposals/{pid}/approve/", {}, format="json")
            .status_code
            == 404
        )
        assert (
            acme.client(acme.requester_token)
            .post(f"/api/v1/proposals/{pid2}/approve/", {}, format="json")
            .status_code
            == 403
        )

    def test_nobody_approves_on_their_own_behalf(self, acme):
        pid = submit(acme, on_behalf_of=acme.reviewer.username).json()["id"]

        response = acme.reviewer_client.post(f"/api/v1/proposals/{pid}/approve/", {}, format="json")

        assert response.status_code == 403
        assert response.json()["error"] == "self_approval_forbidden"

    def test_reject_needs_a_reason_and_never_calls_the_crm(self, acme, django_capture_on_commit_callbacks):
        pid = submit(acme).json()["id"]

        with responses.RequestsMock() as rsps, django_capture_on_commit_callbacks(execute=True):
            missing = acme.reviewer_client.post(f"/api/v1/proposals/{pid}/reject/", {}, format="json")
            rejected = acme.reviewer_client.post(
                f"/api/v1/proposals/{pid}/reject/", {"reason": "duplicate"}, format="json"
            )
            assert len(rsps.calls) == 0

        assert missing.status_code == 400
        assert rejected.status_code == 200
        assert rejected.json()["status"] == "rejected"
        assert rejected.json()["decision"]["reason"] == "duplicate"

    def test_approve_with_no_body_approves_as_proposed(self, acme, django_capture_on_commit_callbacks):
        pid = submit(acme).json()["id"]
        with responses.RequestsMock() as rsps:
            crm_created(rsps)
            with django_capture_on_commit_callbacks(execute=True):
                response = acme.reviewer_client.post(f"/api/v1/proposals/{pid}/approve/")

        assert response.status_code == 202, response.content
        assert Proposal.objects.get(pk=pid).status == Status.COMMITTED

    @pytest.mark.parametrize("body", ["false", "0", '""', "[]", "null", "true", "[1]"])
    def test_an_approval_body_that_is_not_an_object_approves_nothing(self, acme, body):
        """``false`` is not "no body": a client that sends it must not approve by accident."""
        pid = submit(acme).json()["id"]

        response = acme.reviewer_client.post(
            f"/api/v1/proposals/{pid}/approve/", body, content_type="application/json"
        )

        assert response.status_code == 400, response.content
        assert response.json()["error"] == "invalid_request"
        assert Proposal.objects.get(pk=pid).status == Status.PENDING
        assert not Proposal.objects.get(pk=pid).decisions.exists()

    @pytest.mark.parametrize(
        ("path", "body", "field"),
        [
            ("reject", {"reason": 0}, "reason"),
            ("reject", {"reason": 1.5}, "reason"),
            ("approve", {"comment": 42}, "comment"),
        ],
    )
    def test_text_fields_take_strings_only(self, acme, path, body, field):
        """DRF would have stored the number's text: a proposal rejected for the reason "0"."""
        pid = submit(acme).json()["id"]

        response = acme.reviewer_client.post(f"/api/v1/proposals/{pid}/{path}/", body, format="json")

        assert response.status_code == 400, response.content
        assert response.json()["errors"] == [
            {"loc": [field], "msg": "Not a valid string.", "type": "invalid"}
        ]
        assert Proposal.objects.get(pk=pid).status == Status.PENDING

    def test_cancel_by_the_proposing_agent_only(self, acme):
        pid = submit(acme).json()["id"]

        assert acme.reviewer_client.post(f"/api/v1/proposals/{pid}/cancel/").status_code == 403
        response = acme.agent_client.post(f"/api/v1/proposals/{pid}/cancel/")

        assert response.status_code == 200
        assert response.json()["status"] == "cancelled"
        assert acme.agent_client.post(f"/api/v1/proposals/{pid}/cancel/").status_code == 409

    def test_edit_then_approve_records_the_change_and_sends_the_edit(
        self, acme, django_capture_on_commit_callbacks
    ):
        pid = submit(acme).json()["id"]

        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            crm_created(rsps)
            with django_capture_on_commit_callbacks(execute=True):
                response = acme.reviewer_client.post(
                    f"/api/v1/proposals/{pid}/approve/", {"args": dict(TICKET, priority="low")}, format="json"
                )
            assert json.loads(cast(bytes, rsps.calls[0].request.body))["ticket"]["priority"] == "low"

        assert response.status_code == 202
        decision = Proposal.objects.get(pk=pid).decisions.get()
        assert decision.edited_from == [{"field": "priority", "before": "urgent", "after": "low"}]

    @pytest.mark.parametrize("key", [None, "k-edit"])
    def test_an_agents_retry_after_an_edit_is_a_replay(self, acme, key):
        """The reviewer's edit changes the args' hash; the agent's retry of its own submission (its key, or
        the derived one) is still the same request: 200 with the proposal, not 409 key reused."""
        pid = submit(acme, key=key).json()["id"]
        approved = acme.reviewer_client.post(
            f"/api/v1/proposals/{pid}/approve/", {"args": dict(TICKET, priority="low")}, format="json"
        )
        assert approved.status_code == 202, approved.content

        retry = submit(acme, key=key)

        assert retry.status_code == 200, retry.content
        assert retry.json()["id"] == pid and retry.json()["args"]["priority"] == "low"
        assert Proposal.objects.count() == 1
        if key:  # other args under the key are still a conflict
            assert submit(acme, dict(TICKET, subject="Other"), key=key).status_code == 409

    def test_an_edit_is_refused_when_the_ticket_changed_since_the_preview(self, acme):
        """An update's edit is previewed again from the live ticket. If the ticket moved since the preview the
        reviewer saw, approving would adopt a state nobody reviewed (and the commit's staleness check would
        compare against it): 409 target_changed, nothing decided, nothing sent."""
        own_connection(
            "acme"
        )  # acme's own CRM: ticket 5 there is its own (contract 6, tenant isolation outside)
        ticket_url = f"{settings.CRM_BASE_URL}/api/v2/tickets/5.json"
        live = {
            "id": 5,
            "subject": "Printer",
            "priority": "normal",
            "status": "open",
            "tags": [],
            "updated_at": "2026-11-23T10:00:00Z",
        }
        with responses.RequestsMock() as rsps:
            rsps.add(responses.GET, ticket_url, json={"ticket": live})
            pid = submit(acme, {"ticket_id": 5, "priority": "high"}, tool="crm.update_ticket").json()["id"]
            rsps.replace(
                responses.GET,
                ticket_url,
                json={"ticket": dict(live, priority="urgent", updated_at="2026-11-23T11:00:00Z")},
            )

            moved = acme.reviewer_client.post(
                f"/api/v1/proposals/{pid}/approve/",
                {"args": {"ticket_id": 5, "priority": "low"}},
                format="json",
            )

            assert moved.status_code == 409, moved.content
            assert moved.json()["error"] == "target_changed"
            proposal = Proposal.objects.get(pk=pid)
            assert (proposal.status, proposal.args["priority"]) == (Status.PENDING, "high")
            assert not proposal.decisions.exists()
            assert [c.request.method for c in rsps.calls] == ["GET", "GET"]  # no write

            # The ticket as previewed: the same edit is approved.
            rsps.replace(responses.GET, ticket_url, json={"ticket": live})
            same = acme.reviewer_client.post(
                f"/api/v1/proposals/{pid}/approve/",
                {"args": {"ticket_id": 5, "priority": "low"}},
                format="json",
            )
        assert same.status_code == 202, same.content
        assert Proposal.objects.get(pk=pid).preview["snapshot"] == {"updated_at": "2026-11-23T10:00:00Z"}

    def test_edit_is_validated_like_a_submission(self, acme):
        pid = submit(acme).json()["id"]

        response = acme.reviewer_client.post(
            f"/api/v1/proposals/{pid}/approve/", {"args": dict(TICKET, priority="whenever")}, format="json"
        )

        assert response.status_code == 400
        assert Proposal.objects.get(pk=pid).status == Status.PENDING


@pytest.mark.django_db
def test_tools_catalogue_in_both_shapes(acme):
    tools = acme.agent_client.get("/api/v1/tools/").json()["tools"]
    openai = acme.agent_client.get("/api/v1/tools/?format=openai").json()

    names = {t["name"] for t in tools}
    assert {"crm.create_ticket", "crm.update_ticket", "crm.get_customer", "slack.post_message"} <= names
    create = next(t for t in tools if t["name"] == "crm.create_ticket")
    assert create["kind"] == "write" and create["requires_approval"] is True
    assert create["parameters"]["additionalProperties"] is False
    # Contract 7: the OpenAI shape publishes the OpenAI-safe names (dots become underscores).
    assert {f["function"]["name"] for f in openai} == {name.replace(".", "_") for name in names}
    assert all(f["type"] == "function" and "parameters" in f["function"] for f in openai)


@pytest.mark.django_db
def test_openapi_schema_is_served(client):
    response = client.get("/api/v1/schema/?format=json", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    assert "/api/v1/proposals/" in response.content.decode()


@pytest.mark.django_db
def test_list_query_count_does_not_grow_with_the_page(acme):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from approvals import services
    from audit.services import Where

    def grow(n, start):
        for i in range(start, start + n):
            p = services.proposal_submit(
                agent=acme.agent,
                tool="crm.create_ticket",
                args=dict(TICKET, subject=f"n{i}"),
                where=Where(channel="api"),
            ).proposal
            services.proposal_reject(
                proposal=p, reviewer=acme.reviewer, reason="no", where=Where(channel="api")
            )

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert acme.reviewer_client.get("/api/v1/proposals/?page_size=50").status_code == 200
        return len(ctx.captured_queries)

    grow(3, 0)
    count()  # the first call also records the token's last use (once a minute)
    small = count()
    grow(20, 100)

    assert count() == small


@pytest.mark.django_db
def test_the_openapi_document_links_a_submission_to_what_can_be_done_with_it(client):
    """OpenAPI links: the proposal id in the answer is the {id} of these operations (generated clients and
    stateful API testers follow them)."""
    document = client.get(
        "/api/v1/schema/?format=json", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    ).json()
    operations = {
        op["operationId"]: (path, op)
        for path, methods in document["paths"].items()
        for op in methods.values()
        if isinstance(op, dict) and "operationId" in op
    }
    links = operations["proposals_create"][1]["responses"]["201"]["links"]
    assert {link["operationId"] for link in links.values()} == {
        "proposals_retrieve",
        "proposals_approve_create",
        "proposals_reject_create",
        "proposals_request_changes_create",
        "proposals_cancel_create",
        "proposals_receipt_retrieve",
    }
    assert operations["proposals_create"][1]["responses"]["200"]["links"] == links  # an idempotent replay
    for link in links.values():
        path, _ = operations[link["operationId"]]
        assert link["parameters"] == {"id": "$response.body#/id"} and "{id}" in path
    approved = operations["proposals_approve_create"][1]["responses"]["202"]["links"]
    assert approved["GetReceipt"]["operationId"] == "proposals_receipt_retrieve"
    assert "ApproveProposal" not in approved


@pytest.mark.django_db
class TestDerivedKeyWindow:
    """Without Idempotency-Key, the derived key replays the same args' proposal for ACME_DERIVED_KEY_WINDOW
    seconds, then the same args make a new proposal (issue 24, item 7). An explicit key never expires."""

    WINDOW = 3600

    @pytest.fixture(autouse=True)
    def window(self, settings: Any) -> None:
        settings.ACME_DERIVED_KEY_WINDOW = self.WINDOW

    @staticmethod
    def at(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
        from django.utils import timezone

        monkeypatch.setattr(timezone, "now", lambda: moment)

    def test_a_rejected_proposal_can_be_proposed_again_after_the_window(self, acme, monkeypatch):
        start = datetime(2026, 11, 29, 10, 0, 5, tzinfo=UTC)
        self.at(monkeypatch, start)
        first = submit(acme).json()
        rejected = acme.reviewer_client.post(
            f"/api/v1/proposals/{first['id']}/reject/", {"reason": "later"}, format="json"
        )
        assert rejected.status_code == 200

        self.at(monkeypatch, start + timedelta(seconds=self.WINDOW - 60))
        within = submit(acme)
        self.at(monkeypatch, start + timedelta(seconds=self.WINDOW + 1))
        after = submit(acme)

        assert (within.status_code, within.json()["id"], within.json()["status"]) == (
            200,
            first["id"],
            "rejected",
        )
        assert after.status_code == 201 and after.json()["id"] != first["id"]
        assert after.json()["status"] == "pending"

    def test_a_retry_across_a_window_boundary_is_still_a_replay(self, acme, monkeypatch):
        boundary = datetime.fromtimestamp((2_000_000_000 // self.WINDOW + 1) * self.WINDOW, tz=UTC)
        self.at(monkeypatch, boundary - timedelta(seconds=5))
        first = submit(acme)
        self.at(monkeypatch, boundary + timedelta(seconds=5))
        retry = submit(acme)

        assert first.status_code == 201
        assert (retry.status_code, retry.json()["id"]) == (200, first.json()["id"])
        assert Proposal.objects.count() == 1

    def test_an_explicit_key_never_expires(self, acme, monkeypatch):
        start = datetime(2026, 11, 29, 10, 0, 5, tzinfo=UTC)
        self.at(monkeypatch, start)
        first = submit(acme, key="weekly-check-in")
        self.at(monkeypatch, start + timedelta(seconds=10 * self.WINDOW))
        again = submit(acme, key="weekly-check-in")

        assert (again.status_code, again.json()["id"]) == (200, first.json()["id"])
