"""The reviewer UI in a real browser (Debian's chromium through Playwright) against real processes:
gunicorn serving the app, an acme_worker committing, the sandbox CRM/Slack answering.

One stack and one browser for the module (the machine is small); each test opens its own page.
Screenshots of the inbox and of a proposal page go to docs/screenshots/ (shown in the README).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ON_CI
from tests.e2e.stack import ROOT, Stack, running_stack

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("ACME_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
        if ON_CI:
            pytest.fail(message)  # CI never skips the browser tests
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def stack(browser: Any) -> Iterator[Stack]:
    with running_stack(workers=1) as running:
        yield running


@pytest.fixture(scope="module")
def party(stack: Stack) -> dict[str, str]:
    return stack.party()


@pytest.fixture
def page(browser: Any, stack: Stack, party: dict[str, str]) -> Iterator[Any]:
    """A logged-in reviewer's page, through the login form."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=stack.web_url)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    tab.goto("/")
    expect(tab).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    tab.get_by_label("Username").fill(party["reviewer_username"])
    tab.get_by_label("Password").fill(party["reviewer_password"])
    tab.get_by_role("button", name="Log in").click()
    expect(tab.get_by_role("heading", name="Inbox")).to_be_visible()
    yield tab
    context.close()


def propose(
    stack: Stack, party: dict[str, str], tool: str, args: dict[str, Any], rationale: str = ""
) -> dict[str, Any]:
    response = stack.api(
        "POST", "/proposals/", party["agent"], json={"tool": tool, "args": args, "rationale": rationale}
    )
    assert response.status_code == 201, response.text
    return response.json()


def ticket(subject: str, priority: str = "high") -> dict[str, Any]:
    return {
        "subject": subject,
        "description": f"{subject}. Reported by a customer on the phone.",
        "priority": priority,
        "customer_email": "dana@example.com",
        "tags": ["phone"],
    }


def tickets_titled(stack: Stack, subject: str) -> list[dict[str, Any]]:
    return [t for t in stack.tickets() if t.get("subject") == subject]


def test_review_approve_watch_the_commit_and_reject(page: Any, stack: Stack, party: dict[str, str]) -> None:
    from playwright.sync_api import expect

    # given: proposals from the agent, over the API
    first = propose(
        stack,
        party,
        "crm.create_ticket",
        ticket("VPN drops every 10 minutes", "critical"),
        "Three customers reported VPN drops today; the on-call should look at it.",
    )
    propose(
        stack,
        party,
        "slack.post_message",
        {"channel": "#support", "text": "Heads-up: VPN incidents rising."},
        "Let the support channel know.",
    )
    other = propose(
        stack, party, "crm.create_ticket", ticket("Refund order 1234", "low"), "The customer asked."
    )

    # the inbox: pending first, with the summary, tool, agent and risk
    page.goto("/")
    rows = page.locator("table.inbox tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("VPN drops every 10 minutes")
    expect(rows.first).to_contain_text("crm.create_ticket")
    expect(rows.first).to_contain_text("bot")
    expect(page.get_by_role("navigation", name="Filter by status")).to_contain_text("Pending 3")

    # open the pending proposal: its diff (every field added for a create), args, key
    page.get_by_role("link", name=re.compile("VPN drops every 10 minutes")).click()
    expect(page).to_have_url(re.compile(rf"/proposals/{first['id']}/$"))
    diff = page.locator("table.diff")
    expect(diff).to_contain_text("subject")
    expect(diff.locator("tr.diff-added", has_text="priority")).to_contain_text("urgent")
    expect(page.locator("pre.json")).to_contain_text('"customer_email": "dana@example.com"')
    expect(page.get_by_text(first["idempotency_key"])).to_be_visible()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "proposal.png"), full_page=True)

    # approve; the CRM answers slowly, so the page first says it is working, then shows the ticket
    assert stack.sandbox("POST", "/_sandbox/faults", json={"target": "crm", "mode": "delay", "seconds": 3}).ok
    page.keyboard.press("a")  # the shortcut focuses the approval comment
    expect(page.get_by_label("Comment (optional)")).to_be_focused()
    page.keyboard.type("Looks right.")
    page.get_by_role("button", name="Approve").click()
    live = page.locator("#live-status")
    expect(live).to_contain_text("Working on it…")
    page.evaluate("window.__sameDocument = true")
    expect(live).to_contain_text("Committed — ticket", timeout=TIMEOUT_MS)
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    [created] = tickets_titled(stack, "VPN drops every 10 minutes")
    expect(live.locator("a.receipt-link")).to_have_text(f"#{created['id']}")
    body = stack.api("GET", f"/proposals/{first['id']}/", party["agent"]).json()
    assert body["status"] == "committed" and body["receipt"]["external_id"] == str(created["id"])
    assert body["decision"]["verdict"] == "approved" and body["decision"]["reason"] == "Looks right."

    # reject another, with a reason (keyboard: r focuses the reason)
    page.goto(f"/proposals/{other['id']}/")
    page.keyboard.press("r")
    reason = page.get_by_label("Reason (required to reject)")
    expect(reason).to_be_focused()
    reason.fill("Refunds go through billing, not support tickets.")
    page.get_by_role("button", name="Reject").click()
    expect(page.locator("#live-status")).to_contain_text("Rejected")
    body = stack.api("GET", f"/proposals/{other['id']}/", party["agent"]).json()
    assert body["status"] == "rejected"
    assert body["decision"]["reason"] == "Refunds go through billing, not support tickets."
    assert tickets_titled(stack, "Refund order 1234") == []

    # the inbox now: the pending message first, then the decided ones, newest first
    page.goto("/")
    statuses = page.locator("table.inbox tbody tr td:last-child")
    expect(statuses).to_have_text(["Pending", "Rejected", "Committed"])
    page.screenshot(path=str(SCREENSHOTS / "inbox.png"), full_page=True)


def test_on_a_phone_the_proposals_come_first_and_nothing_is_clipped_or_cramped(
    browser: Any, stack: Stack, party: dict[str, str]
) -> None:
    """390 px wide, touch: the filters fold into one line, the first proposal shows on the first screen,
    Approve and Edit keep a gap when they wrap, the JSON wraps instead of running off the screen, and the
    keyboard hint (no keyboard) is not shown."""
    from playwright.sync_api import expect

    # One long token in the description: the JSON line cannot break on a space.
    trace = "trace:" + "0a1b2c3d" * 20
    args = {**ticket("Laptop will not boot after the update"), "description": f"Boot loop. {trace}"}
    proposal = propose(stack, party, "crm.create_ticket", args, "The customer called from the airport.")
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
        base_url=stack.web_url,
    )
    context.set_default_timeout(TIMEOUT_MS)
    try:
        tab = context.new_page()
        tab.goto("/accounts/login/")
        tab.get_by_label("Username").fill(party["reviewer_username"])
        tab.get_by_label("Password").fill(party["reviewer_password"])
        tab.get_by_role("button", name="Log in").click()
        expect(tab.get_by_role("heading", name="Inbox")).to_be_visible()

        # the inbox: the filters are one line, the first proposal is on the first screen
        expect(tab.locator("#filter-panel > summary")).to_be_visible()
        expect(tab.get_by_label("Tool")).to_be_hidden()
        first_row = tab.locator("table.inbox tbody tr").first.bounding_box()
        assert first_row is not None and first_row["y"] < 844 / 2, first_row
        tab.screenshot(path=str(SCREENSHOTS / "inbox-mobile.png"), full_page=False)
        tab.locator("#filter-panel > summary").click()
        expect(tab.get_by_label("Tool")).to_be_visible()

        # the proposal
        tab.goto(f"/proposals/{proposal['id']}/")
        approve = tab.get_by_role("button", name="Approve").bounding_box()
        edit = tab.get_by_role("link", name="Edit, then approve…").bounding_box()
        assert approve is not None and edit is not None
        apart_across = edit["x"] >= approve["x"] + approve["width"] + 8
        apart_down = edit["y"] >= approve["y"] + approve["height"] + 8
        assert apart_across or apart_down, (approve, edit)
        json_box = tab.locator("pre.json")
        assert json_box.evaluate("e => e.scrollWidth <= e.clientWidth"), "the JSON block scrolls sideways"
        expect(json_box).to_contain_text(trace)
        assert tab.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"), (
            "the page is wider than the screen"
        )
        expect(tab.locator(".keyboard-hint")).to_be_hidden()
        tab.locator("section.decide").scroll_into_view_if_needed()
        tab.screenshot(path=str(SCREENSHOTS / "proposal-mobile.png"), full_page=False)
    finally:
        context.close()


def test_a_double_click_or_a_second_tab_approves_once(page: Any, stack: Stack, party: dict[str, str]) -> None:
    from playwright.sync_api import expect

    proposal = propose(
        stack, party, "crm.create_ticket", ticket("Printer jam on floor 2"), "Asked by the office."
    )
    second_tab = page.context.new_page()
    # This tab misses the live updates (as a tab offline would), so it still offers the decision: the
    # server must refuse it. (With updates it withdraws its forms: the next test.)
    second_tab.route(re.compile(r"/proposals/[^/]+/status/$"), lambda route: route.abort())
    second_tab.goto(f"/proposals/{proposal['id']}/")  # opened while still pending

    page.goto(f"/proposals/{proposal['id']}/")
    page.get_by_role("button", name="Approve").dblclick()
    expect(page.locator("#live-status")).to_contain_text("Committed — ticket", timeout=TIMEOUT_MS)

    second_tab.get_by_role("button", name="Approve").click()
    expect(second_tab.get_by_role("alert")).to_contain_text("already")

    body = stack.api("GET", f"/proposals/{proposal['id']}/", party["agent"]).json()
    assert body["status"] == "committed"
    assert len(tickets_titled(stack, "Printer jam on floor 2")) == 1
    sent = [
        r
        for r in stack.sandbox("GET", "/_sandbox/requests").json().get("requests", [])
        if r.get("idempotency_key") == f"acme-proposal-{proposal['id']}"
    ]
    assert len(sent) == 1


def test_a_page_left_open_withdraws_its_decision_when_someone_else_decides(
    page: Any, stack: Stack, party: dict[str, str]
) -> None:
    from playwright.sync_api import expect

    proposal = propose(
        stack, party, "crm.create_ticket", ticket("Monitor flickers in room 5"), "Asked by IT."
    )
    page.goto(f"/proposals/{proposal['id']}/")
    expect(page.get_by_role("button", name="Approve")).to_be_visible()
    page.evaluate("window.__sameDocument = true")

    # someone else decides, here over the API, while this page is open
    decided = stack.api(
        "POST",
        f"/proposals/{proposal['id']}/reject/",
        party["reviewer"],
        json={"reason": "Already fixed by IT."},
    )
    assert decided.status_code == 200, decided.text

    notice = page.locator(".decided-meanwhile")
    expect(notice).to_contain_text("Decided meanwhile", timeout=TIMEOUT_MS)  # within one slow poll (5 s)
    expect(notice).to_contain_text("rejected")
    expect(page.locator("#live-status")).to_contain_text("Rejected")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.get_by_role("button", name="Reject")).to_have_count(0)
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"
    notice.get_by_role("link", name="Reload to see who decided").click()
    expect(page.locator("section", has_text="Decision")).to_contain_text("Already fixed by IT.")


def test_login_required_and_a_missing_proposal_is_a_clear_404(browser: Any, stack: Stack, page: Any) -> None:
    from playwright.sync_api import expect

    response = page.goto("/proposals/00000000-0000-4000-8000-000000000000/")
    assert response is not None and response.status == 404
    anonymous = browser.new_context(base_url=stack.web_url)
    try:
        tab = anonymous.new_page()
        tab.goto("/proposals/00000000-0000-4000-8000-000000000000/")
        expect(tab).to_have_url(re.compile(r"/accounts/login/"))
    finally:
        anonymous.close()
    # logging out is a POST from the nav
    page.goto("/")
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def test_edit_then_approve_shows_the_edit_as_a_diff_first(
    page: Any, stack: Stack, party: dict[str, str]
) -> None:
    from playwright.sync_api import expect

    proposal = propose(
        stack, party, "crm.create_ticket", ticket("Badge reader offline", "critical"), "Door 4."
    )

    page.goto(f"/proposals/{proposal['id']}/")
    page.keyboard.press("e")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Edit, then approve")).to_be_visible()
    expect(page.get_by_label("Subject")).to_have_value("Badge reader offline")
    page.get_by_label("Priority").select_option("high")
    page.get_by_label("Tags").fill("phone, Facilities")
    page.get_by_role("button", name="Preview the change").click()

    edits = page.locator("table.diff").first
    expect(edits.locator("tr", has_text="priority")).to_contain_text("urgent")
    expect(edits.locator("tr", has_text="priority")).to_contain_text("high")
    expect(edits.locator("tr", has_text="tags")).to_contain_text("phone, facilities")  # normalized
    assert stack.api("GET", f"/proposals/{proposal['id']}/", party["agent"]).json()["status"] == "pending"
    page.get_by_role("button", name="Confirm and approve").click()

    expect(page.locator("#live-status")).to_contain_text("Committed — ticket", timeout=TIMEOUT_MS)
    [created] = tickets_titled(stack, "Badge reader offline")
    assert created["priority"] == "high" and created["tags"] == ["phone", "facilities"]
    expect(page.get_by_text("Edited by the reviewer before approving")).to_be_visible()  # who changed what


# Registered before any page script runs: every Content-Security-Policy violation the page meets.
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + (e.blockedURI || "inline") + " " + (e.sourceFile || ""));
});
"""


def watched_context(browser: Any, stack: Stack) -> tuple[Any, list[str], list[str]]:
    """A browser context that may reach only the app (anything else is aborted and recorded, as if the
    machine were offline) and records CSP complaints from the console."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=stack.web_url)
    context.set_default_timeout(TIMEOUT_MS)
    outside: list[str] = []
    console: list[str] = []

    def only_the_app(route: Any) -> None:
        if route.request.url.startswith(stack.web_url + "/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_app)
    context.add_init_script(RECORD_CSP_VIOLATIONS)
    context.on(
        "console",
        lambda message: (
            console.append(message.text)
            if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text
            else None
        ),
    )
    return context, outside, console


def visit(tab: Any, url: str) -> list[str]:
    """Open ``url`` and let it settle; the CSP violations it met."""
    response = tab.goto(url)
    assert response is not None and response.status == 200, (url, response and response.status)
    assert "script-src 'self'" in (response.header_value("Content-Security-Policy") or ""), url
    tab.wait_for_load_state("networkidle")
    return list(tab.evaluate("window.__cspViolations"))


def test_no_page_breaks_the_content_security_policy_and_the_docs_render_offline(
    browser: Any, stack: Stack, party: dict[str, str]
) -> None:
    from playwright.sync_api import expect

    proposal = propose(stack, party, "crm.create_ticket", ticket("Projector flickers"), "Room 2.")
    stack.env["DJANGO_SUPERUSER_PASSWORD"] = "ops-pass-12345"
    try:
        stack.manage("createsuperuser", "--noinput", "--username", "ops", "--email", "ops@example.com")
    finally:
        del stack.env["DJANGO_SUPERUSER_PASSWORD"]
    violations: dict[str, list[str]] = {}

    # the reviewer's pages: inbox, proposal, edit (its form and its preview)
    context, outside, console = watched_context(browser, stack)
    try:
        tab = context.new_page()
        tab.goto("/accounts/login/")
        tab.get_by_label("Username").fill(party["reviewer_username"])
        tab.get_by_label("Password").fill(party["reviewer_password"])
        tab.get_by_role("button", name="Log in").click()
        expect(tab.get_by_role("heading", name="Inbox")).to_be_visible()
        for url in ("/", f"/proposals/{proposal['id']}/", f"/proposals/{proposal['id']}/edit/"):
            violations[url] = visit(tab, url)
        tab.get_by_role("button", name="Preview the change").click()
        expect(tab.get_by_role("button", name="Confirm and approve")).to_be_visible()
        violations["edit preview"] = list(tab.evaluate("window.__cspViolations"))
        # the live status panel is swapped in by review.js: still no violation once it has polled
        tab.goto(f"/proposals/{proposal['id']}/")
        tab.wait_for_timeout(6000)
        violations["proposal, polled"] = list(tab.evaluate("window.__cspViolations"))
    finally:
        context.close()

    # the operator's pages: admin changelists (with the typed-in filters), /ops/ with its charts, the API docs
    admin_context, admin_outside, admin_console = watched_context(browser, stack)
    try:
        tab = admin_context.new_page()
        tab.goto("/admin/login/")
        tab.get_by_label("Username").fill("ops")
        tab.get_by_label("Password").fill("ops-pass-12345")
        tab.get_by_role("button", name="Log in").click()
        expect(
            tab.get_by_role("link", name="Log out").or_(tab.get_by_role("button", name="Log out"))
        ).to_be_visible()
        for url in ("/admin/", "/admin/audit/auditevent/", "/admin/approvals/proposal/", "/ops/"):
            violations[url] = visit(tab, url)
        expect(tab.locator("svg.chart").first).to_be_visible()
        violations["/api/v1/docs/"] = visit(tab, "/api/v1/docs/")
        # Swagger UI rendered from the app's own files: the operations are listed
        expect(tab.locator(".opblock").first).to_be_visible()
        expect(tab.locator(".opblock-summary-path", has_text="/api/v1/proposals/").first).to_be_visible()
        violations["/api/v1/docs/"] += list(tab.evaluate("window.__cspViolations"))
    finally:
        admin_context.close()

    assert {url: found for url, found in violations.items() if found} == {}
    assert console + admin_console == []
    assert outside + admin_outside == []  # nothing was fetched from another origin (a CDN)
