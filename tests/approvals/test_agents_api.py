"""Agents plug in the standard way (contract 7): safe tool names, OpenAI-valid definitions, direct reads, and
waiting for a decision. The CRM is mocked at the adapter boundary (``responses``)."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import jsonschema
import pytest
import responses
from django.conf import settings
from django.db import connection
from pydantic import TypeAdapter

from adapters import registry
from approvals import services, waiting
from approvals.models import Proposal, Status, ToolPolicy
from audit.models import AuditEvent
from audit.services import Where
from tests.approvals.test_api import TICKET, crm_created, submit

CUSTOMERS_URL = f"{settings.CRM_BASE_URL}/api/v2/users/search.json"
OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def openai_tools(party: Any) -> list[dict[str, Any]]:
    response = party.agent_client.get("/api/v1/tools/?format=openai")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.mark.django_db
class TestSafeNames:
    def test_openai_format_publishes_names_the_openai_api_accepts(self, acme):
        names = [t["function"]["name"] for t in openai_tools(acme)]

        assert "crm_create_ticket" in names and "warehouse_query" in names
        assert all(OPENAI_NAME.match(name) for name in names), names

    def test_a_proposal_under_the_safe_name_is_the_same_as_under_the_dotted_one(self, acme):
        first = submit(acme, tool="crm_create_ticket")
        again = submit(acme, tool="crm.create_ticket")

        assert first.status_code == 201, first.content
        assert first.json()["tool"] == "crm.create_ticket"
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]

    def test_the_list_filters_by_either_spelling(self, acme):
        submit(acme)

        by_safe = acme.agent_client.get("/api/v1/proposals/?tool=crm_create_ticket").json()["results"]
        by_dotted = acme.agent_client.get("/api/v1/proposals/?tool=crm.create_ticket").json()["results"]

        assert len(by_safe) == len(by_dotted) == 1

    def test_an_agent_allowed_a_tool_by_its_safe_name_may_use_it(self, acme):
        acme.agent.allowed_tools = ["crm_create_ticket"]
        acme.agent.save()

        assert submit(acme).status_code == 201
        assert [t["name"] for t in acme.agent_client.get("/api/v1/tools/").json()["tools"]] == [
            "crm.create_ticket"
        ]

    def test_a_policy_naming_the_safe_name_applies(self, acme):
        rule = ToolPolicy(tenant=acme.tenant, name="paused", tool="crm_create_ticket", max_per_hour=0)
        rule.full_clean()
        rule.save()

        response = submit(acme)

        assert rule.tool == "crm.create_ticket"  # stored under the dotted name
        assert response.status_code == 403, response.content
        assert response.json()["error"] == "policy_denied"

    def test_a_policy_stored_with_the_safe_name_applies_too(self, acme):
        ToolPolicy.objects.create(tenant=acme.tenant, name="paused", tool="crm_create_ticket", max_per_hour=0)

        assert submit(acme).status_code == 403

    def test_the_inbox_filters_by_the_safe_name(self, acme, client):
        submit(acme)
        client.force_login(acme.reviewer)

        page = client.get("/?tool=crm_create_ticket")

        assert page.status_code == 200
        assert page.context["filters"].tool == "crm.create_ticket"


@pytest.mark.django_db
class TestOpenAIDefinitions:
    def test_every_definition_is_valid_for_chat_completions_and_responses(self, acme):
        from openai.types.chat import ChatCompletionFunctionToolParam
        from openai.types.responses import FunctionToolParam

        chat = TypeAdapter(ChatCompletionFunctionToolParam)
        responses_api = TypeAdapter(FunctionToolParam)
        published = openai_tools(acme)

        assert len(published) == len(registry.tools())
        for definition in published:
            chat.validate_python(definition, strict=True)
            function = definition["function"]
            responses_api.validate_python({"type": "function", **function}, strict=True)
            # Parameters: a JSON Schema object (OpenAI reads them as JSON Schema) with no dangling $ref.
            parameters = function["parameters"]
            assert parameters["type"] == "object"
            jsonschema.Draft202012Validator.check_schema(parameters)
            jsonschema.Draft202012Validator(parameters).is_valid({})  # every $ref resolves

    def test_strict_definitions_follow_strict_modes_rules(self, acme):
        published = {t["function"]["name"]: t["function"] for t in openai_tools(acme)}
        strict = {name: f for name, f in published.items() if f["strict"]}

        assert set(strict) == {t.safe_name for t in registry.tools() if t.strict}
        assert {"slack_post_message", "crm_get_customer"} <= set(strict)
        for name, function in strict.items():
            problems = strict_mode_problems(function["parameters"])
            assert not problems, (name, problems)

    def test_a_strict_definition_is_accepted_by_the_openai_packages_strict_converter_unchanged(self, acme):
        # openai.lib's own conversion (what `pydantic_function_tool` sends) has nothing left to change.
        from openai.lib._pydantic import _ensure_strict_json_schema

        for tool in registry.tools():
            if tool.strict:
                schema = tool.strict_parameters()
                assert _ensure_strict_json_schema(dict(schema), path=(), root=dict(schema)) == schema

    def test_a_valid_call_of_a_strict_definition_is_valid_for_the_tool(self, acme):
        args = {"channel": "#ops", "text": "hello"}
        schema = registry.get("slack_post_message").strict_parameters()

        jsonschema.validate(args, schema)
        registry.validate(registry.get("slack_post_message"), args)


def strict_mode_problems(schema: dict[str, Any], path: str = "$") -> list[str]:
    """OpenAI's strict mode (Structured Outputs, "Supported schemas"): only its keywords; every object closed
    (``additionalProperties: false``) with every property required; no ``oneOf``, no ``default``."""
    problems: list[str] = []
    for keyword in schema:
        if keyword not in registry.STRICT_KEYWORDS:
            problems.append(f"{path}: {keyword} is not supported in strict mode")
    if schema.get("format") is not None and schema["format"] not in registry.STRICT_FORMATS:
        problems.append(f"{path}: format {schema['format']}")
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            problems.append(f"{path}: additionalProperties must be false")
        if sorted(schema.get("required", [])) != sorted(schema.get("properties", {})):
            problems.append(f"{path}: every property must be required")
    for name, sub in schema.get("properties", {}).items():
        problems += strict_mode_problems(sub, f"{path}.{name}")
    for name, sub in schema.get("$defs", {}).items():
        problems += strict_mode_problems(sub, f"{path}.$defs.{name}")
    if isinstance(schema.get("items"), dict):
        problems += strict_mode_problems(schema["items"], f"{path}[]")
    for index, sub in enumerate(schema.get("anyOf", [])):
        problems += strict_mode_problems(sub, f"{path}|{index}")
    return problems


@pytest.mark.django_db
class TestToolsSayHowTheyAreCalled:
    def test_reads_are_called_and_writes_proposed(self, acme):
        tools = {t["name"]: t for t in acme.agent_client.get("/api/v1/tools/").json()["tools"]}

        assert tools["crm.get_customer"]["call"]["how"] == "call"
        assert tools["crm.get_customer"]["call"]["url"].endswith("/api/v1/tools/crm.get_customer/call/")
        assert tools["warehouse.query"]["call"]["url"].endswith("/api/v1/tools/warehouse.query/call/")
        assert tools["crm.create_ticket"]["call"]["how"] == "propose"
        assert tools["crm.create_ticket"]["call"]["url"].endswith("/api/v1/proposals/")
        assert tools["crm.create_ticket"]["safe_name"] == "crm_create_ticket"


CUSTOMER = {"users": [{"id": 7, "name": "Alice", "email": "alice@example.com", "role": "end-user"}]}


@pytest.mark.django_db
class TestDirectReads:
    def call(self, party: Any, name: str, args: Any) -> Any:
        return party.agent_client.post(f"/api/v1/tools/{name}/call/", {"args": args}, format="json")

    @responses.activate(assert_all_requests_are_fired=True)
    def test_a_read_tool_runs_at_once_and_is_audited(self, acme):
        responses.add(responses.GET, CUSTOMERS_URL, json=CUSTOMER)

        response = self.call(acme, "crm_get_customer", {"email": "alice@example.com"})

        assert response.status_code == 200, response.content
        assert response.json()["tool"] == "crm.get_customer"
        assert response.json()["result"]["customers"][0]["email"] == "alice@example.com"
        event = AuditEvent.objects.get(action="tool.read")
        assert (event.tenant, event.channel, event.result, event.subject_id) == (
            "acme",
            "api",
            "ok",
            "crm.get_customer",
        )
        assert "alice" not in str(event.data)  # the args' hash, not the args
        assert Proposal.objects.count() == 0

    def test_a_write_tool_is_refused_with_write_tool(self, acme):
        response = self.call(acme, "crm.create_ticket", TICKET)

        assert response.status_code == 400
        assert response.json()["error"] == "write_tool"
        assert Proposal.objects.count() == 0

    def test_warehouse_query_runs_the_same_plan_as_queries(self, acme):
        plan = {"dataset": "orders", "select": [{"agg": "count", "as": "n"}]}

        direct = self.call(acme, "warehouse.query", plan)
        via_queries = acme.agent_client.post("/api/v1/queries/", plan, format="json")

        assert direct.status_code == 200, direct.content
        assert direct.json()["result"] == via_queries.json()
        assert AuditEvent.objects.filter(action="warehouse.query", channel="api", result="ok").count() == 2

    def test_warehouse_refusals_are_the_same_400(self, acme):
        response = self.call(acme, "warehouse_query", {"dataset": "salaries", "select": ["x"]})

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_query"

    def test_a_tool_outside_the_agents_list_is_denied_and_audited(self, acme):
        acme.agent.allowed_tools = ["crm.create_ticket"]
        acme.agent.save()

        response = self.call(acme, "crm.get_customer", {"email": "alice@example.com"})

        assert response.status_code == 403
        assert response.json()["error"] == "policy_denied"
        assert AuditEvent.objects.filter(action="tool.read", result="denied").count() == 1

    def test_invalid_args_are_a_400_naming_the_field(self, acme):
        response = self.call(acme, "crm.get_customer", {"email": "not an email"})

        assert response.status_code == 400
        assert response.json()["error"] == "invalid_args"
        assert response.json()["errors"][0]["loc"] == ["args", "email"]

    def test_people_cannot_call_tools(self, acme):
        response = acme.reviewer_client.post(
            "/api/v1/tools/crm.get_customer/call/", {"args": {"email": "a@example.com"}}, format="json"
        )

        assert response.status_code == 403

    @responses.activate
    def test_the_tools_rate_limit_is_a_429(self, acme, settings):
        responses.add(responses.GET, CUSTOMERS_URL, json=CUSTOMER)
        settings.ACME_RATE_LIMITS = {"crm.get_customer": {"rate": 0.001, "burst": 1, "per": ["tenant"]}}

        first = self.call(acme, "crm.get_customer", {"email": "alice@example.com"})
        second = self.call(acme, "crm_get_customer", {"email": "alice@example.com"})

        assert first.status_code == 200
        assert second.status_code == 429
        assert second.json()["error"] == "rate_limited" and int(second["Retry-After"]) >= 1


@pytest.mark.django_db
class TestWait:
    def test_a_bad_wait_is_a_400(self, acme):
        pid = submit(acme).json()["id"]

        for bad in ("31", "-1", "abc", "1.5", "99999"):
            response = acme.agent_client.get(f"/api/v1/proposals/{pid}/?wait={bad}")
            assert response.status_code == 400, bad
            assert response.json()["error"] == "invalid_parameter" and response.json()["parameter"] == "wait"

    def test_without_news_it_answers_after_the_wait(self, acme):
        pid = submit(acme).json()["id"]

        started = time.monotonic()
        response = acme.agent_client.get(f"/api/v1/proposals/{pid}/?wait=1")

        assert response.status_code == 200 and response.json()["status"] == "pending"
        assert 0.9 <= time.monotonic() - started < 5

    def test_a_decided_proposal_answers_at_once(self, acme):
        pid = submit(acme).json()["id"]
        acme.reviewer_client.post(f"/api/v1/proposals/{pid}/reject/", {"reason": "no"}, format="json")

        started = time.monotonic()
        response = acme.agent_client.get(f"/api/v1/proposals/{pid}/?wait=30")

        assert response.json()["status"] == "rejected"
        assert time.monotonic() - started < 2

    def test_another_tenants_proposal_is_404_even_waiting(self, acme, globex):
        pid = submit(acme).json()["id"]

        assert globex.agent_client.get(f"/api/v1/proposals/{pid}/?wait=1").status_code == 404

    def test_with_every_slot_taken_it_answers_at_once_with_retry_after(self, acme, settings):
        settings.ACME_WAIT_SLOTS = 0
        pid = submit(acme).json()["id"]

        started = time.monotonic()
        response = acme.agent_client.get(f"/api/v1/proposals/{pid}/?wait=30")

        assert response.status_code == 200 and response.json()["status"] == "pending"
        assert response["Retry-After"] == str(waiting.NO_SLOT_RETRY_AFTER)
        assert time.monotonic() - started < 2


@pytest.mark.django_db(transaction=True)
class TestWaitIsWoken:
    """Real transactions: the signal is sent after the decision's commit, and the waiter holds no database
    connection while it waits."""

    def test_a_waiting_agent_hears_of_the_decision_at_once(self, acme):
        pid = submit(acme).json()["id"]
        answers: dict[str, Any] = {}

        def wait() -> None:
            try:
                started = time.monotonic()
                answers["response"] = acme.agent_client.get(f"/api/v1/proposals/{pid}/?wait=20")
                answers["seconds"] = time.monotonic() - started
            finally:
                connection.close()

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.8)
        assert waiting.SLOTS.busy == 1  # it is waiting
        proposal = Proposal.objects.get(pk=pid)
        services.proposal_reject(
            proposal=proposal, reviewer=acme.reviewer, reason="not now", where=Where(channel="api")
        )
        waiter.join(25)

        assert answers["response"].json()["status"] == "rejected"
        assert answers["response"].json()["decision"]["reason"] == "not now"
        assert answers["seconds"] < 5

    def test_the_waiter_gives_its_database_connection_back(self, acme, monkeypatch):
        pid = submit(acme).json()["id"]
        released: list[bool] = []
        original = waiting._release_connection

        def release() -> None:
            original()
            # SQLite's in-memory test database is never really closed (Django keeps it, or it would be lost).
            released.append(
                connection.connection is None
                or connection.settings_dict["NAME"] == ":memory:"
                or "mode=memory" in str(connection.settings_dict.get("NAME"))
            )

        monkeypatch.setattr(waiting, "_release_connection", release)

        acme.agent_client.get(f"/api/v1/proposals/{pid}/?wait=1")

        assert released and all(released)

    @responses.activate
    def test_an_approved_proposal_waits_for_its_commit(self, acme):
        crm_created(responses.mock)
        pid = submit(acme).json()["id"]
        proposal = Proposal.objects.get(pk=pid)
        services.proposal_approve(proposal=proposal, reviewer=acme.reviewer, where=Where(channel="api"))

        response = acme.agent_client.get(f"/api/v1/proposals/{pid}/?wait=5")

        assert response.json()["status"] == Status.COMMITTED
        assert response.json()["receipt"]["external_id"] == "4242"


def test_a_wait_waits_out_exactly_the_lifecycles_live_statuses():
    from approvals import lifecycle

    assert waiting.UNDECIDED | waiting.IN_FLIGHT == lifecycle.LIVE
