"""The one door for every outbound HTTP call (Saleor's ``core/http_client.py``, Zulip's
``outgoing_http.py``): a session with a mandatory timeout and no redirects, retries with exponential
backoff and full jitter on errors that may heal, ``Retry-After`` honoured, the same ``Idempotency-Key``
on every attempt, and the shared circuit breaker consulted before each attempt.

Logs carry downstream, method, path (never the query: it can hold an email), status, attempt and
elapsed time; never headers (tokens) or bodies (PII).

This module is the retry loop (``call``) and the reading of its answer (``attempts_of``, ``parse``). One
attempt (the breaker, the status sorted into retry, defer or fail) is ``adapters.http_attempt``; the
deadlines are ``adapters.http_deadline``; both, with the sessions and the public-address guard, are
reached through here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
import requests.adapters
from django.conf import settings
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_random_exponential

from adapters.errors import Deferred, PermanentFailure, TransientFailure
from adapters.http_attempt import RETRY_AFTER_STATUSES, RETRYABLE_STATUSES, _attempt, _Retryable
from adapters.http_deadline import _attempt_timeout, _remaining, deadline
from adapters.outbound_guard import is_public_address
from adapters.retry_after import (
    DEFAULT_RETRY_AFTER,
    MAX_RETRY_AFTER,
    parse_retry_after,
    retry_after_seconds,
)
from adapters.sessions import USER_AGENT, _pooled_session, _Session, make_session, public_only_session
from audit import metrics, tracing

# One attempt (adapters.http_attempt), the deadlines (adapters.http_deadline), the sessions (adapters.sessions)
# and the public-address guard (adapters.outbound_guard) live apart from the retry loop; callers and tests
# keep reaching them here.
__all__ = [
    "DEFAULT_RETRY_AFTER",
    "MAX_RETRY_AFTER",
    "RETRYABLE_STATUSES",
    "RETRY_AFTER_STATUSES",
    "USER_AGENT",
    "_Session",
    "_pooled_session",
    "attempts_of",
    "call",
    "deadline",
    "is_public_address",
    "make_session",
    "parse",
    "parse_retry_after",
    "public_only_session",
    "retry_after_seconds",
    "sleep",
]

logger = logging.getLogger(__name__)


def sleep(seconds: float) -> None:
    """The retry loop's sleep; tests replace it (``monkeypatch.setattr(adapters.http, "sleep", ...)``)."""
    time.sleep(seconds)


class _Wait:
    """Full-jitter exponential backoff (tenacity's ``wait_random_exponential``), but never sooner than
    the ``Retry-After`` the server asked for."""

    def __init__(self, base: float, cap: float) -> None:
        self._backoff = wait_random_exponential(multiplier=base, max=cap)

    def __call__(self, state: RetryCallState) -> float:
        backoff = self._backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        return max(backoff, retry_after) if retry_after is not None else backoff


def call(
    downstream: str,
    method: str,
    url: str,
    *,
    json: Any = None,
    headers: dict[str, str] | None = None,
    idempotency_key: str | None = None,
    params: dict[str, Any] | None = None,
    breaker_key: str | None = None,
    public_only: bool = False,
    before_resend: Callable[[int], None] | None = None,
) -> requests.Response:
    """Send one logical request to ``downstream`` ("crm", "slack"), retrying what may heal.

    ``breaker_key``: the circuit breaker consulted (default ``downstream``); a tenant's own connection has
    its own (``adapters.connections``), while metrics and logs keep ``downstream`` as their label.
    ``public_only``: connect to public addresses only, checked at each connection (a tenant's own connection,
    whose URL a tenant admin chose: ``adapters.connections.Resolved.public_only``).
    ``before_resend(number)``: called before attempt ``number`` when the attempt before it may have been
    carried out without our hearing so (a timeout, a connection cut, a 5xx), for a downstream with no
    idempotency key to look for the write first; whatever it raises ends the call (e.g. "found it").

    Returns the 2xx response with an ``attempts`` attribute (for the receipt). Raises
    ``TransientFailure`` when retries ran out, ``PermanentFailure`` on any other 3xx/4xx/5xx, and
    ``Deferred`` (not retried here: it does not spend this call's budget) when the breaker is open or
    the server asked for a wait longer than the retry cap.
    """
    request_headers = dict(headers or {})
    if idempotency_key:
        # Set once, outside the loop: every attempt of this call carries the same key.
        request_headers["Idempotency-Key"] = idempotency_key
    max_attempts = max(1, int(settings.ACME_RETRY_MAX))
    stop: stop_base = stop_after_attempt(max_attempts)
    remaining = _remaining()
    timeout = float(settings.ACME_HTTP_TIMEOUT)
    if remaining is not None:
        if remaining <= 0:
            raise TransientFailure(detail=f"{downstream}: no time left for this call", attempts=0)
        # Never start a wait that would end past the deadline, and never wait on a socket longer than it.
        stop = stop | stop_before_delay(remaining)
        timeout = min(timeout, remaining)
    retrying = Retrying(
        stop=stop,
        wait=_Wait(float(settings.ACME_RETRY_BASE), float(settings.ACME_RETRY_CAP)),
        retry=retry_if_exception_type(_Retryable),
        # Late-bound so a test's monkeypatch of ``sleep`` applies.
        sleep=lambda seconds: sleep(seconds),
    )
    session = _pooled_session(public_only=public_only)
    with tracing.span("http.call", downstream=downstream, method=method, path=urlsplit(url).path) as current:
        number = 0
        unknown = False  # the last attempt's outcome is unknown: it may have been carried out
        try:
            for attempt in retrying:
                with attempt:
                    number = attempt.retry_state.attempt_number
                    if number > 1:
                        metrics.observe_retry(downstream)
                        if unknown and before_resend is not None:
                            before_resend(number)
                    try:
                        response = _attempt(
                            session,
                            downstream,
                            method,
                            url,
                            number,
                            json=json,
                            headers=request_headers,
                            params=params,
                            timeout=_attempt_timeout(timeout),
                            breaker_key=breaker_key or downstream,
                        )
                    except _Retryable as exc:
                        # No status: a timeout or a connection cut, perhaps after the request arrived.
                        unknown = exc.status is None or exc.status >= 500
                        raise
                    response.attempts = number  # type: ignore[attr-defined]
        except Deferred as deferred:
            # The breaker refuses before attempt ``number`` is sent: the attempts before it were.
            deferred.attempts = max(deferred.attempts, number - 1)
            metrics.observe_call(downstream, "deferred")
            raise
        except PermanentFailure:
            metrics.observe_call(downstream, "permanent_failure")
            raise
        except RetryError as exc:
            last = exc.last_attempt
            cause = last.exception()
            detail = getattr(cause, "detail", str(cause))
            logger.warning(
                "outbound %s %s gave up after %d attempts", downstream, method, last.attempt_number
            )
            metrics.observe_call(downstream, "transient_failure")
            tracing.set_attributes(current, attempts=last.attempt_number)
            raise TransientFailure(
                detail=f"{detail}; gave up after {last.attempt_number} attempts", attempts=last.attempt_number
            ) from None
        metrics.observe_call(downstream, "ok")
        tracing.set_attributes(current, attempts=attempts_of(response))
    return response


def attempts_of(response: requests.Response) -> int:
    """How many attempts ``call`` needed for this response (1 for responses made elsewhere)."""
    return int(getattr(response, "attempts", 1))


def parse(model: Any, response: requests.Response, downstream: str) -> Any:
    """Parse a response into a pydantic model; anything malformed is a ``PermanentFailure``, not a crash."""
    from pydantic import ValidationError

    attempts = attempts_of(response)
    try:
        return model.model_validate_json(response.content)
    except ValidationError as exc:
        where = ", ".join(".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()[:5])
        raise PermanentFailure(
            detail=f"{downstream} sent a malformed response ({where})",
            attempts=attempts,
            status=response.status_code,
        ) from None
