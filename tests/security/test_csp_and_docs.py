"""Content-Security-Policy on every page, and API docs served by the app itself (no CDN, no inline code).

What the browser does with the policy (no violation on any page, Swagger UI rendering offline) is checked
in tests/browser/test_reviewer_ui.py; here, the headers and the markup.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.test import Client

from approvals import services
from audit.services import Where

ARGS = {"subject": "Printer on fire", "description": "Smoke on floor 3.", "priority": "high"}
REQUIRED = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def policy(response: Any) -> dict[str, str]:
    header = response.headers.get("Content-Security-Policy", "")
    return {
        name: value.strip()
        for name, _, value in (part.strip().partition(" ") for part in header.split(";") if part.strip())
    }


@pytest.fixture
def reviewer_browser(acme: Any) -> Client:
    client = Client()
    client.force_login(acme.reviewer)
    return client


@pytest.fixture
def admin_browser(db: Any) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw-12345678"))
    return client


@pytest.mark.django_db
def test_every_kind_of_page_carries_the_strict_policy(
    acme: Any, reviewer_browser: Client, admin_browser: Client
) -> None:
    proposal = services.proposal_submit(
        agent=acme.agent, tool="crm.create_ticket", args=ARGS, where=Where(channel="api")
    ).proposal
    anonymous = Client()
    pages = [
        (reviewer_browser, "/"),
        (reviewer_browser, f"/proposals/{proposal.pk}/"),
        (reviewer_browser, f"/proposals/{proposal.pk}/edit/"),
        (anonymous, "/accounts/login/"),
        (admin_browser, "/admin/"),
        (admin_browser, "/admin/audit/auditevent/"),
        (admin_browser, "/ops/"),
        (anonymous, "/api/v1/docs/"),
        (anonymous, "/api/v1/schema/"),
        (acme.agent_client, "/api/v1/proposals/"),
        (anonymous, "/?tool=%00"),  # the control-character 400
    ]
    for client, url in pages:
        response = client.get(url)
        assert response.status_code in (200, 400), (url, response.status_code)
        found = policy(response)
        for directive, value in REQUIRED.items():
            assert found.get(directive) == value, (url, directive, found.get(directive))
        assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
        assert "unsafe-eval" not in response.headers["Content-Security-Policy"]


@pytest.mark.django_db
def test_pages_hold_no_inline_script_or_style(
    acme: Any, reviewer_browser: Client, admin_browser: Client
) -> None:
    """What the policy would block, looked for in the markup itself (a page that relied on it would break)."""
    proposal = services.proposal_submit(
        agent=acme.agent, tool="crm.create_ticket", args=ARGS, where=Where(channel="api")
    ).proposal
    pages = [
        (reviewer_browser, "/"),
        (reviewer_browser, f"/proposals/{proposal.pk}/"),
        (reviewer_browser, f"/proposals/{proposal.pk}/edit/"),
        (admin_browser, "/ops/"),
        (admin_browser, "/admin/audit/auditevent/"),
        (admin_browser, "/admin/approvals/proposal/"),
        (Client(), "/api/v1/docs/"),
    ]
    for client, url in pages:
        html = client.get(url).content.decode()
        assert "<style" not in html, url
        assert not re.search(r"\sstyle=", html), url
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", html), url  # every script has a src
        assert not re.search(r"\son[a-z]+=", html), url  # no inline event handler


@pytest.mark.django_db
def test_the_docs_load_swagger_ui_from_this_app_only() -> None:
    client = Client()

    page = client.get("/api/v1/docs/")

    html = page.content.decode()
    assert page.status_code == 200
    assert "cdn.jsdelivr.net" not in html and "unpkg.com" not in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert any(s.endswith("swagger-ui-bundle.js") for s in sources)
    for source in sources:  # every file it names is served here
        assert client.get(source).status_code == 200, source
    [script] = [s for s in sources if "script" in s and s.startswith("/api/v1/docs/")]
    init = client.get(script.replace("&amp;", "&"))
    assert init.status_code == 200
    assert init["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in init.content.decode()
    assert '"/api/v1/schema/"' in init.content.decode()


@pytest.mark.django_db
def test_the_schema_answers_json_when_asked_and_yaml_by_default() -> None:
    client = Client()

    as_json = client.get("/api/v1/schema/?format=json")
    by_accept = client.get("/api/v1/schema/", headers={"Accept": "application/json"})
    default = client.get("/api/v1/schema/")

    assert as_json.status_code == 200
    assert as_json["Content-Type"].startswith("application/json")
    assert json.loads(as_json.content)["openapi"].startswith("3.")
    assert json.loads(by_accept.content)["paths"]
    assert default["Content-Type"].startswith("application/vnd.oai.openapi")
    assert yaml.safe_load(default.content)["openapi"].startswith("3.")
