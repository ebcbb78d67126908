"""The MCP server at ``/mcp/`` (contract 7).

``TestProtocol`` speaks JSON-RPC through Django's test client; ``TestRealClients`` starts the app on a live
HTTP server (pytest-django's ``live_server``: the same WSGI app, in a thread) and drives it with the official
``mcp`` SDK's Streamable HTTP client (the handshake era and the stateless 2026-07-28 era) and with the OpenAI
Agents SDK's ``MCPServerStreamableHttp``. No LLM is involved: the clients' own ``list_tools``/``call_tool``.
The CRM is mocked at the adapter boundary (``responses``, which also sees the live server's thread).
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import httpx2
import pytest
import responses
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from approvals.models import Proposal, Status
from audit.models import AuditEvent
from tests.approvals.test_agents_api import CUSTOMER, CUSTOMERS_URL
from tests.approvals.test_api import TICKET, crm_created, submit

ACCEPT = {"HTTP_ACCEPT": "application/json, text/event-stream"}


def rpc(
    client: Any,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    version: str | None = "2025-11-25",
    **headers: Any,
) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
    extra = {"HTTP_MCP_PROTOCOL_VERSION": version} if version else {}
    return client.post(
        "/mcp/", json.dumps(body), content_type="application/json", **ACCEPT, **extra, **headers
    )


def result(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    body = response.json()
    assert "result" in body, body
    return body["result"]


def call(party: Any, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return result(rpc(party.agent_client, "tools/call", {"name": name, "arguments": arguments}))


def rest_body(party: Any, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    return submit(party, args, tool=tool).json()


@pytest.mark.django_db
class TestProtocol:
    def test_initialize_answers_a_session_based_client(self, acme):
        answer = result(
            rpc(
                acme.agent_client,
                "initialize",
                {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
                version=None,
            )
        )

        assert answer["protocolVersion"] == "2025-06-18"
        assert answer["capabilities"]["tools"] is not None

    def test_tools_list_has_the_agents_tools_under_safe_names_with_honest_annotations(self, acme):
        acme.agent.allowed_tools = ["crm.create_ticket", "crm_update_ticket", "crm.get_customer"]
        acme.agent.save()

        tools = {t["name"]: t for t in result(rpc(acme.agent_client, "tools/list"))["tools"]}

        assert set(tools) == {"crm_create_ticket", "crm_update_ticket", "crm_get_customer", "get_proposal"}
        assert tools["crm_get_customer"]["annotations"]["readOnlyHint"] is True
        create = tools["crm_create_ticket"]["annotations"]
        assert (create["readOnlyHint"], create["destructiveHint"], create["idempotentHint"]) == (
            False,
            False,
            True,
        )
        assert tools["crm_update_ticket"]["annotations"]["destructiveHint"] is True
        assert tools["crm_create_ticket"]["inputSchema"]["required"] == ["subject", "description"]
        assert tools["get_proposal"]["inputSchema"]["required"] == ["proposal_id"]

    def test_a_write_makes_a_proposal_and_returns_at_once(self, acme):
        answer = call(acme, "crm_create_ticket", TICKET)

        assert answer["isError"] is False
        body = answer["structuredContent"]
        assert body["status"] == "pending_approval"
        proposal = Proposal.objects.get(pk=body["proposal_id"])
        assert proposal.status == Status.PENDING and proposal.tool == "crm.create_ticket"
        assert body["review_url"].endswith(f"/proposals/{proposal.pk}/")
        assert body["expires_at"] == proposal.expires_at.isoformat()
        text = answer["content"][0]["text"]
        assert "Do not call crm_create_ticket again" in text and "get_proposal" in text
        # Audited like its REST twin, from the MCP door.
        event = AuditEvent.objects.get(action="proposal.submitted", subject_id=str(proposal.pk))
        assert event.channel == "mcp"

    def test_an_identical_repeated_call_is_the_same_proposal_as_over_rest(self, acme):
        first = call(acme, "crm_create_ticket", TICKET)["structuredContent"]["proposal_id"]
        again = call(acme, "crm_create_ticket", TICKET)["structuredContent"]["proposal_id"]
        via_rest = rest_body(acme, "crm.create_ticket", TICKET)["id"]

        assert first == again == via_rest
        assert Proposal.objects.count() == 1

    def test_invalid_args_are_a_tool_error_in_the_rest_apis_words(self, acme):
        bad = {**TICKET, "priority": "whenever", "extra": 1}

        answer = call(acme, "crm_create_ticket", bad)
        rest = rest_body(acme, "crm.create_ticket", bad)

        assert answer["isError"] is True
        assert answer["structuredContent"] == rest
        text = answer["content"][0]["text"]
        assert rest["detail"] in text
        assert all(error["msg"] in text for error in rest["errors"])
        assert Proposal.objects.count() == 0

    def test_a_policy_refusal_is_a_tool_error_in_the_rest_apis_words(self, acme):
        card = {**TICKET, "description": "Card 4111 1111 1111 1111 was charged twice"}

        answer = call(acme, "crm_create_ticket", card)
        rest = rest_body(acme, "crm.create_ticket", card)

        assert answer["isError"] is True
        assert rest["error"] == "policy_denied"
        assert answer["structuredContent"] == rest
        assert answer["content"][0]["text"].startswith(rest["detail"])
        denied = AuditEvent.objects.filter(action="proposal.denied").order_by("id")
        assert [e.channel for e in denied] == ["mcp", "api"]

    def test_a_tool_the_agent_may_not_use_is_refused(self, acme):
        acme.agent.allowed_tools = ["crm.get_customer"]
        acme.agent.save()

        answer = call(acme, "crm_create_ticket", TICKET)

        assert answer["isError"] is True and answer["structuredContent"]["error"] == "policy_denied"

    def test_an_unknown_tool_is_a_protocol_error(self, acme):
        response = rpc(acme.agent_client, "tools/call", {"name": "crm_delete_everything", "arguments": {}})

        assert "error" in response.json()

    @responses.activate
    def test_a_read_returns_its_result_at_once_and_is_audited(self, acme):
        responses.add(responses.GET, CUSTOMERS_URL, json=CUSTOMER)

        answer = call(acme, "crm_get_customer", {"email": "alice@example.com"})

        assert answer["isError"] is False
        assert answer["structuredContent"]["customers"][0]["email"] == "alice@example.com"
        assert AuditEvent.objects.get(action="tool.read").channel == "mcp"

    def test_warehouse_query_is_a_read_too(self, acme):
        answer = call(acme, "warehouse_query", {"dataset": "orders", "select": [{"agg": "count", "as": "n"}]})

        assert answer["isError"] is False and answer["structuredContent"]["columns"] == ["n"]

    def test_get_proposal_carries_a_rejections_reason_and_says_not_to_resubmit(self, acme):
        pid = call(acme, "crm_create_ticket", TICKET)["structuredContent"]["proposal_id"]
        acme.reviewer_client.post(
            f"/api/v1/proposals/{pid}/reject/", {"reason": "Duplicate of #12"}, format="json"
        )

        answer = call(acme, "get_proposal", {"proposal_id": pid})

        assert answer["structuredContent"]["status"] == "rejected"
        assert answer["structuredContent"]["decision"] == "rejected"
        assert answer["structuredContent"]["reason"] == "Duplicate of #12"
        text = answer["content"][0]["text"]
        assert "Duplicate of #12" in text and "Do not resubmit the same call" in text

    def test_get_proposal_of_another_tenant_is_not_found(self, acme, globex):
        pid = call(acme, "crm_create_ticket", TICKET)["structuredContent"]["proposal_id"]

        answer = call(globex, "get_proposal", {"proposal_id": pid})

        assert answer["isError"] is True and answer["structuredContent"]["error"] == "not_found"
        assert "Duplicate" not in json.dumps(answer)

    def test_get_proposal_with_a_bad_id_or_wait_is_a_tool_error(self, acme):
        assert call(acme, "get_proposal", {"proposal_id": "not-a-uuid"})["isError"] is True
        pid = call(acme, "crm_create_ticket", TICKET)["structuredContent"]["proposal_id"]
        assert call(acme, "get_proposal", {"proposal_id": pid, "wait": 31})["isError"] is True

    def test_without_a_token_it_is_401_with_a_challenge(self, acme):
        response = rpc(acme.client(None), "tools/list")

        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
        assert response.json()["error"] == "unauthenticated"

    def test_a_revoked_or_wrong_token_is_401(self, acme):
        assert rpc(acme.client("agt_nope"), "tools/list").status_code == 401

    def test_a_persons_token_is_refused(self, acme):
        response = rpc(acme.reviewer_client, "tools/list")

        assert response.status_code == 403

    def test_a_foreign_origin_is_refused(self, acme):
        response = rpc(acme.agent_client, "tools/list", HTTP_ORIGIN="https://evil.example")

        assert response.status_code == 403
        assert result(rpc(acme.agent_client, "tools/list", HTTP_ORIGIN="http://localhost:8000"))

    def test_get_and_delete_are_405(self, acme):
        assert acme.agent_client.get("/mcp/", **ACCEPT).status_code == 405
        assert acme.agent_client.delete("/mcp/").status_code == 405

    def test_the_path_works_without_its_slash(self, acme):
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        response = acme.agent_client.post(
            "/mcp",
            json.dumps(body),
            content_type="application/json",
            **ACCEPT,
            HTTP_MCP_PROTOCOL_VERSION="2025-11-25",
        )

        assert response.status_code == 200 and response.json()["result"]["tools"]


# --- real clients over real HTTP -----------------------------------------------------------------------


def _http(token: str) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _mcp_client(url: str, token: str, mode: str) -> Client:
    return Client(streamable_http_client(url, http_client=_http(token)), mode=mode)  # type: ignore[arg-type]


def _text(answer: Any) -> str:
    return str(answer.content[0].text)


def _approve(party: Any, pid: str) -> None:
    response = party.reviewer_client.post(
        f"/api/v1/proposals/{pid}/approve/", {"comment": "ok"}, format="json"
    )
    assert response.status_code == 202, response.content


def _reject(party: Any, pid: str, reason: str) -> None:
    response = party.reviewer_client.post(
        f"/api/v1/proposals/{pid}/reject/", {"reason": reason}, format="json"
    )
    assert response.status_code == 200, response.content


@pytest.mark.django_db(transaction=True)
class TestRealClients:
    @pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
    def test_the_official_sdk_client_lists_proposes_and_sees_the_receipt(self, acme, live_server, mode):
        url = f"{live_server.url}/mcp/"

        async def list_and_propose() -> tuple[list[str], dict[str, Any], str]:
            async with _mcp_client(url, acme.agent_token, mode) as client:
                listed = await client.list_tools()
                made = await client.call_tool("crm_create_ticket", TICKET)
                assert not made.is_error, made
                return [t.name for t in listed.tools], made.structured_content, _text(made)

        names, made, text = anyio.run(list_and_propose)
        assert "crm_create_ticket" in names and "get_proposal" in names
        assert made["status"] == "pending_approval" and "get_proposal" in text

        with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
            rsps.add_passthru(live_server.url)
            crm_created(rsps, ticket_id=777)
            _approve(acme, made["proposal_id"])

        async def status() -> Any:
            async with _mcp_client(url, acme.agent_token, mode) as client:
                return await client.call_tool("get_proposal", {"proposal_id": made["proposal_id"], "wait": 5})

        answer = anyio.run(status)
        assert answer.structured_content["status"] == "committed"
        assert answer.structured_content["receipt"]["external_id"] == "777"
        assert "committed" in _text(answer)

    def test_the_openai_agents_sdk_lists_proposes_reads_and_hears_a_rejection(self, acme, live_server):
        from agents.mcp import MCPServerStreamableHttp, MCPServerStreamableHttpParams

        params: MCPServerStreamableHttpParams = {
            "url": f"{live_server.url}/mcp/",
            "headers": {"Authorization": f"Bearer {acme.agent_token}"},
            "timeout": 30,
        }

        async def propose() -> tuple[list[Any], Any]:
            server = MCPServerStreamableHttp(params, name="acme", client_session_timeout_seconds=30)
            async with server:
                tools = await server.list_tools()
                made = await server.call_tool("crm_create_ticket", TICKET)
                return tools, made

        tools, made = anyio.run(propose)
        by_name = {t.name: t for t in tools}
        assert by_name["crm_get_customer"].annotations.read_only_hint is True
        assert by_name["crm_create_ticket"].annotations.read_only_hint is False
        pid = made.structured_content["proposal_id"]
        _reject(acme, pid, "Wrong customer")

        with responses.RequestsMock() as rsps:
            rsps.add_passthru(live_server.url)
            rsps.add(responses.GET, CUSTOMERS_URL, json=CUSTOMER)

            async def follow_up() -> tuple[Any, Any]:
                server = MCPServerStreamableHttp(params, name="acme", client_session_timeout_seconds=30)
                async with server:
                    decided = await server.call_tool("get_proposal", {"proposal_id": pid, "wait": 5})
                    read = await server.call_tool("crm_get_customer", {"email": "alice@example.com"})
                    return decided, read

            decided, read = anyio.run(follow_up)

        assert decided.structured_content["status"] == "rejected"
        assert "Wrong customer" in _text(decided) and "Do not resubmit" in _text(decided)
        assert read.is_error is False
        assert read.structured_content["customers"][0]["email"] == "alice@example.com"
