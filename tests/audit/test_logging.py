"""Logs and error reports never carry PII or secrets: a run full of them, then grep what was written."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest
import responses
from django.test import RequestFactory
from django.views.debug import get_exception_reporter_class

from adapters import registry
from approvals import services
from audit.logging import JsonFormatter, redact

from .conftest import ARGS, TICKETS_URL, created

if TYPE_CHECKING:
    from django.views.debug import ExceptionReporter

EMAIL = "jane.doe@example.com"
PHONE = "+1 (415) 555-0134"
PHONE_PLAIN = "415-555-0134"
CARD = "4111 1111 1111 1111"
CARD_DASHED = "5500-0000-0000-0004"
PASSWORD = "hunter2-correct-horse"
SLACK_TOKEN = "xoxb-123456789012-abcdefghijkl"
PII_TEXT = f"Customer {EMAIL} called from {PHONE} (alt {PHONE_PLAIN}), paid with {CARD}."


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The output of the JSON handler configured in settings.LOGGING (filter and formatter included)."""
    # settings.LOGGING's console handlers, which are StreamHandlers.
    handlers = cast(
        "list[logging.StreamHandler[Any]]",
        [h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)],
    )
    assert handlers, "settings.LOGGING's JSON console handler is not on the root logger"
    stream = io.StringIO()
    previous = [h.setStream(stream) for h in handlers]
    root_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.INFO)
    try:
        yield stream
    finally:
        for handler, old in zip(handlers, previous, strict=True):
            handler.setStream(old)
        logging.getLogger().setLevel(root_level)


def secrets_of(party) -> list[str]:
    return [EMAIL, "jane.doe", PHONE, "555-0134", CARD, CARD_DASHED, "4111111111111111", PASSWORD,
            SLACK_TOKEN, party.agent_token, party.reviewer_token, party.agent_token[4:20]]


def test_a_run_full_of_pii_leaves_none_in_the_logs(
    json_log, acme, client, monkeypatch, no_sleep, django_capture_on_commit_callbacks
):
    # 1. An agent submits a ticket full of PII, over the API, with its bearer token and a nosy query string.
    agent = acme.agent_client
    refused = agent.post("/api/v1/proposals/", {"tool": "crm.create_ticket", "args": {
        "subject": f"Refund for {EMAIL}", "description": PII_TEXT, "priority": "high"}}, format="json")
    assert refused.status_code in (201, 400, 403)
    accepted = agent.post("/api/v1/proposals/", {"tool": "crm.create_ticket", "args": {
        "subject": f"Call back {EMAIL}", "description": f"Phone {PHONE}", "priority": "high"}}, format="json")
    assert accepted.status_code == 201, accepted.content
    agent.get(f"/api/v1/proposals/?tool=crm.create_ticket&email={EMAIL}")
    acme.client(acme.agent_token + "x").get("/api/v1/proposals/")  # a bad token: 401 logged by django
    client.get(f"/no/such/page/?email={EMAIL}&token={acme.agent_token}")  # a 404 with PII in the query

    # 2. The reviewer approves it; the commit (run in-process on approval) meets a CRM answering 503 with a
    #    body full of PII, then a 201.
    proposal_id = accepted.json()["id"]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.POST, TICKETS_URL, status=503, body=PII_TEXT)
        created(rsps)
        with django_capture_on_commit_callbacks(execute=True):
            approve = acme.reviewer_client.post(f"/api/v1/proposals/{proposal_id}/approve/", {}, format="json")
        assert approve.status_code == 202

    # 3. Careless code logs everything it has.
    log = logging.getLogger("approvals.careless")
    log.info("payload %s", {"email": EMAIL, "Authorization": f"Bearer {acme.agent_token}", "password": PASSWORD})
    log.warning("headers", extra={"headers": {"Authorization": f"Bearer {acme.reviewer_token}",
                                              "X-Slack": SLACK_TOKEN}, "card": CARD_DASHED})
    log.info(f"user {EMAIL} token={acme.reviewer_token} slack {SLACK_TOKEN}")

    # 4. An error path: a commit crashes with PII in the exception message; its traceback is logged.
    def crash(*args, **kwargs):
        raise RuntimeError(f"CRM rejected {EMAIL} / {CARD} / Bearer {acme.agent_token}")

    second = services.proposal_submit(agent=acme.agent, tool="crm.create_ticket", args=ARGS,
                                      where=services.Where(channel="api")).proposal
    services.proposal_approve(proposal=second, reviewer=acme.reviewer, where=services.Where(channel="api"))
    monkeypatch.setattr(registry, "execute", crash)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add(responses.POST, TICKETS_URL, status=500, body=PII_TEXT)
        services.proposal_commit(proposal_id=second.pk)

    # 5. A view crashes (500): django.request logs it with the request and the traceback.
    def boom(*args, **kwargs):
        raise ValueError(f"cannot parse {PII_TEXT} password={PASSWORD}")

    monkeypatch.setattr(services, "proposal_submit", boom)
    agent.raise_request_exception = False
    crashed = agent.post(f"/api/v1/proposals/?email={EMAIL}", {"tool": "crm.create_ticket", "args": ARGS},
                         format="json", HTTP_X_PHONE=PHONE)
    assert crashed.status_code == 500
    try:
        raise KeyError(f"exception while handling {EMAIL}")
    except KeyError:
        logging.getLogger("approvals.careless").exception("handled %s", PHONE)

    # then
    output = json_log.getvalue()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert len(lines) >= 8
    assert any(line.get("exc") and "RuntimeError" in line["exc"] for line in lines), "commit traceback missing"
    assert any(line["logger"] == "django.request" and line["level"] == "ERROR" for line in lines)
    assert any("-> 503" in line["msg"] for line in lines) and any("-> 201" in line["msg"] for line in lines)
    assert "[REDACTED:email]" in output and "[REDACTED:token]" in output and "[REDACTED:card]" in output
    leaked = [s for s in secrets_of(acme) if s in output]
    assert not leaked, f"leaked into logs: {leaked}"
    for body in (refused.content, crashed.content):
        assert CARD.encode() not in body and PASSWORD.encode() not in body


def test_djangos_own_handlers_are_gone():
    # Django's default config gives "django" a plain-text console handler and mail_admins; ours replaces
    # them so every record goes through the redacting JSON handler.
    assert logging.getLogger("django").handlers == []
    assert logging.getLogger("django.server").handlers == []


def test_error_reports_are_redacted(settings, acme):
    settings.SECRET_KEY = "s3cr3t-" + "k" * 40
    request = RequestFactory().post(
        f"/api/v1/proposals/?email={EMAIL}", {"password": PASSWORD, "note": PII_TEXT},
        HTTP_AUTHORIZATION=f"Bearer {acme.agent_token}", HTTP_COOKIE=f"sessionid={PASSWORD}",
    )
    try:
        customer = {"email": EMAIL, "card": CARD}  # noqa: F841 (a frame variable the report would show)
        raise ValueError(f"bad input from {EMAIL} with token {acme.agent_token}")
    except ValueError:
        # A class, not an instance as django-stubs has it.
        reporter_class = cast("type[ExceptionReporter]", get_exception_reporter_class(request))
        reporter = reporter_class(request, *sys.exc_info())
        text = reporter.get_traceback_text()
        html = reporter.get_traceback_html()

    for report in (text, html):
        leaked = [s for s in [*secrets_of(acme), settings.SECRET_KEY] if s in report]
        assert not leaked, leaked
    assert "ValueError" in text and "REDACTED" in text


@pytest.mark.parametrize("text", [
    "2026-11-23T10:00:00Z request 8f3e2a1c-1234-4abc-9def-0123456789ab from 127.0.0.1 took 250 ms",
    "outbound crm POST /crm/api/v2/tickets.json -> 201 (attempt 1, 12 ms)",
])
def test_redaction_leaves_ordinary_operational_text_alone(text):
    assert redact(text) == text
