"""The live inbox (issue 19 part 5) in a real browser: new proposals appear and decided ones update without
a reload, the tab's title counts what waits, and a proposal page's header and history follow its live status.
Fixtures (one stack, one browser for the module) come from test_reviewer_ui."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.test_reviewer_ui import browser, page, party, propose, stack, ticket  # noqa: F401
from tests.e2e.stack import Stack

pytestmark = pytest.mark.browser
LIVE_MS = 20_000  # the inbox polls every 5 s


def test_the_inbox_updates_itself_and_the_title_counts_what_waits(
    page: Any,  # noqa: F811
    stack: Stack,  # noqa: F811
    party: dict[str, str],  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    # given the inbox, open and never reloaded (a marker on the window would not survive a reload)
    page.goto("/")
    page.evaluate("window.__notReloaded = true")

    # when an agent proposes
    proposed = propose(stack, party, "crm.create_ticket", ticket("Live inbox: printer jam on floor 2"))

    # then it appears by itself, and the title counts it
    row = page.locator("tr", has=page.get_by_role("link", name="Live inbox: printer jam on floor 2"))
    expect(row).to_be_visible(timeout=LIVE_MS)
    expect(page).to_have_title(re.compile(r"^\(1\) Inbox"), timeout=LIVE_MS)

    # when a reviewer decides elsewhere (the API), the row follows and the title's count drops
    answer = stack.api(
        "POST",
        f"/proposals/{proposed['id']}/request_changes/",
        party["reviewer"],
        json={"reason": "priority?"},
    )
    assert answer.status_code == 200, answer.text
    expect(row.locator(".badge")).to_have_text("Changes Requested", timeout=LIVE_MS)
    expect(page).to_have_title(re.compile(r"^Inbox"), timeout=LIVE_MS)
    assert page.evaluate("window.__notReloaded") is True


def test_a_proposal_page_never_contradicts_its_live_status(
    page: Any,  # noqa: F811
    stack: Stack,  # noqa: F811
    party: dict[str, str],  # noqa: F811
) -> None:
    from playwright.sync_api import expect

    proposed = propose(stack, party, "crm.create_ticket", ticket("Live page: badge follows the commit"))
    page.goto(f"/proposals/{proposed['id']}/")
    page.evaluate("window.__notReloaded = true")
    expect(page.locator("#status-badge")).to_have_text("Pending")

    # approved elsewhere: the live box, the header's badge and the history's receipt agree, with no reload
    answer = stack.api("POST", f"/proposals/{proposed['id']}/approve/", party["reviewer"], json={})
    assert answer.status_code == 202, answer.text

    expect(page.locator("#live-status [data-status=committed]")).to_be_visible(timeout=LIVE_MS)
    expect(page.locator("#status-badge")).to_have_text("Committed", timeout=LIVE_MS)
    expect(page.locator("#history").get_by_role("heading", name="Receipt")).to_be_visible(timeout=LIVE_MS)
    assert page.evaluate("window.__notReloaded") is True
