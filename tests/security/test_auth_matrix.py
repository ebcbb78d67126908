"""Who may call what: every endpoint of the URL conf x every kind of caller → the expected status.

The list of endpoints is generated from the URL conf (``django.urls.get_resolver()``, walked recursively),
so a new endpoint without a row in ``MATRIX`` fails ``test_every_endpoint_has_a_row``. One rule leaves
patterns out of the generated list, and only these: the patterns *inside* Django's admin site (its
``include`` carries the application namespace ``admin``). The admin is one family, represented by its
index row ``admin/`` (staff only). A project pattern is never in that namespace, so the rule cannot hide one.

Callers: anonymous, a bad token, a revoked agent, the agent, an agent of another tenant, the reviewer, a
reviewer of another tenant, the requester a proposal was made on behalf of, and an admin (superuser, staff,
member of no tenant). API rows send the caller's bearer token; browser rows log people in with a session
(agents have none: for the browser they are anonymous). CSRF is enforced in ``test_session_post_without_csrf``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from approvals.accounts import agent_create, user_token_create
from approvals.models import Proposal, Receipt, Status

CALLERS = [
    "anonymous",
    "bad_token",
    "revoked_agent",
    "agent",
    "other_agent",
    "reviewer",
    "other_reviewer",
    "requester",
    "admin",
]
TICKET = {"subject": "Printer on fire", "description": "Smoke on floor 3.", "priority": "high"}
PLAN = {"dataset": "orders", "select": ["region"], "limit": 1}
ADMIN_NAMESPACE = "admin"


@dataclass(frozen=True)
class Row:
    route: str  # the pattern as the URL conf spells it (joined across includes)
    method: str
    expect: dict[str, int]
    kind: str = "api"  # "api": bearer tokens; "web": sessions
    path: str = ""  # the concrete path; "{pid}" is the proposal's id
    body: Any = None
    proposal: str = "pending"  # which proposal "{pid}" names: "pending" or "committed"
    headers: dict[str, str] = field(default_factory=dict)


def api(**overrides: int) -> dict[str, int]:
    """API default: no valid token → 401."""
    return {"anonymous": 401, "bad_token": 401, "revoked_agent": 401, **overrides}


def web(**overrides: int) -> dict[str, int]:
    """Browser default (login_required): anyone without a session is sent to the login page."""
    return {
        "anonymous": 302,
        "bad_token": 302,
        "revoked_agent": 302,
        "agent": 302,
        "other_agent": 302,
        **overrides,
    }


def everyone(status: int) -> dict[str, int]:
    return dict.fromkeys(CALLERS, status)


AGENTS_ONLY = dict(agent=200, other_agent=200, reviewer=403, other_reviewer=403, requester=403, admin=403)
# The proposal is the agent's, made on behalf of the requester, in the tenant of the agent and reviewer.
OWN_TENANT_READ = dict(agent=200, other_agent=404, reviewer=200, other_reviewer=404, requester=200, admin=404)
PK = "<uuid:pk>"

MATRIX: list[Row] = [
    # --- reviewer UI (sessions) ------------------------------------------------------------------------
    Row("", "GET", web(reviewer=200, other_reviewer=200, requester=200, admin=200), "web", "/"),
    Row(
        "inbox/live/",
        "GET",
        web(reviewer=200, other_reviewer=200, requester=200, admin=200),
        "web",
        "/inbox/live/",
    ),
    Row(f"proposals/{PK}/", "GET", web(reviewer=200, other_reviewer=404, requester=200, admin=404), "web"),
    # An email's link: without a valid signed token it leads nowhere, for anyone (the token's own test is
    # tests/approvals/test_notifications.py); with one, to the review page above.
    Row(f"proposals/{PK}/open/", "GET", everyone(404), "web"),
    Row(
        f"proposals/{PK}/status/",
        "GET",
        web(reviewer=200, other_reviewer=404, requester=200, admin=404),
        "web",
    ),
    # A decision answers with a redirect to the proposal page; the requester may not decide on their own.
    Row(
        f"proposals/{PK}/approve/",
        "POST",
        web(reviewer=302, other_reviewer=404, requester=403, admin=404),
        "web",
        body={"comment": "ok"},
    ),
    Row(
        f"proposals/{PK}/reject/",
        "POST",
        web(reviewer=302, other_reviewer=404, requester=403, admin=404),
        "web",
        body={"reason": "duplicate"},
    ),
    Row(
        f"proposals/{PK}/request_changes/",
        "POST",
        web(reviewer=302, other_reviewer=404, requester=403, admin=404),
        "web",
        body={"reason": "lower the priority"},
    ),
    Row(
        f"proposals/{PK}/edit/", "GET", web(reviewer=200, other_reviewer=404, requester=403, admin=404), "web"
    ),
    # Triage (issue 22): snooze by whoever may decide; reassign by the tenant's reviewers (the service then
    # asks for an admin or a member of the group). An unknown target is a message on the page (302).
    Row(
        f"proposals/{PK}/snooze/",
        "POST",
        web(reviewer=302, other_reviewer=404, requester=403, admin=404),
        "web",
        body={"until": "1h"},
    ),
    Row(
        f"proposals/{PK}/reassign/",
        "GET",
        web(reviewer=200, other_reviewer=404, requester=403, admin=404),
        "web",
    ),
    Row(
        f"proposals/{PK}/reassign/",
        "POST",
        web(reviewer=302, other_reviewer=404, requester=403, admin=404),
        "web",
        body={"to": "group:999999"},
    ),
    # Bulk review from the inbox: reviewers only; with nothing selected a reviewer gets the 400 page.
    Row(
        "proposals/bulk/",
        "POST",
        web(reviewer=400, other_reviewer=400, requester=403, admin=403),
        "web",
        "/proposals/bulk/",
        body={"verdict": "approve"},
    ),
    Row("accounts/login/", "GET", everyone(200), "web", "/accounts/login/"),
    Row("accounts/logout/", "POST", everyone(302), "web", "/accounts/logout/"),
    # The admin family: staff only (others are sent to the admin's login page).
    Row("admin/", "GET", {**everyone(302), "admin": 200}, "web", "/admin/"),
    Row("ops/", "GET", {**everyone(302), "admin": 200}, "web", "/ops/"),
    # DEBUG off and no ACME_METRICS_TOKEN: staff sessions only, the others get 403 (no redirect: a scraper).
    Row("metrics", "GET", {**everyone(403), "admin": 200}, "web", "/metrics"),
    # --- REST API (bearer tokens) ----------------------------------------------------------------------
    Row("api/v1/tools/", "GET", {**everyone(200), "bad_token": 401, "revoked_agent": 401}),
    Row(
        "api/v1/proposals/",
        "GET",
        api(agent=200, other_agent=200, reviewer=200, other_reviewer=200, requester=200, admin=200),
    ),
    Row(
        "api/v1/proposals/",
        "POST",
        api(agent=201, other_agent=201, reviewer=403, other_reviewer=403, requester=403, admin=403),
        body={"tool": "crm.create_ticket", "args": TICKET},
    ),
    Row(f"api/v1/proposals/{PK}/", "GET", api(**OWN_TENANT_READ)),
    Row(
        f"api/v1/proposals/{PK}/approve/",
        "POST",
        api(agent=403, other_agent=404, reviewer=202, other_reviewer=404, requester=403, admin=404),
        body={},
    ),
    Row(
        f"api/v1/proposals/{PK}/reject/",
        "POST",
        api(agent=403, other_agent=404, reviewer=200, other_reviewer=404, requester=403, admin=404),
        body={"reason": "duplicate"},
    ),
    Row(
        f"api/v1/proposals/{PK}/request_changes/",
        "POST",
        api(agent=403, other_agent=404, reviewer=200, other_reviewer=404, requester=403, admin=404),
        body={"reason": "lower the priority"},
    ),
    # Bulk: reviewers' (every person gets one result per id; an id they cannot see is skipped not_found).
    Row(
        "api/v1/proposals/bulk/",
        "POST",
        api(agent=403, other_agent=403, reviewer=200, other_reviewer=200, requester=200, admin=200),
        body={"ids": ["00000000-0000-4000-8000-000000000000"], "verdict": "approve"},
    ),
    Row(
        f"api/v1/proposals/{PK}/cancel/",
        "POST",
        api(agent=200, other_agent=404, reviewer=403, other_reviewer=404, requester=403, admin=404),
    ),
    Row(f"api/v1/proposals/{PK}/receipt/", "GET", api(**OWN_TENANT_READ), proposal="committed"),
    Row("api/v1/webhook/", "GET", api(**AGENTS_ONLY)),
    Row("api/v1/webhook/", "PUT", api(**AGENTS_ONLY), body={"url": "http://127.0.0.1:9/hook"}),
    Row("api/v1/webhook/", "DELETE", api(**{**AGENTS_ONLY, "agent": 204, "other_agent": 204})),
    # No bearer auth at all: the CRM's signature is the proof, and there is none here.
    Row(
        "api/v1/webhooks/crm/",
        "POST",
        everyone(401),
        path="/api/v1/webhooks/crm/?tenant=acme",
        body={"id": "1"},
    ),
    # Slack's Request URL: no bearer auth either; a request not signed by a connected workspace is a 401.
    Row("api/v1/slack/interactions/", "POST", everyone(401), body={"payload": "{}"}),
    Row("api/v1/events/", "GET", api(**AGENTS_ONLY)),
    Row(
        "api/v1/queries/",
        "GET",
        api(agent=200, other_agent=200, reviewer=200, other_reviewer=200, requester=200, admin=200),
    ),
    Row(
        "api/v1/queries/",
        "POST",
        api(agent=200, other_agent=200, reviewer=200, other_reviewer=200, requester=403, admin=403),
        body=PLAN,
    ),
    # A read tool called directly (contract 7): agents only, like a proposal.
    Row(
        "api/v1/tools/<str:name>/call/",
        "POST",
        api(**AGENTS_ONLY),
        path="/api/v1/tools/warehouse.query/call/",
        body={"args": PLAN},
    ),
    Row("api/v1/schema/", "GET", everyone(200)),
    Row("api/v1/docs/", "GET", everyone(200)),
    Row(r"api/v1/^(?P<path>[\s\S]*)$", "GET", everyone(404), path="/api/v1/no-such-endpoint/"),
    # The MCP server (contract 7): agent tokens only; a person (token or session) is 403.
    Row(
        "^mcp/?$",
        "POST",
        api(**AGENTS_ONLY),
        path="/mcp/",
        body={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}},
    ),
]


def _join(prefix: str, pattern: Any) -> str:
    return prefix + str(pattern)


def url_conf_routes(resolver: URLResolver | None = None, prefix: str = "") -> list[str]:
    """Every route of the URL conf, depth first, minus the admin site's own patterns (see the docstring)."""
    resolver = resolver or get_resolver()
    routes: list[str] = []
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.app_name == ADMIN_NAMESPACE:
                routes.append(_join(prefix, entry.pattern))  # the family, as one route
                continue
            routes.extend(url_conf_routes(entry, _join(prefix, entry.pattern)))
        elif isinstance(entry, URLPattern):
            routes.append(_join(prefix, entry.pattern))
    return routes


def test_every_endpoint_has_a_row() -> None:
    in_conf = set(url_conf_routes())
    in_table = {row.route for row in MATRIX}
    assert in_conf - in_table == set(), "endpoints without a row in MATRIX"
    assert in_table - in_conf == set(), "rows for endpoints that no longer exist"
    assert all(set(row.expect) == set(CALLERS) for row in MATRIX), "every row names every caller"


def test_the_admin_rule_hides_only_the_admin_site() -> None:
    """The one exclusion: patterns inside the ``admin`` application namespace, which is Django's admin site
    (the project's ModelAdmins live there too, behind the same staff-only gate: see the next test)."""
    from django.contrib import admin

    hidden = [
        r for r in get_resolver().url_patterns if isinstance(r, URLResolver) and r.app_name == ADMIN_NAMESPACE
    ]
    assert [str(r.pattern) for r in hidden] == ["admin/"]
    assert hidden[0].namespace == admin.site.name == ADMIN_NAMESPACE


def _admin_routes(resolver: URLResolver, prefix: str = "/admin/") -> list[str]:
    routes: list[str] = []
    for entry in resolver.url_patterns:
        pattern = _join(prefix, entry.pattern)
        if isinstance(entry, URLResolver):
            routes.extend(_admin_routes(entry, pattern))
        else:
            routes.append(pattern)
    return routes


@pytest.mark.django_db
def test_the_whole_admin_family_is_staff_only(acme: Any) -> None:
    """Every admin page without a parameter (the changelists, add forms...), as a logged-in non-staff
    reviewer: sent to the admin's login page, never shown."""
    family = [r for r in url_conf_routes() if r == "admin/"]
    resolver = next(
        r for r in get_resolver().url_patterns if isinstance(r, URLResolver) and r.app_name == "admin"
    )
    pages = [r for r in _admin_routes(resolver) if "<" not in r and "(?P" not in r and "^" not in r]
    client = Client()
    client.force_login(acme.reviewer)

    assert family and len(pages) > 5
    for page in pages:
        if page in ("/admin/login/", "/admin/logout/"):  # the gate itself
            continue
        response = client.get(page)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], (
            page,
            response.status_code,
        )


@dataclass
class World:
    callers: dict[str, dict[str, Any]]
    proposals: dict[str, str]


@pytest.fixture
def world(acme: Any, globex: Any) -> World:
    from tests.approvals.test_api import submit

    pending = submit(acme, TICKET, on_behalf_of=acme.requester.username).json()["id"]
    committed = submit(acme, {**TICKET, "subject": "done"}, on_behalf_of=acme.requester.username).json()["id"]
    Proposal.objects.filter(pk=committed).update(status=Status.COMMITTED)
    Receipt.objects.create(proposal_id=committed, system="crm", external_id="4242", attempts=1)
    revoked, revoked_token = agent_create(tenant=acme.tenant, name="retired", tools=["*"])
    revoked.is_active = False
    revoked.save(update_fields=["is_active"])
    root = get_user_model().objects.create_superuser("root", "root@example.com", "root-pass-123")
    callers = {
        "anonymous": {},
        "bad_token": {"token": "agt_this-is-not-a-token"},
        "revoked_agent": {"token": revoked_token},
        "agent": {"token": acme.agent_token},
        "other_agent": {"token": globex.agent_token},
        "reviewer": {"token": acme.reviewer_token, "user": acme.reviewer},
        "other_reviewer": {"token": globex.reviewer_token, "user": globex.reviewer},
        "requester": {"token": acme.requester_token, "user": acme.requester},
        "admin": {"token": user_token_create(user=root), "user": root},
    }
    return World(callers=callers, proposals={"pending": pending, "committed": committed})


def _path(row: Row, world: World) -> str:
    if row.path:
        return row.path
    return "/" + row.route.replace(PK, world.proposals[row.proposal])


def call(row: Row, caller: str, world: World, *, enforce_csrf: bool = False) -> Any:
    who = world.callers[caller]
    path = _path(row, world)
    if row.kind == "api":
        client = APIClient(enforce_csrf_checks=enforce_csrf)
        if "token" in who:
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {who['token']}")
        elif "user" in who:
            client.force_login(who["user"])
        return client.generic(row.method, path, _json(row.body), content_type="application/json")
    web_client = Client(enforce_csrf_checks=enforce_csrf)
    if "user" in who:
        web_client.force_login(who["user"])
    # WSGI environ extras (``**extra: Any``), not keyword arguments of get/post.
    headers: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {who['token']}"} if "token" in who else {}
    if row.method == "GET":
        return web_client.get(path, **headers)
    return web_client.post(path, row.body or {}, **headers)


def _json(body: Any) -> str:
    import json

    return json.dumps(body) if body is not None else ""


@pytest.mark.django_db
@pytest.mark.parametrize("row", MATRIX, ids=lambda r: f"{r.method} /{r.route}")
def test_auth_matrix(row: Row, world: World) -> None:
    """One row, every caller; each call in a savepoint rolled back after it, so every caller meets the
    same state (a pending proposal stays pending for the next caller)."""
    got: dict[str, int] = {}
    problems: list[str] = []
    for caller in CALLERS:
        with transaction.atomic():
            response = call(row, caller, world)
            transaction.set_rollback(True)
        got[caller] = response.status_code
        if row.kind == "api" and response.status_code >= 400:
            body = response.json()
            if not (isinstance(body.get("error"), str) and isinstance(body.get("detail"), str)):
                problems.append(f"{caller}: not the error shape: {body}")
        if row.kind == "web" and response.status_code == 302 and row.expect[caller] == 302:
            location = response["Location"]
            if row.route in ("admin/", "ops/"):
                if "/admin/login/" not in location:
                    problems.append(f"{caller}: redirected to {location}, not the admin login")
            elif "user" not in world.callers[caller] and not location.startswith("/accounts/login/"):
                problems.append(f"{caller}: redirected to {location}, not the login page")

    assert got == row.expect, {c: (got[c], row.expect[c]) for c in CALLERS if got[c] != row.expect[c]}
    assert problems == []


# Signed requests from outside systems (no session, no CSRF token: the signature is the proof) are 401s.
SIGNED_ROUTES = {"api/v1/webhooks/crm/", "api/v1/slack/interactions/"}
UNSAFE_ROWS = [row for row in MATRIX if row.method != "GET" and row.route not in SIGNED_ROUTES]


@pytest.mark.django_db
@pytest.mark.parametrize("row", UNSAFE_ROWS, ids=lambda r: f"{r.method} /{r.route}")
def test_session_post_without_csrf_token_is_403(row: Row, world: World) -> None:
    """A logged-in browser that did not send the CSRF token changes nothing, on the UI and on the API."""
    before = set(Proposal.objects.values_list("pk", "status"))
    response = call(
        row, "reviewer" if row.kind == "web" else "reviewer_session", _session_world(world), enforce_csrf=True
    )

    assert response.status_code == 403, (row.route, response.content[:300])
    assert set(Proposal.objects.values_list("pk", "status")) == before


def _session_world(world: World) -> World:
    """The reviewer with a session and no token: the API falls back to SessionAuthentication (CSRF-checked)."""
    return World(
        callers={**world.callers, "reviewer_session": {"user": world.callers["reviewer"]["user"]}},
        proposals=world.proposals,
    )


@pytest.mark.django_db
def test_api_session_call_with_session_is_allowed_for_safe_methods(world: World) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.callers["reviewer"]["user"])

    assert client.get(f"/api/v1/proposals/{world.proposals['pending']}/").status_code == 200
