"""The CRM tools against a mocked Zendesk (``responses``): bodies, previews, diffs, stale targets."""

from __future__ import annotations

import json
from typing import Any

import pytest
import responses
from responses import matchers

from adapters import registry
from adapters.errors import InvalidArgs, PermanentFailure, StaleTarget

BASE = "https://acme.zendesk.test"
CTX = registry.Context(tenant="acme", agent="bot")


def ticket(**overrides: Any) -> dict[str, Any]:
    return {
        "id": 42,
        "subject": "Printer on fire",
        "description": "Smoke",
        "priority": "normal",
        "status": "open",
        "requester_id": 7,
        "tags": ["hardware"],
        "created_at": "2026-01-01T10:00:00Z",
        "updated_at": "2026-01-01T10:00:00Z",
        "some_field_we_ignore": {"x": 1},
        **overrides,
    }


@pytest.fixture(autouse=True)
def crm_settings(settings: Any, fast_retries: None) -> None:
    settings.CRM_BASE_URL = BASE
    settings.CRM_API_TOKEN = "tok-123"


@pytest.fixture
def mocked() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


CREATE_ARGS = {
    "subject": "  Printer on fire ",
    "description": "Smoke\ncoming out",
    "priority": "Critical",
    "customer_email": "Ada@Example.COM",
    "tags": ["Hardware", "hardware", "office"],
}


def test_prepare_create_normalizes_and_previews_every_field_as_an_addition() -> None:
    prepared = registry.prepare("crm.create_ticket", CREATE_ARGS, CTX)
    assert prepared.args == {
        "subject": "Printer on fire",
        "description": "Smoke\ncoming out",
        "priority": "urgent",
        "customer_email": "ada@example.com",
        "tags": ["hardware", "office"],
    }
    assert prepared.risk == "medium"
    assert prepared.preview.summary == 'Create ticket "Printer on fire" (urgent) for ada@example.com'
    assert prepared.preview.changes == [
        {"field": name, "before": None, "after": value} for name, value in prepared.args.items()
    ]


def test_create_posts_the_zendesk_body_with_auth_and_idempotency_key(mocked: Any) -> None:
    args = registry.prepare("crm.create_ticket", CREATE_ARGS, CTX).args
    mocked.post(
        f"{BASE}/api/v2/tickets.json",
        status=201,
        json={"ticket": ticket(priority="urgent", status="new")},
        match=[
            matchers.header_matcher({"Authorization": "Bearer tok-123", "Idempotency-Key": "idem-1"}),
            matchers.json_params_matcher(
                {
                    "ticket": {
                        "subject": "Printer on fire",
                        "comment": {"body": "Smoke\ncoming out"},
                        "priority": "urgent",
                        "requester": {"email": "ada@example.com"},
                        "tags": ["hardware", "office"],
                    }
                }
            ),
        ],
    )
    outcome = registry.execute("crm.create_ticket", args, idempotency_key="idem-1")
    assert outcome.system == "crm"
    assert outcome.external_id == "42"
    assert outcome.attempts == 1
    assert outcome.url == f"{BASE}/api/v2/tickets/42.json"
    assert outcome.summary == {"id": 42, "status": "new", "priority": "urgent", "subject": "Printer on fire"}


def test_create_without_optional_fields_sends_none_of_them(mocked: Any) -> None:
    mocked.post(
        f"{BASE}/api/v2/tickets.json",
        status=201,
        json={"ticket": ticket()},
        match=[
            matchers.json_params_matcher(
                {"ticket": {"subject": "S", "comment": {"body": "D"}, "priority": "normal"}}
            )
        ],
    )
    registry.execute("crm.create_ticket", {"subject": "S", "description": "D"}, idempotency_key="k")


@pytest.mark.parametrize(
    "body",
    [
        {"ticket": {"id": "not-a-number", "status": "new", "updated_at": "x"}},
        {"ticket": {"subject": "no id"}},
        {"tickets": []},
        [],
        "not json",
    ],
)
def test_malformed_create_response_is_a_permanent_failure(mocked: Any, body: Any) -> None:
    raw = body if isinstance(body, str) else json.dumps(body)
    mocked.post(f"{BASE}/api/v2/tickets.json", status=201, body=raw)
    with pytest.raises(PermanentFailure, match="malformed") as info:
        registry.execute("crm.create_ticket", {"subject": "S", "description": "D"}, idempotency_key="k")
    assert info.value.attempts == 1


def test_422_from_the_crm_is_permanent(mocked: Any) -> None:
    mocked.post(f"{BASE}/api/v2/tickets.json", status=422, json={"error": "RecordInvalid", "details": {}})
    with pytest.raises(PermanentFailure) as info:
        registry.execute("crm.create_ticket", {"subject": "S", "description": "D"}, idempotency_key="k")
    assert info.value.status == 422


# --- update ----------------------------------------------------------------------------------------------


def test_update_preview_diffs_only_what_changes(mocked: Any) -> None:
    mocked.get(f"{BASE}/api/v2/tickets/42.json", json={"ticket": ticket()})
    prepared = registry.prepare(
        "crm.update_ticket",
        {
            "ticket_id": "42",
            "priority": "p1",
            "status": "open",
            "subject": "Printer on fire",
            "comment": "On it",
        },
        CTX,
    )
    assert prepared.args["ticket_id"] == 42
    assert prepared.preview.changes == [
        {"field": "priority", "before": "normal", "after": "urgent"},
        {"field": "comment", "before": None, "after": "On it"},
    ]
    assert prepared.preview.snapshot == {"updated_at": "2026-01-01T10:00:00Z"}
    assert prepared.preview.summary == "Update ticket #42: priority normal → urgent, add a comment"


def test_update_preview_of_a_missing_ticket_names_the_field(mocked: Any) -> None:
    mocked.get(f"{BASE}/api/v2/tickets/9.json", status=404, json={"error": "RecordNotFound"})
    with pytest.raises(InvalidArgs) as info:
        registry.prepare("crm.update_ticket", {"ticket_id": 9, "status": "solved"}, CTX)
    assert info.value.errors[0]["loc"] == ["args", "ticket_id"]


def test_update_execute_puts_the_changes_when_the_ticket_did_not_move(mocked: Any) -> None:
    stamp = "2026-01-01T10:00:00Z"
    mocked.get(f"{BASE}/api/v2/tickets/42.json", json={"ticket": ticket()})
    mocked.put(
        f"{BASE}/api/v2/tickets/42.json",
        json={"ticket": ticket(status="solved", updated_at="2026-01-01T11:00:00Z")},
        match=[
            matchers.header_matcher({"Idempotency-Key": "k"}),
            matchers.json_params_matcher(
                {
                    "ticket": {
                        "status": "solved",
                        "comment": {"body": "Fixed", "public": True},
                        "safe_update": True,
                        "updated_stamp": stamp,
                    }
                }
            ),
        ],
    )
    outcome = registry.execute(
        "crm.update_ticket",
        {"ticket_id": 42, "status": "solved", "comment": "Fixed"},
        idempotency_key="k",
        snapshot={"updated_at": stamp},
    )
    assert outcome.external_id == "42"
    assert outcome.summary["status"] == "solved"


def test_update_execute_refuses_when_updated_at_moved(mocked: Any) -> None:
    mocked.get(f"{BASE}/api/v2/tickets/42.json", json={"ticket": ticket(updated_at="2026-01-02T00:00:00Z")})
    with pytest.raises(StaleTarget):
        registry.execute(
            "crm.update_ticket",
            {"ticket_id": 42, "status": "solved"},
            idempotency_key="k",
            snapshot={"updated_at": "2026-01-01T10:00:00Z"},
        )


def test_update_execute_maps_a_crm_update_conflict_to_stale(mocked: Any) -> None:
    stamp = "2026-01-01T10:00:00Z"
    mocked.get(f"{BASE}/api/v2/tickets/42.json", json={"ticket": ticket()})
    mocked.put(f"{BASE}/api/v2/tickets/42.json", status=409, json={"error": "UpdateConflict"})
    with pytest.raises(StaleTarget):
        registry.execute(
            "crm.update_ticket",
            {"ticket_id": 42, "status": "solved"},
            idempotency_key="k",
            snapshot={"updated_at": stamp},
        )


def test_update_execute_without_a_snapshot_is_stale() -> None:
    with pytest.raises(StaleTarget):
        registry.execute("crm.update_ticket", {"ticket_id": 42, "status": "solved"}, idempotency_key="k")


# --- get_customer -----------------------------------------------------------------------------------------


def test_get_customer_searches_by_normalized_email(mocked: Any) -> None:
    mocked.get(
        f"{BASE}/api/v2/users/search.json",
        match=[matchers.query_param_matcher({"query": "email:ada@example.com"})],
        json={
            "users": [{"id": 1, "name": "Ada", "email": "ada@example.com", "role": "end-user", "x": 1}],
            "count": 1,
        },
    )
    result = registry.read("crm.get_customer", {"email": " ADA@example.com"}, CTX)
    assert result == {
        "customers": [
            {"id": 1, "name": "Ada", "email": "ada@example.com", "role": "end-user", "created_at": None}
        ]
    }


def test_get_customer_malformed_response(mocked: Any) -> None:
    mocked.get(f"{BASE}/api/v2/users/search.json", json={"users": "nope"})
    with pytest.raises(PermanentFailure):
        registry.read("crm.get_customer", {"email": "ada@example.com"}, CTX)
