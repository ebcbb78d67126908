"""Logs and error reports never carry PII or secrets: a run full of them, then grep what was written."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import threading
import timeit
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import pytest
import responses
from django.test import RequestFactory
from django.views.debug import get_exception_reporter_class

from adapters import registry
from approvals import services
from audit import logging as audit_logging
from audit.logging import _PATTERNS, MESSAGE_LIMIT, TRACEBACK_LIMIT, JsonFormatter, redact, redact_traceback

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
    return [
        EMAIL,
        "jane.doe",
        PHONE,
        "555-0134",
        CARD,
        CARD_DASHED,
        "4111111111111111",
        PASSWORD,
        SLACK_TOKEN,
        party.agent_token,
        party.reviewer_token,
        party.agent_token[4:20],
    ]


def test_a_run_full_of_pii_leaves_none_in_the_logs(
    json_log, acme, client, monkeypatch, no_sleep, django_capture_on_commit_callbacks
):
    # 1. An agent submits a ticket full of PII, over the API, with its bearer token and a nosy query string.
    agent = acme.agent_client
    refused = agent.post(
        "/api/v1/proposals/",
        {
            "tool": "crm.create_ticket",
            "args": {"subject": f"Refund for {EMAIL}", "description": PII_TEXT, "priority": "high"},
        },
        format="json",
    )
    assert refused.status_code in (201, 400, 403)
    accepted = agent.post(
        "/api/v1/proposals/",
        {
            "tool": "crm.create_ticket",
            "args": {"subject": f"Call back {EMAIL}", "description": f"Phone {PHONE}", "priority": "high"},
        },
        format="json",
    )
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
            approve = acme.reviewer_client.post(
                f"/api/v1/proposals/{proposal_id}/approve/", {}, format="json"
            )
        assert approve.status_code == 202

    # 3. Careless code logs everything it has.
    log = logging.getLogger("approvals.careless")
    log.info(
        "payload %s", {"email": EMAIL, "Authorization": f"Bearer {acme.agent_token}", "password": PASSWORD}
    )
    log.warning(
        "headers",
        extra={
            "headers": {"Authorization": f"Bearer {acme.reviewer_token}", "X-Slack": SLACK_TOKEN},
            "card": CARD_DASHED,
        },
    )
    log.info(f"user {EMAIL} token={acme.reviewer_token} slack {SLACK_TOKEN}")

    # 4. An error path: a commit crashes with PII in the exception message; its traceback is logged.
    def crash(*args, **kwargs):
        raise RuntimeError(f"CRM rejected {EMAIL} / {CARD} / Bearer {acme.agent_token}")

    second = services.proposal_submit(
        agent=acme.agent, tool="crm.create_ticket", args=ARGS, where=services.Where(channel="api")
    ).proposal
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
    crashed = agent.post(
        f"/api/v1/proposals/?email={EMAIL}",
        {"tool": "crm.create_ticket", "args": ARGS},
        format="json",
        HTTP_X_PHONE=PHONE,
    )
    assert crashed.status_code == 500
    try:
        raise KeyError(f"exception while handling {EMAIL}")
    except KeyError:
        logging.getLogger("approvals.careless").exception("handled %s", PHONE)

    # then
    output = json_log.getvalue()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert len(lines) >= 8
    assert any(line.get("exc") and "RuntimeError" in line["exc"] for line in lines), (
        "commit traceback missing"
    )
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
        f"/api/v1/proposals/?email={EMAIL}",
        {"password": PASSWORD, "note": PII_TEXT},
        HTTP_AUTHORIZATION=f"Bearer {acme.agent_token}",
        HTTP_COOKIE=f"sessionid={PASSWORD}",
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


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-23T10:00:00Z request 8f3e2a1c-1234-4abc-9def-0123456789ab from 127.0.0.1 took 250 ms",
        "outbound crm POST /crm/api/v2/tickets.json -> 201 (attempt 1, 12 ms)",
    ],
)
def test_redaction_leaves_ordinary_operational_text_alone(text):
    assert redact(text) == text


# --- bounded cost (issue 23, item 6) ---------------------------------------------------------------------

# Text built to make a backtracking pattern rescan a long run from each of its characters: runs of each
# pattern's own alphabet, near-misses of its prefix, separators it accepts, unclosed quotes.
ADVERSARIAL_SEEDS = [
    "a",
    "a.",
    "a-",
    "a_",
    "1 ",
    "1-",
    "1",
    "+1 (",
    "eyJ-",
    "eyJaaaaaaaaa.",
    "password",
    "apassword.",
    "password='",
    'password="a',
    "x_token-",
    "a://",
    "a://a:",
    "bearer ",
    "agt_",
    "xoxb-",
    "a@",
    "a@a.",
    "%40",
]


def _seconds(pattern: re.Pattern[str], replacement: Any, text: str, repeat: int = 3) -> float:
    return min(timeit.repeat(lambda: pattern.sub(replacement, text), number=1, repeat=repeat))


def _growth(pattern: re.Pattern[str], replacement: Any, seed: str, small: int, large: int) -> float:
    """How much longer ``large`` characters take than ``small``: linear ~large/small, quadratic its square.
    Wall time on a shared machine is noisy: the best of a few measurements, and times under 2 ms count as
    no growth at all (a quadratic pattern takes far longer at these sizes)."""
    best = float("inf")
    for _ in range(3):
        # Ending in a word character: a run that reaches the end must then fail (and backtrack) there.
        times = [_seconds(pattern, replacement, (seed * n)[: n - 1] + "x", repeat=5) for n in (small, large)]
        if times[1] < 2e-3:
            return 1.0
        best = min(best, times[1] / max(times[0], 1e-5))
        if best < 24:
            break
    return best


@pytest.mark.parametrize(
    "index", range(len(_PATTERNS)), ids=[f"{k}{i}" for i, (k, _, _) in enumerate(_PATTERNS)]
)
def test_every_redaction_pattern_costs_linear_time(index):
    _kind, pattern, replacement = _PATTERNS[index]
    for seed in ADVERSARIAL_SEEDS:
        # 1 KB -> 8 KB first: a quadratic pattern shows there in well under a second, where 64 KB would take
        # minutes. Each step is 8x the text: linear ~8x the time, quadratic ~64x.
        assert _growth(pattern, replacement, seed, 1024, 8 * 1024) < 24, seed
        assert _growth(pattern, replacement, seed, 8 * 1024, 64 * 1024) < 24, seed


def test_a_long_message_is_cut_before_it_is_redacted():
    # given: 1 MB whose only email sits past the cut
    text = "word " * 200_000 + EMAIL

    # when
    redacted = redact(text)

    # then: a few KB, cut between words, saying how much was cut; and what is kept is redacted
    assert len(redacted) < MESSAGE_LIMIT + 100
    assert "characters cut]" in redacted and EMAIL not in redacted
    half = redact("a" * (MESSAGE_LIMIT - 10) + " " + EMAIL * 3)
    assert "jane" not in half and "@" not in half  # the email straddling the cut is dropped, not halved


def test_a_long_traceback_keeps_its_head_and_its_end():
    text = "Traceback (most recent call last):\n" + "  frame line\n" * 5000 + f"ValueError: bad {EMAIL}\n"

    redacted = redact_traceback(text)

    assert redacted.startswith("Traceback") and "ValueError: bad [REDACTED:email]" in redacted
    assert len(redacted) < TRACEBACK_LIMIT + 100


def test_redaction_runs_outside_the_handlers_lock(json_log, monkeypatch):
    """Another thread can take the handler's lock (write its own line) while a message is being redacted."""
    handler = next(h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter))
    held: list[bool] = []
    real_redact = audit_logging.redact

    def probing_redact(text: str, *args: Any, **kwargs: Any) -> str:
        def probe() -> None:
            got = handler.lock.acquire(blocking=False)  # type: ignore[union-attr]
            held.append(not got)
            if got:
                handler.lock.release()  # type: ignore[union-attr]

        other = threading.Thread(target=probe)
        other.start()
        other.join()
        return real_redact(text, *args, **kwargs)

    monkeypatch.setattr(audit_logging, "redact", probing_redact)

    logging.getLogger("approvals.careless").warning("Not Found: /%s", "a" * 4000, extra={"note": EMAIL})

    assert held and not any(held), "redaction ran while the handler's lock was held"
    assert EMAIL not in json_log.getvalue()


# --- percent-encoded PII (issue 23, item 10) -------------------------------------------------------------


@pytest.mark.parametrize(
    "encoded",
    [
        "jane.doe%40example.com",
        "jane.doe%2540example.com",
        "4111%201111%201111%201111",
        "4111+1111+1111+1111",
        "password%3Dhunter2-correct-horse",
    ],
)
def test_percent_encoded_pii_is_redacted(encoded):
    redacted = redact(f"GET /crm/search/{encoded}/ HTTP/1.1")

    assert "REDACTED" in redacted
    assert not any(s in redacted for s in ["jane", "1111", "hunter2"]), redacted


def test_request_lines_and_request_reprs_carry_the_path_without_the_query_string(json_log, client):
    # when: a 404 whose path and query string carry percent-encoded PII (django.request logs it with the
    # request object), and the development server's access log line for it
    client.get("/no/such/jane.doe%40example.com/", {"card": CARD, "q": "x"})
    logging.getLogger("django.server").warning(
        '"%s" %s %s',
        "GET /no/such/jane.doe%40example.com/?card=4111%201111%201111%201111&q=x HTTP/1.1",
        "404",
        "179",
    )

    # then
    lines = [json.loads(line) for line in json_log.getvalue().splitlines() if line.strip()]
    not_found = next(line for line in lines if line["logger"] == "django.request")
    access = next(line for line in lines if line["logger"] == "django.server")
    assert not_found["request"] == "<WSGIRequest: GET '/no/such/[REDACTED:email]/'>"
    assert access["msg"] == '"GET /no/such/[REDACTED:email]/ HTTP/1.1" 404 179'
    output = json_log.getvalue()
    assert "card=" not in output and "q=x" not in output
    assert not [s for s in ["jane", "4111", "1111"] if s in output]
