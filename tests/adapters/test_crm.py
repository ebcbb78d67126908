"""The CRM tools against a mocked Zendesk (``responses``): bodies, previews, diffs, stale targets.

The tenant ``acme`` has its own CRM connection at ``BASE`` (``set_connection``): every ticket there is its own.
The environment's default CRM points elsewhere, so a call that went to it would fail here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from adapters import connections, registry
from adapters.errors import InvalidArgs, PermanentFailure, StaleTarget
from audit import services as audit

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
def crm_settings(settings: Any, fast_retries: None, db: Any) -> None:
    settings.CRM_BASE_URL = "https://default-crm.invalid"
    settings.CRM_API_TOKEN = "not-acmes-token"
    connections.connection_set(
        tenant="acme",
        system="crm",
        base_url=BASE,
        token="tok-123",
        actor=audit.SYSTEM,
        where=audit.Where(channel="cli"),
    )


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
    outcome = registry.execute("crm.create_ticket", args, idempotency_key="idem-1", tenant="acme")
    assert outcome.system == "crm"
    assert outcome.external_id == "42"
    assert outcome.attempts == 1
    # The link a reviewer follows is the ticket as a person sees it; the API's URL stays in the data.
    assert outcome.url == f"{BASE}/agent/tickets/42"
    assert outcome.summary == {
        "id": 42,
        "status": "new",
        "priority": "urgent",
        "subject": "Printer on fire",
        "api_url": f"{BASE}/api/v2/tickets/42.json",
    }


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
    registry.execute(
        "crm.create_ticket", {"subject": "S", "description": "D"}, idempotency_key="k", tenant="acme"
    )


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
        registry.execute(
            "crm.create_ticket", {"subject": "S", "description": "D"}, idempotency_key="k", tenant="acme"
        )
    assert info.value.attempts == 1


def test_422_from_the_crm_is_permanent(mocked: Any) -> None:
    mocked.post(f"{BASE}/api/v2/tickets.json", status=422, json={"error": "RecordInvalid", "details": {}})
    with pytest.raises(PermanentFailure) as info:
        registry.execute(
            "crm.create_ticket", {"subject": "S", "description": "D"}, idempotency_key="k", tenant="acme"
        )
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


def test_update_preview_names_the_ticket_its_requester_its_link_and_when_it_was_read(mocked: Any) -> None:
    # given: Zendesk sideloads the requester with ?include=users
    mocked.get(
        f"{BASE}/api/v2/tickets/42.json",
        json={"ticket": ticket(), "users": [{"id": 7, "name": "Ada Lovelace", "email": "ada@example.com"}]},
        match=[matchers.query_param_matcher({"include": "users"})],
    )
    # when
    before = datetime.now(UTC).replace(microsecond=0)
    target = registry.prepare("crm.update_ticket", {"ticket_id": 42, "status": "solved"}, CTX).preview.target
    # then
    read_at = datetime.fromisoformat(target.pop("read_at"))
    assert before <= read_at <= datetime.now(UTC)
    assert target == {
        "key": "crm:ticket:42",
        "system": "crm",
        "id": 42,
        "title": "Printer on fire",
        "requester": "Ada Lovelace <ada@example.com>",
        "url": f"{BASE}/agent/tickets/42",
    }


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
        tenant="acme",
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
            tenant="acme",
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
            tenant="acme",
            snapshot={"updated_at": stamp},
        )


def test_update_execute_without_a_snapshot_is_stale() -> None:
    with pytest.raises(StaleTarget):
        registry.execute(
            "crm.update_ticket", {"ticket_id": 42, "status": "solved"}, idempotency_key="k", tenant="acme"
        )


# --- update: our own write may have landed (a real Zendesk keeps no Idempotency-Key on PUT) ----------------

STAMP = "2026-01-01T10:00:00Z"
LATER = "2026-01-01T11:00:00Z"
UPDATE = {"ticket_id": 42, "status": "solved", "comment": "Fixed"}
TICKET_URL = f"{BASE}/api/v2/tickets/42.json"
COMMENTS_URL = f"{BASE}/api/v2/tickets/42/comments.json"


def comments(*made: tuple[str, str]) -> dict[str, Any]:
    """Zendesk's comments page, newest first: (body, created_at) pairs."""
    return {
        "comments": [
            {"id": i, "type": "Comment", "body": body, "public": True, "created_at": at, "author_id": 7}
            for i, (body, at) in enumerate(made, start=1)
        ],
        "next_page": None,
        "count": len(made),
    }


def update(*, resumed: bool = False, args: dict[str, Any] = UPDATE) -> registry.Outcome:
    return registry.execute(
        "crm.update_ticket",
        args,
        idempotency_key="k",
        tenant="acme",
        snapshot={"updated_at": STAMP},
        resumed=resumed,
    )


def methods(mocked: Any) -> list[tuple[str, str]]:
    return [(call.request.method, call.request.url.split("?")[0]) for call in mocked.calls]


def test_a_put_whose_answer_was_lost_and_then_met_409_finds_its_own_write_applied(
    mocked: Any, sleeps: list[float]
) -> None:
    # given: the first PUT lands but its answer is lost; the retry meets our own write (409)
    mocked.get(TICKET_URL, json={"ticket": ticket()})
    mocked.put(TICKET_URL, body=requests.ConnectionError("reset by peer"))
    mocked.put(TICKET_URL, status=409, json={"error": "UpdateConflict"})
    mocked.get(TICKET_URL, json={"ticket": ticket(status="solved", updated_at=LATER)})
    mocked.get(
        COMMENTS_URL,
        json=comments(("Fixed", LATER), ("Smoke", "2026-01-01T10:00:00Z")),
        match=[matchers.query_param_matcher({"sort_order": "desc"})],
    )
    # when
    outcome = update()
    # then: committed, and the receipt says it was found applied
    assert outcome.reconciled
    assert (outcome.external_id, outcome.attempts) == ("42", 2)
    assert outcome.summary == {
        "id": 42,
        "status": "solved",
        "priority": "normal",
        "subject": "Printer on fire",
        "api_url": TICKET_URL,
        "updated_at": LATER,
    }
    assert methods(mocked) == [
        ("GET", TICKET_URL),
        ("PUT", TICKET_URL),
        ("PUT", TICKET_URL),
        ("GET", TICKET_URL),
        ("GET", COMMENTS_URL),
    ]


@pytest.mark.parametrize(
    ("live", "found"),
    [
        # someone else changed a field after the preview: no need to look for the comment
        (ticket(status="pending", updated_at=LATER), None),
        # the fields match, but the comment is not there
        (ticket(status="solved", updated_at=LATER), comments(("Looking into it", LATER))),
        # the same comment, made when the preview saw the ticket: an earlier one, not ours
        (ticket(status="solved", updated_at=LATER), comments(("Fixed", STAMP))),
    ],
)
def test_a_409_after_a_lost_answer_is_stale_unless_the_ticket_shows_our_write(
    mocked: Any, sleeps: list[float], live: dict[str, Any], found: dict[str, Any] | None
) -> None:
    mocked.get(TICKET_URL, json={"ticket": ticket()})
    mocked.put(TICKET_URL, status=504)
    mocked.put(TICKET_URL, status=409, json={"error": "UpdateConflict"})
    mocked.get(TICKET_URL, json={"ticket": live})
    if found is not None:
        mocked.get(COMMENTS_URL, json=found)
    with pytest.raises(StaleTarget):
        update()


def test_a_first_attempt_409_is_someone_elses_write_and_is_not_reconciled(mocked: Any) -> None:
    mocked.get(TICKET_URL, json={"ticket": ticket()})
    mocked.put(TICKET_URL, status=409, json={"error": "UpdateConflict"})
    with pytest.raises(StaleTarget):
        update()
    assert len(mocked.calls) == 2  # no look for our write: nothing of ours can have landed


def test_a_resumed_commit_finds_the_earlier_runs_write_and_sends_nothing(mocked: Any) -> None:
    # given: the earlier run's PUT landed (the worker died before recording it)
    mocked.get(TICKET_URL, json={"ticket": ticket(status="solved", updated_at=LATER)})
    mocked.get(COMMENTS_URL, json=comments(("Fixed", LATER)))
    # when
    outcome = update(resumed=True)
    # then: no PUT, and the receipt counts none
    assert (outcome.reconciled, outcome.attempts, outcome.summary["updated_at"]) == (True, 0, LATER)
    assert methods(mocked) == [("GET", TICKET_URL), ("GET", COMMENTS_URL)]


def test_a_resumed_commit_of_fields_only_needs_no_comments(mocked: Any) -> None:
    live = ticket(priority="urgent", tags=["vip", "hardware"], updated_at=LATER)
    mocked.get(TICKET_URL, json={"ticket": live})
    outcome = update(resumed=True, args={"ticket_id": 42, "priority": "urgent", "tags": ["hardware", "vip"]})
    assert outcome.reconciled
    assert len(mocked.calls) == 1


def test_a_resumed_commit_that_finds_the_ticket_unmoved_sends_its_put(mocked: Any) -> None:
    mocked.get(TICKET_URL, json={"ticket": ticket()})
    mocked.put(TICKET_URL, json={"ticket": ticket(status="solved", updated_at=LATER)})
    outcome = update(resumed=True)
    assert not outcome.reconciled
    assert outcome.attempts == 1


@pytest.mark.parametrize("status", [404, 403])
def test_a_crm_without_the_comments_endpoint_cannot_show_our_write_so_it_is_stale(
    mocked: Any, status: int
) -> None:
    mocked.get(TICKET_URL, json={"ticket": ticket(status="solved", updated_at=LATER)})
    mocked.get(COMMENTS_URL, status=status, json={"error": "InvalidEndpoint"})
    with pytest.raises(StaleTarget):
        update(resumed=True)


def test_a_malformed_comments_page_is_stale_too(mocked: Any) -> None:
    mocked.get(TICKET_URL, json={"ticket": ticket(status="solved", updated_at=LATER)})
    mocked.get(COMMENTS_URL, json={"comments": [{"body": "Fixed"}]})
    with pytest.raises(StaleTarget):
        update(resumed=True)


def test_other_tools_do_not_hear_of_resumed(mocked: Any) -> None:
    mocked.post(f"{BASE}/api/v2/tickets.json", status=201, json={"ticket": ticket()})
    outcome = registry.execute(
        "crm.create_ticket",
        {"subject": "S", "description": "D"},
        idempotency_key="k",
        tenant="acme",
        resumed=True,
    )
    assert not outcome.reconciled


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
