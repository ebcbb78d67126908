"""The one door: retries, backoff, Retry-After, idempotency keys, timeouts, no redirects, errors."""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from adapters import breaker, http, sessions
from adapters.errors import Deferred, PermanentFailure, TransientFailure

URL = "https://crm.test/api/v2/tickets.json"

pytestmark = pytest.mark.usefixtures("fast_retries")


@pytest.fixture
def mocked() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        yield rsps


def test_success_first_time_reports_one_attempt(mocked: Any, sleeps: list[float]) -> None:
    mocked.post(URL, json={"ok": True}, status=201)
    response = http.call("crm", "POST", URL, json={"a": 1})
    assert response.status_code == 201
    assert http.attempts_of(response) == 1
    assert sleeps == []


@pytest.mark.parametrize("status", [502, 503, 504, 429])
def test_retryable_statuses_are_retried(mocked: Any, sleeps: list[float], status: int) -> None:
    mocked.post(URL, status=status)
    mocked.post(URL, status=status)
    mocked.post(URL, json={"ok": True}, status=201)
    response = http.call("crm", "POST", URL)
    assert http.attempts_of(response) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize("exc", [requests.ConnectionError("refused"), requests.ReadTimeout("slow")])
def test_connection_errors_and_timeouts_are_retried(mocked: Any, sleeps: list[float], exc: Exception) -> None:
    mocked.post(URL, body=exc)
    mocked.post(URL, json={}, status=200)
    assert http.attempts_of(http.call("crm", "POST", URL)) == 2


BROKEN_MID_RESPONSE = [
    requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead"),
    requests.exceptions.ContentDecodingError("Received response with content-encoding: gzip, but failed"),
    requests.RequestException("something else went wrong on the wire"),
]


@pytest.mark.parametrize("exc", BROKEN_MID_RESPONSE)
def test_a_response_broken_mid_way_is_retried_with_the_same_key(
    mocked: Any, sleeps: list[float], exc: Exception
) -> None:
    # The request may have been performed: only the same Idempotency-Key makes the retry safe.
    key_matcher = matchers.header_matcher({"Idempotency-Key": "key-1"})
    mocked.post(URL, body=exc, match=[key_matcher])
    mocked.post(URL, status=201, json={}, match=[key_matcher])
    assert http.attempts_of(http.call("crm", "POST", URL, idempotency_key="key-1")) == 2
    assert [c.request.headers["Idempotency-Key"] for c in mocked.calls] == ["key-1", "key-1"]
    assert len(sleeps) == 1


@pytest.mark.parametrize("exc", BROKEN_MID_RESPONSE)
def test_responses_broken_every_time_end_in_a_transient_failure_and_trip_the_breaker(
    mocked: Any, sleeps: list[float], settings: Any, exc: Exception
) -> None:
    settings.ACME_RETRY_MAX = 3
    settings.ACME_BREAKER_FAILURES = 3
    for _ in range(3):
        mocked.post(URL, body=exc)
    with pytest.raises(TransientFailure) as info:
        http.call("crm", "POST", URL)
    assert info.value.attempts == 3
    assert len(mocked.calls) == 3
    assert breaker.state("crm") == "open"


def test_a_request_that_cannot_be_built_is_not_retried_nor_held_against_the_downstream(
    mocked: Any, sleeps: list[float], settings: Any
) -> None:
    settings.ACME_BREAKER_FAILURES = 1
    with pytest.raises(requests.exceptions.InvalidURL):
        http.call("crm", "POST", "https://crm.test:port/api/v2/tickets.json")
    assert sleeps == []
    assert breaker.state("crm") == "closed"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_4xx_are_tried_once(mocked: Any, sleeps: list[float], status: int) -> None:
    mocked.post(URL, json={"error": "RecordInvalid", "details": {"email": "ada@example.com"}}, status=status)
    with pytest.raises(PermanentFailure) as info:
        http.call("crm", "POST", URL)
    assert (info.value.attempts, info.value.status) == (1, status)
    assert len(mocked.calls) == 1
    assert sleeps == []
    # The error code is kept, the body (which may hold PII) is not.
    assert "RecordInvalid" in info.value.detail
    assert "ada@example.com" not in info.value.detail


def test_500_is_permanent_not_retried(mocked: Any, sleeps: list[float]) -> None:
    mocked.post(URL, status=500)
    with pytest.raises(PermanentFailure) as info:
        http.call("crm", "POST", URL)
    assert info.value.status == 500
    assert len(mocked.calls) == 1


def test_retries_exhausted_raise_transient_failure_with_attempts(
    mocked: Any, sleeps: list[float], settings: Any
) -> None:
    settings.ACME_RETRY_MAX = 3
    for _ in range(3):
        mocked.post(URL, status=503)
    with pytest.raises(TransientFailure) as info:
        http.call("crm", "POST", URL)
    assert info.value.attempts == 3
    assert len(mocked.calls) == 3


def test_backoff_is_exponential_with_full_jitter_and_capped(
    mocked: Any, sleeps: list[float], settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.ACME_RETRY_MAX = 5
    settings.ACME_RETRY_BASE = 1.0
    settings.ACME_RETRY_CAP = 3.0
    settings.ACME_BREAKER_FAILURES = 100
    # The jitter draws uniformly from [0, window]: pin it to the top of the window to see the windows.
    monkeypatch.setattr("tenacity.wait.random.uniform", lambda low, high: high)
    for _ in range(5):
        mocked.post(URL, status=503)
    with pytest.raises(TransientFailure):
        http.call("crm", "POST", URL)
    assert sleeps == [1.0, 2.0, 3.0, 3.0]  # base * 2**n, capped


def test_jitter_is_random_within_window(mocked: Any, sleeps: list[float], settings: Any) -> None:
    settings.ACME_RETRY_BASE = 1.0
    for _ in range(4):
        mocked.post(URL, status=503)
    mocked.post(URL, status=200, json={})
    http.call("crm", "POST", URL)
    windows = [1.0, 2.0, 4.0, 8.0]
    assert all(0 <= s <= w for s, w in zip(sleeps, windows, strict=True))
    assert len(set(sleeps)) > 1  # drawn, not fixed


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_is_honoured(mocked: Any, sleeps: list[float], status: int) -> None:
    mocked.post(URL, status=status, headers={"Retry-After": "7"})
    mocked.post(URL, json={}, status=200)
    http.call("crm", "POST", URL)
    assert sleeps[0] >= 7


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_http_date_is_honoured(mocked: Any, sleeps: list[float], status: int) -> None:
    when = datetime.now(UTC) + timedelta(seconds=10)
    mocked.post(URL, status=status, headers={"Retry-After": format_datetime(when, usegmt=True)})
    mocked.post(URL, json={}, status=200)
    http.call("crm", "POST", URL)
    assert 8 <= sleeps[0] <= 10.5


@pytest.mark.parametrize(("status", "reason"), [(429, "rate_limited"), (503, "unavailable")])
def test_retry_after_beyond_the_cap_defers_instead_of_sleeping(
    mocked: Any, sleeps: list[float], status: int, reason: str
) -> None:
    mocked.post(URL, status=status, headers={"Retry-After": "120"})
    with pytest.raises(Deferred) as info:
        http.call("crm", "POST", URL)
    assert info.value.reason == reason
    assert info.value.attempts == 1  # sent, and refused
    assert 115 <= info.value.retry_at - time.time() <= 120
    assert sleeps == []


def test_a_503_asking_for_a_wait_still_counts_against_the_breaker(
    mocked: Any, sleeps: list[float], settings: Any
) -> None:
    settings.ACME_BREAKER_FAILURES = 1
    mocked.post(URL, status=503, headers={"Retry-After": "120"})
    with pytest.raises(Deferred):
        http.call("crm", "POST", URL)
    assert breaker.state("crm") == "open"


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_beyond_the_deadline_defers_without_sleeping(
    mocked: Any, sleeps: list[float], status: int
) -> None:
    """A wait the deadline cannot cover (a commit's lease, a preview's budget) is not slept, and is not a
    failure either: the caller is told when the server said to come back."""
    mocked.post(URL, status=status, headers={"Retry-After": "7"})
    with pytest.raises(Deferred) as deferred, http.deadline(2):
        http.call("crm", "POST", URL)
    assert len(mocked.calls) == 1
    assert sleeps == []
    assert deferred.value.retry_at == pytest.approx(time.time() + 7, abs=1)
    assert deferred.value.attempts == 1


def _http_date(days: int) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(days=days), usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("", None),
        (None, None),
        ("soon", None),
        # Not delta-seconds (RFC 9110: digits only): ignored like any other garbage.
        ("-3", None),
        ("-5", None),
        ("1e999", None),
        ("inf", None),
        ("Infinity", None),
        ("nan", None),
        # Valid but absurd: capped, so that the time it names can still be stored and shown.
        ("99999999999999", http.MAX_RETRY_AFTER),
        ("9" * 400, http.MAX_RETRY_AFTER),
        (_http_date(-1), 0.0),
        (_http_date(365 * 1000), http.MAX_RETRY_AFTER),
        ("Fri, 31 Dec 9999 23:59:59 GMT", http.MAX_RETRY_AFTER),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert http.parse_retry_after(value) == expected


@pytest.mark.parametrize("status", [429, 503])
def test_a_huge_retry_after_defers_to_a_time_that_can_be_stored(
    mocked: Any, sleeps: list[float], status: int
) -> None:
    mocked.post(URL, status=status, headers={"Retry-After": "99999999999999"})
    with pytest.raises(Deferred) as info:
        http.call("crm", "POST", URL)
    assert info.value.retry_at - time.time() <= http.MAX_RETRY_AFTER
    # What the commit job does with it (approvals.services._finish_deferred): no ValueError/OverflowError.
    assert datetime.fromtimestamp(info.value.retry_at, tz=UTC).year < 9999
    assert sleeps == []


@pytest.mark.parametrize("value", ["1e999", "inf", "nan", "-5"])
def test_a_retry_after_that_is_no_number_of_seconds_is_ignored(
    mocked: Any, sleeps: list[float], value: str
) -> None:
    mocked.post(URL, status=429, headers={"Retry-After": value})
    mocked.post(URL, json={}, status=201)
    assert http.attempts_of(http.call("crm", "POST", URL)) == 2
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.01  # the ordinary backoff (fast_retries' base)


@pytest.mark.parametrize("retry_at", [math.inf, -math.inf, math.nan, 1e300, 0.0])
def test_the_api_never_answers_a_retry_after_that_is_not_a_whole_number_of_seconds(retry_at: float) -> None:
    from approvals.api.errors import exception_handler

    response = exception_handler(Deferred(reason="rate_limited", retry_at=retry_at), {})
    assert response is not None and response.status_code == 503
    header = response["Retry-After"]
    assert header.isdigit() and 1 <= int(header) <= http.MAX_RETRY_AFTER
    assert response.data["retry_after"] == int(header)


def test_same_idempotency_key_on_every_attempt(mocked: Any, sleeps: list[float]) -> None:
    key_matcher = matchers.header_matcher({"Idempotency-Key": "key-1"})
    mocked.post(URL, status=503, match=[key_matcher])
    mocked.post(URL, body=requests.ConnectionError("reset"), match=[key_matcher])
    mocked.post(URL, status=201, json={}, match=[key_matcher])
    assert http.attempts_of(http.call("crm", "POST", URL, idempotency_key="key-1")) == 3


def test_every_request_has_a_timeout_and_no_redirects(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    settings.ACME_HTTP_TIMEOUT = 4.5
    seen: dict[str, Any] = {}

    def fake_send(self: Any, request: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        response = requests.Response()
        response.status_code = 200
        response._content = b"{}"
        response.request = request
        return response

    monkeypatch.setattr(requests.Session, "send", fake_send)
    http.call("crm", "GET", URL)
    assert seen["timeout"] == 4.5
    assert seen["allow_redirects"] is False


def test_redirect_is_not_followed(mocked: Any, sleeps: list[float]) -> None:
    mocked.post(URL, status=302, headers={"Location": "https://evil.test/steal"})
    with pytest.raises(PermanentFailure) as info:
        http.call("crm", "POST", URL)
    assert info.value.status == 302
    assert len(mocked.calls) == 1


def test_logs_carry_no_token_query_or_body(mocked: Any, sleeps: list[float], caplog: Any) -> None:
    mocked.get(URL, status=503)
    mocked.get(URL, json={"email": "ada@example.com"}, status=200)
    with caplog.at_level(logging.INFO, logger="adapters.http"):
        http.call(
            "crm",
            "GET",
            URL,
            params={"query": "email:ada@example.com"},
            headers={"Authorization": "Bearer s3cret-token"},
        )
    text = caplog.text
    assert "crm" in text and "503" in text and "attempt 2" in text
    assert "s3cret-token" not in text
    assert "ada@example.com" not in text


def test_malformed_response_is_a_permanent_failure(mocked: Any) -> None:
    from adapters.crm.schemas import TicketEnvelope

    mocked.post(URL, status=201, body="<html>oops</html>")
    response = http.call("crm", "POST", URL)
    with pytest.raises(PermanentFailure, match="malformed"):
        http.parse(TicketEnvelope, response, "crm")


# --- the breaker inside the door ------------------------------------------------------------------------


def test_open_breaker_fails_fast_without_sending(mocked: Any, sleeps: list[float], settings: Any) -> None:
    settings.ACME_RETRY_MAX = 5
    for _ in range(5):
        mocked.post(URL, status=503)
    with pytest.raises(TransientFailure):
        http.call("crm", "POST", URL)
    assert breaker.state("crm") == "open"
    # Nothing registered any more: a request leaving now would fail with ConnectionError, not Deferred.
    with pytest.raises(Deferred) as info:
        http.call("crm", "POST", URL)
    assert info.value.reason == "breaker_open"
    assert info.value.attempts == 0
    assert len(mocked.calls) == 5


def test_breaker_opening_mid_call_defers_without_spending_the_budget(
    mocked: Any, sleeps: list[float], settings: Any
) -> None:
    settings.ACME_RETRY_MAX = 5
    settings.ACME_BREAKER_FAILURES = 2
    mocked.post(URL, status=503)
    mocked.post(URL, status=503)
    with pytest.raises(Deferred) as info:
        http.call("crm", "POST", URL)
    # The breaker opened on the second failure; the third attempt never left and is not a failure.
    assert info.value.reason == "breaker_open"
    assert len(mocked.calls) == 2
    assert info.value.attempts == 2  # sent before the breaker stopped the call: their outcome is unknown


def test_4xx_do_not_count_towards_the_breaker(mocked: Any, sleeps: list[float], settings: Any) -> None:
    settings.ACME_BREAKER_FAILURES = 2
    for _ in range(3):
        mocked.post(URL, status=400)
    for _ in range(3):
        with pytest.raises(PermanentFailure):
            http.call("crm", "POST", URL)
    assert breaker.state("crm") == "closed"


# --- a kept session: one connection for many calls, no cookies carried ------------------------------------
class _KeepAliveServer:
    """A local HTTP/1.1 server that keeps connections open, and records each request's connection (the
    client's port), target (absolute through a proxy), Cookie and Authorization headers."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        received: list[dict[str, Any]] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(
                    {
                        "port": self.client_address[1],
                        "target": self.path,
                        "cookie": self.headers.get("Cookie"),
                        "authorization": self.headers.get("Authorization"),
                    }
                )
                body = b'{"ticket": {"id": 1}}'
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Set-Cookie", "_zendesk_session=abc; Path=/")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v2/tickets.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def keep_alive() -> Any:
    server = _KeepAliveServer()
    yield server
    server.close()


def test_calls_on_one_thread_reuse_one_connection(keep_alive: _KeepAliveServer, sleeps: list[float]) -> None:
    """Against a real CRM a new connection per call is a TCP and TLS handshake per commit."""
    for n in range(3):
        http.call("crm", "POST", keep_alive.url, json={"n": n}, idempotency_key=f"key-{n}")
    ports = {r["port"] for r in keep_alive.received}
    assert (len(keep_alive.received), len(ports)) == (3, 1)


def test_a_kept_session_sends_no_cookie_back(keep_alive: _KeepAliveServer, sleeps: list[float]) -> None:
    http.call("crm", "POST", keep_alive.url, json={})
    http.call("crm", "POST", keep_alive.url, json={})
    assert [r["cookie"] for r in keep_alive.received] == [None, None]


def test_each_thread_and_each_forked_process_has_its_own_session(monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    from concurrent.futures import ThreadPoolExecutor

    here = http._pooled_session()
    assert http._pooled_session() is here
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(http._pooled_session).result() is not here
    pid = os.getpid()
    monkeypatch.setattr(os, "getpid", lambda: pid + 1)  # as a forked child sees it
    assert http._pooled_session() is not here


# --- the environment: proxies and CA bundle honoured, read once; .netrc never -----------------------------
@pytest.fixture
def fresh_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """This thread's kept session is made anew, under the test's environment."""
    import threading

    monkeypatch.setattr(sessions, "_pool", threading.local())  # the kept sessions live in adapters.sessions
    for name in (
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_proxies_from_the_environment_are_honoured_and_read_once_per_host(
    monkeypatch: pytest.MonkeyPatch, fresh_session: None, keep_alive: _KeepAliveServer, sleeps: list[float]
) -> None:
    proxy = _KeepAliveServer()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server.server_address[1]}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        resolved: list[str] = []
        real = requests.utils.get_environ_proxies

        def counted(url: str, no_proxy: Any = None) -> dict[str, str]:
            resolved.append(url)
            return real(url, no_proxy)

        monkeypatch.setattr(requests.utils, "get_environ_proxies", counted)
        far = "http://crm.invalid/api/v2/tickets.json"  # resolvable by the proxy only
        for n in range(3):
            http.call("crm", "POST", far, json={"n": n})
        http.call("crm", "POST", keep_alive.url, json={})  # NO_PROXY: straight to the server
        assert [r["target"] for r in proxy.received] == [far] * 3
        assert [r["target"] for r in keep_alive.received] == ["/api/v2/tickets.json"]
        assert resolved == [far, keep_alive.url]  # once per host, not once per call
    finally:
        proxy.close()


def test_a_netrc_entry_never_replaces_the_adapters_token(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    fresh_session: None,
    keep_alive: _KeepAliveServer,
    sleeps: list[float],
) -> None:
    """requests applies ~/.netrc credentials over an Authorization header set by hand."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    http.call("crm", "POST", keep_alive.url, json={}, headers={"Authorization": "Bearer crm-token"})
    assert [r["authorization"] for r in keep_alive.received] == ["Bearer crm-token"]


def test_the_ca_bundle_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, fresh_session: None
) -> None:
    assert http.make_session().verify is True
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/curl.pem")
    assert http.make_session().verify == "/etc/ssl/curl.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/corporate.pem")
    assert http.make_session().verify == "/etc/ssl/corporate.pem"


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("192.168.0.10", False),
        ("169.254.169.254", False),  # a cloud's metadata service
        ("0.0.0.0", False),  # noqa: S104 (an address to refuse: it connects to this host on Linux)
        ("224.0.0.1", False),
        ("::1", False),
        ("::", False),
        ("::ffff:127.0.0.1", False),  # IPv4-mapped loopback
        ("fe80::1%eth0", False),
        ("fc00::1", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert http.is_public_address(address) is public


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("100.100.100.200", False),  # shared address space (100.64.0.0/10): a cloud's metadata service
        ("100.64.0.1", False),
        ("192.0.0.1", False),  # IETF protocol assignments (192.0.0.0/24)
        ("198.18.0.1", False),  # benchmarking
        ("fec0::1", False),  # IPv6 site-local (deprecated; Python 3.11 still calls it global)
        ("fec0::a9fe:a9fe", False),
        ("ff02::1", False),  # IPv6 multicast
        ("2001:db8::1", False),  # documentation
        ("::7f00:1", False),  # IPv4-compatible loopback
        ("2002:a9fe:a9fe::", False),  # 6to4 around 169.254.169.254
        ("2002:7f00:1::1", False),  # 6to4 around 127.0.0.1
        ("2002:5db8:d822::1", True),  # 6to4 around a public address
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 (RFC 6052) around 169.254.169.254
        ("64:ff9b::7f00:1", False),
        ("64:ff9b:1::a9fe:a9fe", False),  # local-use NAT64 (RFC 8215) around 169.254.169.254
        ("64:ff9b::5db8:d822", True),  # NAT64 around a public address
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo, client 192.0.2.45 (documentation)
        ("2001:0:a9fe:a9fe:0:0:6a6e:fef5", False),  # Teredo, server 169.254.169.254
        ("2001:0:5db8:d822:0:0:a247:27dd", True),  # Teredo, server and client both public
        ("::ffff:100.100.100.200", False),  # IPv4-mapped shared address
    ],
)
def test_is_public_address_allows_only_global_addresses_once_unwrapped(address: str, public: bool) -> None:
    assert http.is_public_address(address) is public


def test_a_connection_to_a_host_resolving_to_a_wrapped_private_address_is_never_opened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The connection's own check (the one that defeats DNS rebinding) uses the same rule as the
    registration's: an address that hides 169.254.169.254 inside 6to4 is refused before connecting."""
    import socket

    import urllib3.util.connection

    opened: list[Any] = []
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *a, **k: [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2002:a9fe:a9fe::", 80, 0, 0)),
        ],
    )
    monkeypatch.setattr(urllib3.util.connection, "create_connection", lambda *a, **k: opened.append(a))

    with pytest.raises(requests.exceptions.ConnectionError, match="not public"):
        http.public_only_session().post("http://hook.example/x", data=b"{}")

    assert opened == []
