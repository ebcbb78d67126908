"""``POST /api/v1/queries/`` (contract 5): who may ask, which tenant, the response shape, the audit."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.redis import get_redis
from adapters.warehouse import schema
from approvals.accounts import agent_create, person_create, user_token_create
from approvals.models import Membership, Role
from audit.models import AuditEvent
from tests.adapters.warehouse.helpers import ids, post, seed

pytestmark = pytest.mark.django_db

REVENUE = {
    "dataset": "orders",
    "select": ["region", {"agg": "sum", "column": "amount", "as": "revenue"}],
    "where": [{"column": "created_at", "op": ">=", "value": "2025-01-01"}],
    "group_by": ["region"],
    "order_by": [{"column": "revenue", "desc": True}],
    "limit": 100,
    "cursor": None,
}


@pytest.fixture(autouse=True)
def isolated(settings: Any) -> Iterator[None]:
    """A private Redis prefix (the query cache) and a fresh schema per test."""
    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    settings.ACME_REDIS_PREFIX = prefix
    schema.invalidate()
    yield
    schema.invalidate()
    keys = list(get_redis().scan_iter(match=f"{prefix}*", count=500))
    if keys:
        get_redis().delete(*keys)


@pytest.fixture
def warehouse(acme: Any, globex: Any) -> None:
    seed("acme", orders=200, customers=20, tickets=50)
    seed("globex", orders=80, customers=8, tickets=20)


def test_an_agent_gets_the_contract_shape_with_its_tenants_rows(acme, warehouse):
    response = post(acme.agent_client, REVENUE)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"columns", "rows", "next_cursor", "truncated"}
    assert body["columns"] == ["region", "revenue"]
    assert {r[0] for r in body["rows"]} <= {"emea", "amer", "apac", "latam"}
    assert [r[1] for r in body["rows"]] == sorted((r[1] for r in body["rows"]), reverse=True)
    assert body["next_cursor"] is None and body["truncated"] is False


def test_pages_through_the_api(acme, warehouse):
    plan = {"dataset": "orders", "select": ["id", "amount"], "limit": 64}
    seen, cursor = [], None
    while True:
        body = post(acme.agent_client, {**plan, "cursor": cursor}).json()
        seen += [r[0] for r in body["rows"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == ids("acme")


def test_a_reviewer_queries_their_tenant(acme, globex, warehouse):
    body = post(acme.reviewer_client, {"dataset": "orders", "select": [{"agg": "count"}]}).json()
    assert body["rows"] == [[len(ids("acme"))]]
    body = post(globex.reviewer_client, {"dataset": "orders", "select": [{"agg": "count"}]}).json()
    assert body["rows"] == [[len(ids("globex"))]]


def test_a_reviewer_of_several_tenants_names_one(acme, globex, warehouse):
    Membership.objects.create(user=acme.reviewer, tenant=globex.tenant, role=Role.REVIEWER)
    plan = {"dataset": "orders", "select": [{"agg": "count"}]}
    response = post(acme.reviewer_client, plan)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_query" and response.json()["allowed"] == ["acme", "globex"]
    assert post(acme.reviewer_client, {**plan, "tenant": "globex"}).json()["rows"] == [[len(ids("globex"))]]
    assert post(acme.reviewer_client, {**plan, "tenant": "initech"}).status_code == 403


def test_who_may_not_query(acme, globex, warehouse):
    plan = {"dataset": "orders", "select": ["id"]}
    assert post(acme.client(acme.requester_token), plan).status_code == 403
    assert post(acme.client(None), plan).status_code == 401
    response = post(acme.agent_client, {**plan, "tenant": "globex"})
    assert response.status_code == 403  # an agent cannot reach across
    _, token = agent_create(tenant=acme.tenant, name="crm-only", tools=["crm.create_ticket"])
    response = post(acme.client(token), plan)
    assert response.status_code == 403 and response.json()["error"] == "policy_denied"


def test_an_outsider_person_is_refused(acme, warehouse):
    outsider = person_create(tenant=acme.tenant, username="temp", role=Role.REQUESTER, password="pw-12345678")
    assert (
        post(
            acme.client(user_token_create(user=outsider)), {"dataset": "orders", "select": ["id"]}
        ).status_code
        == 403
    )


def test_refusals_name_the_unknown_and_list_the_allowed(acme, warehouse):
    response = post(acme.agent_client, {"dataset": "orders", "select": ["email"]})
    body = response.json()
    assert response.status_code == 400 and body["error"] == "invalid_query"
    assert "'email'" in body["detail"] and "amount" in body["allowed"] and "email" not in body["allowed"]
    assert body["errors"][0]["loc"] == ["select", "0"]
    response = post(acme.agent_client, "SELECT * FROM warehouse_orders")
    assert response.status_code == 400 and response.json()["error"] == "invalid_query"


def test_every_query_is_audited_without_its_data(acme, warehouse):
    post(acme.agent_client, REVENUE)
    post(acme.agent_client, {"dataset": "nope", "select": ["id"]})
    post(acme.agent_client, {"dataset": "orders", "select": ["id"], "sql": "DROP TABLE x"})
    ok, unknown, malformed = AuditEvent.objects.filter(tenant="acme", action="warehouse.query").order_by("id")
    # who, the plan, rows returned, duration; never the rows
    assert (ok.actor_type, ok.actor_label, ok.result, ok.subject_id) == (
        "agent",
        "acme-agent",
        "ok",
        "orders",
    )
    assert set(ok.data) == {"plan", "rows", "truncated", "cached", "duration_ms"}
    assert ok.data["plan"]["select"][1] == {"agg": "sum", "column": "amount", "as": "revenue"}
    assert ok.data["rows"] == 4 and ok.data["cached"] is False and ok.data["duration_ms"] >= 0
    # refusals too: a plan that parsed is kept, one that did not only as a hash
    assert unknown.result == "refused" and unknown.data["error"] == "invalid_query"
    assert unknown.data["plan"]["dataset"] == "nope"
    assert (
        malformed.result == "refused"
        and "plan" not in malformed.data
        and len(malformed.data["plan_sha256"]) == 64
    )


def test_identical_queries_are_cached_per_tenant(acme, globex, warehouse):
    first = post(acme.agent_client, REVENUE).json()
    assert post(acme.agent_client, REVENUE).json() == first
    cached = AuditEvent.objects.filter(tenant="acme", action="warehouse.query").order_by("id")
    assert [e.data["cached"] for e in cached] == [False, True]
    assert post(globex.agent_client, REVENUE).json() != first


def test_the_catalogue_lists_datasets_and_columns(acme, warehouse):
    body = acme.agent_client.get("/api/v1/queries/").json()
    assert body["max_limit"] == 1000
    assert body["datasets"]["orders"]["columns"]["amount"] == "decimal"


def test_warehouse_query_is_a_read_tool_with_the_plan_as_parameters(acme):
    tools = {t["name"]: t for t in acme.agent_client.get("/api/v1/tools/").json()["tools"]}
    tool = tools["warehouse.query"]
    assert tool["kind"] == "read" and tool["requires_approval"] is False
    assert {"dataset", "select", "where", "group_by", "order_by", "limit", "cursor"} <= set(
        tool["parameters"]["properties"]
    )
    assert tool["parameters"]["additionalProperties"] is False


def test_the_openapi_document_describes_the_endpoint(client):
    document = client.get("/api/v1/schema/", HTTP_ACCEPT="application/json").json()
    operation = document["paths"]["/api/v1/queries/"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    request = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert {"dataset", "select", "tenant"} <= set(request["properties"])
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert set(document["components"]["schemas"][ok.rsplit("/", 1)[-1]]["properties"]) == {
        "columns",
        "rows",
        "next_cursor",
        "truncated",
    }


def test_the_readmes_query_example_runs_as_written(acme, warehouse):
    """The README's agent section shows the warehouse read path (issue 24, item 8): its plan, as written,
    is accepted and answers the shape it shows."""
    import json
    import re

    from tests.e2e.stack import ROOT

    block = re.search(
        r"<!-- queries-example: begin -->(.*?)<!-- queries-example: end -->",
        (ROOT / "README.md").read_text(),
        re.S,
    )
    assert block, "README.md has no queries-example block"
    assert "curl -s $API/queries/ " in block.group(1)  # the GET that lists the datasets
    plan = json.loads(re.search(r"-d '(.*?)'", block.group(1), re.S).group(1))  # type: ignore[union-attr]

    listed = acme.agent_client.get("/api/v1/queries/")
    response = post(acme.agent_client, plan)

    assert listed.status_code == 200 and "orders" in json.dumps(listed.json())
    assert response.status_code == 200, response.json()
    assert response.json()["columns"] == ["region", "revenue"]
