"""One attempt of an outbound HTTP call, for ``adapters.http.call``'s retry loop.

The circuit breaker is asked first (``Deferred`` while open: no request leaves) and always gets a verdict
or its permit back: a 5xx or a transport error is a failure, any other answer proves the downstream is up,
and a request that could not even be built (``_UNSENDABLE``) says nothing about it. The answer is then
sorted: 2xx returned; 429, 502, 503 and 504 (and timeouts, broken connections) raised as ``_Retryable``
for the loop, with the ``Retry-After`` of a 429 or 503; a ``Retry-After`` longer than the retry cap or the
call's deadline becomes ``Deferred`` at the time the server named; any other status is a
``PermanentFailure`` carrying only the downstream's error code (bodies can hold PII).

Each attempt is a tracing span and a metric; its log line (logger ``adapters.http``) carries downstream,
method, path (never the query), status, attempt and elapsed time, never headers or bodies.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings

from adapters import breaker
from adapters.errors import Deferred, PermanentFailure
from adapters.http_deadline import _remaining
from adapters.retry_after import parse_retry_after
from audit import metrics, tracing

# The log lines of the outbound calls keep one logger name, whichever module writes them.
logger = logging.getLogger("adapters.http")

# Only these statuses may heal by themselves; any other 4xx is the request's fault and is never retried.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
# The statuses whose Retry-After we honour (RFC 9110 defines it for both; Zendesk sends it on a 503 during
# maintenance). On either the server refused the request rather than performed it.
RETRY_AFTER_STATUSES = frozenset({429, 503})
# Errors in the request we built, raised before anything is sent: no retry heals them, and they say nothing
# about the downstream's health (so no breaker verdict). Any other ``RequestException`` may come after
# the request was sent (a connection broken mid-response, a body that fails to decode): a transient failure.
_UNSENDABLE = (
    requests.exceptions.URLRequired,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidHeader,
    requests.exceptions.InvalidJSONError,
)


class _Retryable(Exception):
    """One attempt failed in a way that may heal; ``retry_after`` is the server's minimum wait, if any."""

    def __init__(self, detail: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
        self.status = status


def _error_code(response: requests.Response) -> str:
    # The downstream's machine-readable error code only (e.g. "RecordInvalid"): bodies can hold PII.
    try:
        body = response.json()
    except ValueError:
        return ""
    code = body.get("error") if isinstance(body, dict) else None
    return code[:100] if isinstance(code, str) else ""


def _attempt(
    session: requests.Session,
    downstream: str,
    method: str,
    url: str,
    number: int,
    *,
    breaker_key: str,
    **kwargs: Any,
) -> requests.Response:
    # One span per try: a retry shows up as a sibling ``http.attempt`` under the call's ``http.call``.
    with tracing.span("http.attempt", downstream=downstream, method=method, attempt=number) as current:
        response = _attempt_once(session, downstream, method, url, number, breaker_key=breaker_key, **kwargs)
        tracing.set_attributes(current, status=response.status_code)
        return response


def _attempt_once(
    session: requests.Session,
    downstream: str,
    method: str,
    url: str,
    number: int,
    *,
    breaker_key: str,
    **kwargs: Any,
) -> requests.Response:
    permit = breaker.acquire(breaker_key)  # raises Deferred while open: no request leaves
    path = urlsplit(url).path
    started = time.monotonic()
    verdict_given = False
    try:
        try:
            response = session.request(method, url, **kwargs)
        except _UNSENDABLE:
            raise  # the ``finally`` below releases the permit: nothing reached the downstream
        except requests.RequestException as exc:
            breaker.record_failure(permit)
            verdict_given = True
            # What broke after the request may have left (a connection cut mid-response, a body that fails
            # to decode) counts as a connection error: the metric keeps its documented few results.
            kind = "timeout" if isinstance(exc, requests.Timeout) else "connection error"
            metrics.observe_attempt(downstream, time.monotonic() - started, kind.replace(" ", "_"))
            logger.info(
                "outbound %s %s %s: %s, %s (attempt %d, %.0f ms)",
                downstream,
                method,
                path,
                kind,
                type(exc).__name__,
                number,
                (time.monotonic() - started) * 1000,
            )
            raise _Retryable(f"{downstream}: {kind}") from None
        elapsed_ms = (time.monotonic() - started) * 1000
        status = response.status_code
        metrics.observe_attempt(downstream, elapsed_ms / 1000, f"{status // 100}xx")
        if status >= 500:
            breaker.record_failure(permit)
        else:
            breaker.record_success(permit)  # a 4xx proves the downstream is up
        verdict_given = True
        logger.info(
            "outbound %s %s %s -> %d (attempt %d, %.0f ms)",
            downstream,
            method,
            path,
            status,
            number,
            elapsed_ms,
        )
    finally:
        if not verdict_given:
            breaker.release(permit)  # e.g. an invalid URL: the probe never reached the downstream
    if status in RETRYABLE_STATUSES:
        retry_after = (
            parse_retry_after(response.headers.get("Retry-After")) if status in RETRY_AFTER_STATUSES else None
        )
        remaining = _remaining()
        if retry_after is not None and (
            retry_after > float(settings.ACME_RETRY_CAP)
            or (remaining is not None and retry_after > remaining)
        ):
            # Sleeping minutes inside a worker would hold it hostage, and a wait past the call's deadline (a
            # commit's lease, a preview's budget) cannot be slept at all; the caller reschedules instead, at
            # the time the server named. Safe for writes: a 429 or 503 means the request was refused.
            raise Deferred(
                reason="rate_limited" if status == 429 else "unavailable",
                retry_at=time.time() + retry_after,
                detail=f"{downstream} asked us to wait {retry_after:.0f} s ({status}).",
                attempts=number,
            )
        raise _Retryable(f"{downstream} answered {status}", retry_after=retry_after, status=status)
    if status >= 300:
        code = _error_code(response)
        raise PermanentFailure(
            detail=f"{downstream} answered {status}" + (f" ({code})" if code else ""),
            attempts=number,
            status=status,
        )
    return response
