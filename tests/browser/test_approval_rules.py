"""Approval rules in a real browser (issue 22), against real processes as ``test_reviewer_ui``: a proposal
that needs two approvals ("1 of 2 approvals" after the first reviewer, committed after the second), and bulk
selection from the inbox's "For you" section (three ticked, approved, one result per row).

Each test makes its own tenant (``stack.party()``) so its rule touches no other test's proposals.
Screenshots go to docs/screenshots/ (proposal-quorum.png, inbox-for-you.png, bulk-results.png).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import test_reviewer_ui as ui
from tests.browser.test_reviewer_ui import SCREENSHOTS, TIMEOUT_MS, propose, ticket
from tests.e2e.stack import Stack

pytestmark = pytest.mark.browser

# The browser and the stack of the reviewer UI's tests (one of each for this module).
browser = ui.browser
stack = ui.stack
PASSWORD = "review-pass-123"


def login(browser: Any, stack: Stack, username: str) -> tuple[Any, Any]:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=stack.web_url)
    context.set_default_timeout(TIMEOUT_MS)
    tab = context.new_page()
    tab.goto("/accounts/login/")
    tab.get_by_label("Username").fill(username)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Log in").click()
    expect(tab.get_by_role("heading", name="Inbox")).to_be_visible()
    return context, tab


@pytest.fixture
def contexts() -> Iterator[list[Any]]:
    opened: list[Any] = []
    yield opened
    for context in opened:
        context.close()


def test_two_reviewers_one_of_two_then_committed(browser: Any, stack: Stack, contexts: list[Any]) -> None:
    from playwright.sync_api import expect

    party = stack.party()
    tenant = party["tenant"]
    second = f"{tenant}-second"
    stack.manage("create_reviewer", "--tenant", tenant, "--username", second, "--password", PASSWORD)
    stack.manage(
        "set_policy",
        "--tenant",
        tenant,
        "--name",
        "two people",
        "--tool",
        "crm.create_ticket",
        "--approvals-required",
        "2",
    )
    proposal = propose(stack, party, "crm.create_ticket", ticket("Server room door left open"), "Security.")
    assert proposal["approvals"]["required"] == 2

    # the first reviewer approves: recorded, 1 of 2, still pending
    context, first = login(browser, stack, party["reviewer_username"])
    contexts.append(context)
    first.goto(f"/proposals/{proposal['id']}/")
    expect(first.locator(".rule")).to_contain_text("2 approvals")
    first.get_by_role("button", name="Approve").click()
    expect(first.get_by_role("status").first).to_contain_text("Your approval is recorded: 1 of 2 approvals")
    expect(first.locator("#quorum")).to_contain_text("1 of 2 approvals:")
    expect(first.locator("#quorum")).to_contain_text(party["reviewer_username"])
    expect(first.locator("#status-badge")).to_have_text("Pending")
    expect(first.get_by_role("button", name="Approve")).to_have_count(0)  # approved by them already
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    first.screenshot(path=str(SCREENSHOTS / "proposal-quorum.png"), full_page=True)
    assert stack.api("GET", f"/proposals/{proposal['id']}/", party["agent"]).json()["status"] == "pending"

    # the inbox row says so too
    first.goto("/")
    row = first.locator("table.inbox tbody tr", has_text="Server room door left open")
    expect(row).to_contain_text("1 of 2 approvals")

    # the second reviewer completes the quorum: committed
    context, other = login(browser, stack, second)
    contexts.append(context)
    other.goto(f"/proposals/{proposal['id']}/")
    expect(other.locator("#quorum")).to_contain_text("1 of 2 approvals:")
    other.get_by_role("button", name="Approve").click()
    expect(other.locator("#live-status")).to_contain_text("Committed — ticket", timeout=TIMEOUT_MS)
    body = stack.api("GET", f"/proposals/{proposal['id']}/", party["agent"]).json()
    assert body["status"] == "committed"
    assert [g["by"] for g in body["approvals"]["given"]] == [party["reviewer_username"], second]
    assert len(ui.tickets_titled(stack, "Server room door left open")) == 1


def test_bulk_select_three_approve_and_see_each_result(
    browser: Any, stack: Stack, contexts: list[Any]
) -> None:
    from playwright.sync_api import expect

    party = stack.party()
    subjects = [f"Bulk: badge {n} stopped working" for n in range(4)]
    proposals = [
        propose(stack, party, "crm.create_ticket", ticket(subject, "low"), "Facilities.")
        for subject in subjects
    ]

    context, tab = login(browser, stack, party["reviewer_username"])
    contexts.append(context)
    for_you = tab.locator("#for-you")
    expect(for_you.locator("tr.for-you-row")).to_have_count(4)
    expect(for_you.locator("tr.group-head")).to_contain_text("4 similar")
    expect(for_you.locator("tr.group-head")).to_contain_text("they differ in description, subject")
    for subject in subjects[:3]:
        for_you.get_by_label(subject).check()
    tab.screenshot(path=str(SCREENSHOTS / "inbox-for-you.png"), full_page=True)
    tab.get_by_role("button", name="Approve selected").click()

    expect(tab.get_by_role("heading", name="Bulk review")).to_be_visible()
    results = tab.locator("table.bulk-results tbody tr")
    expect(results).to_have_count(3)
    expect(results.locator("td.result")).to_have_text(["Decided", "Decided", "Decided"])
    expect(tab.get_by_role("status").first).to_contain_text("3 decided, 0 skipped")
    tab.screenshot(path=str(SCREENSHOTS / "bulk-results.png"), full_page=True)

    for proposal in proposals[:3]:
        stack.wait_status(proposal["id"], party["agent"], {"committed"})
    assert stack.api("GET", f"/proposals/{proposals[3]['id']}/", party["agent"]).json()["status"] == "pending"
    tab.goto("/")
    expect(tab.locator("#for-you tr.for-you-row")).to_have_count(1)
    expect(tab.locator("#for-you")).to_contain_text(re.compile("badge 3"))
