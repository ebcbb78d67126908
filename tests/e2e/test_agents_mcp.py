"""Agents plug in (contract 7) against real processes: gunicorn serves ``/mcp/``, ``acme_worker`` commits to
the sandbox CRM. Driven with the official ``mcp`` SDK's Streamable HTTP client and the OpenAI Agents SDK's
``MCPServerStreamableHttp`` (their own ``list_tools``/``call_tool``; no LLM)."""

from __future__ import annotations

from typing import Any

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

ARGS = {
    "subject": "Badge reader broken at gate B",
    "description": "Nobody can badge in at gate B since 8:00.",
    "priority": "high",
    "customer_email": "facilities@example.com",
}


def _client(stack: Any, token: str) -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    return Client(streamable_http_client(f"{stack.web_url}/mcp/", http_client=http), mode="legacy")  # type: ignore[arg-type]


def test_the_official_client_proposes_and_get_proposal_reports_the_commit_and_its_receipt(stack):
    party = stack.party()

    async def propose() -> dict[str, Any]:
        async with _client(stack, party["agent"]) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            assert "crm_create_ticket" in names and "get_proposal" in names
            made = await client.call_tool("crm_create_ticket", ARGS)
            assert not made.is_error, made
            return dict(made.structured_content)

    made = anyio.run(propose)
    assert made["status"] == "pending_approval"
    approved = stack.api("POST", f"/proposals/{made['proposal_id']}/approve/", party["reviewer"], json={})
    assert approved.status_code == 202, approved.text

    async def follow() -> Any:
        async with _client(stack, party["agent"]) as client:
            for _ in range(10):
                answer = await client.call_tool(
                    "get_proposal", {"proposal_id": made["proposal_id"], "wait": 10}
                )
                if answer.structured_content["status"] not in ("pending", "approved", "committing"):
                    return answer
            return answer

    answer = anyio.run(follow)
    assert answer.structured_content["status"] == "committed", answer
    external_id = answer.structured_content["receipt"]["external_id"]
    ticket = {str(t["id"]): t for t in stack.tickets()}[external_id]
    assert ticket["subject"] == ARGS["subject"]


def test_the_openai_agents_sdk_hears_a_rejection_and_reads_at_once(stack):
    from agents.mcp import MCPServerStreamableHttp, MCPServerStreamableHttpParams

    party = stack.party()
    params: MCPServerStreamableHttpParams = {
        "url": f"{stack.web_url}/mcp/",
        "headers": {"Authorization": f"Bearer {party['agent']}"},
        "timeout": 60,
    }

    async def propose() -> str:
        async with MCPServerStreamableHttp(params, name="acme", client_session_timeout_seconds=60) as server:
            made = await server.call_tool("crm_create_ticket", {**ARGS, "subject": "Wrong gate"})
            return str(made.structured_content["proposal_id"])

    pid = anyio.run(propose)
    rejected = stack.api(
        "POST", f"/proposals/{pid}/reject/", party["reviewer"], json={"reason": "Gate A, not B"}
    )
    assert rejected.status_code == 200, rejected.text

    async def follow() -> tuple[Any, Any]:
        async with MCPServerStreamableHttp(params, name="acme", client_session_timeout_seconds=60) as server:
            decided = await server.call_tool("get_proposal", {"proposal_id": pid})
            plan = {"dataset": "orders", "select": [{"agg": "count", "as": "n"}]}
            read = await server.call_tool("warehouse_query", plan)
            return decided, read

    decided, read = anyio.run(follow)
    assert decided.structured_content["status"] == "rejected"
    text = decided.content[0].text  # type: ignore[union-attr]
    assert "Gate A, not B" in text and "Do not resubmit" in text
    assert read.is_error is False and read.structured_content["columns"] == ["n"]
