"""Every API error has the contract's shape: {"error": "<code>", "detail": "<sentence>", ...}.

One of four ``errors.py``; this one is the API's error *responses*: it turns the other three into the
contract's shape. The others -- ``adapters/errors.py``: the integration layer's exceptions (what an outside
call or a tool's args can go wrong with); ``adapters/warehouse/errors.py``: the warehouse read path's
refusals; ``approvals/errors.py``: the domain's exceptions (what a proposal's lifecycle refuses).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from adapters import errors as adapter_errors
from adapters.http import DEFAULT_RETRY_AFTER, retry_after_seconds
from adapters.warehouse.errors import InvalidQuery, QueryError, QueryTimeout, QueryTooExpensive
from approvals import errors as domain_errors


class ApiError(exceptions.APIException):
    def __init__(self, status_code: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.code = code
        self.extra = extra


def _flatten(detail: Any, loc: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    if isinstance(detail, dict):
        out: list[dict[str, Any]] = []
        for key, value in detail.items():
            out.extend(_flatten(value, (*loc, str(key))))
        return out
    if isinstance(detail, list):
        if all(not isinstance(v, dict | list) for v in detail):
            return [{"loc": list(loc), "msg": str(v), "type": getattr(v, "code", "invalid")} for v in detail]
        out = []
        for index, value in enumerate(detail):
            out.extend(_flatten(value, (*loc, str(index))))
        return out
    return [{"loc": list(loc), "msg": str(detail), "type": getattr(detail, "code", "invalid")}]


def body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **extra}


@contextmanager
def query_errors() -> Iterator[None]:
    """The warehouse's refusals and rate limits as the API's errors: here and at
    ``POST /api/v1/tools/{name}/call/``, which runs the same plan (and other read tools, whose rate
    limits answer the same 429)."""
    try:
        yield
    except InvalidQuery as exc:
        extra: dict[str, Any] = {"errors": exc.errors}
        if exc.allowed is not None:
            extra["allowed"] = exc.allowed
        raise ApiError(400, exc.code, exc.detail, **extra) from None
    except QueryTooExpensive as exc:
        raise ApiError(
            400, exc.code, exc.detail, estimated_rows=exc.estimated_rows, max_rows=exc.max_rows
        ) from None
    except QueryTimeout as exc:
        raise ApiError(400, exc.code, exc.detail, timeout_ms=exc.timeout_ms) from None
    except QueryError as exc:
        raise ApiError(400, exc.code, exc.detail) from None
    except adapter_errors.Deferred as exc:
        if exc.reason != "rate_limited":
            raise  # an open breaker: the API's 503 downstream_unavailable
        retry = retry_after_seconds(exc.retry_at - time.time())
        raise ApiError(
            429, "rate_limited", str(exc), retry_after=retry, headers={"Retry-After": str(retry)}
        ) from None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApiError):
        extra = dict(exc.extra)
        headers = extra.pop("headers", None)
        return Response(body(exc.code, str(exc.detail), **extra), status=exc.status_code, headers=headers)
    if isinstance(exc, domain_errors.DomainError):
        extra = dict(exc.extra)
        code = extra.pop("error", exc.code)
        return Response(body(code, exc.detail, **extra), status=exc.status)
    if isinstance(exc, adapter_errors.InvalidArgs):
        return Response(body("invalid_args", exc.detail, errors=exc.errors), status=400)
    if isinstance(exc, adapter_errors.UnknownTool):
        return Response(
            body(
                "invalid_args",
                f"Unknown tool {exc.name!r}. Allowed tools: {', '.join(exc.allowed)}.",
                errors=[{"loc": ["tool"], "msg": "unknown tool", "type": "unknown_tool"}],
                allowed=exc.allowed,
            ),
            status=400,
        )
    # A rate policy (RateLimited, a kind of PolicyDenied) is 429 + Retry-After: the same call passes later.
    # A content policy is 403: resending it unchanged never passes, so a client must not just retry.
    if isinstance(exc, adapter_errors.RateLimited):
        wait = retry_after_seconds(exc.retry_after)
        return Response(
            body("rate_limited", exc.detail, policy=exc.policy, check=exc.check, retry_after=wait),
            status=429,
            headers={"Retry-After": str(wait)},
        )
    if isinstance(exc, adapter_errors.PolicyDenied):
        return Response(body("policy_denied", exc.detail, policy=exc.policy, check=exc.check), status=403)
    if isinstance(exc, adapter_errors.Deferred | adapter_errors.TransientFailure):
        # A live read (a preview) met a downstream that is down, slow or rate-limiting: try again later.
        wait = (
            retry_after_seconds(exc.retry_at - time.time())
            if isinstance(exc, adapter_errors.Deferred)
            else DEFAULT_RETRY_AFTER
        )
        return Response(
            body(
                "downstream_unavailable",
                f"The outside system did not answer in time ({exc}); retry later.",
                retry_after=wait,
            ),
            status=503,
            headers={"Retry-After": str(wait)},
        )
    if isinstance(exc, adapter_errors.PermanentFailure):
        return Response(body("downstream_error", f"The outside system refused the read: {exc}."), status=502)
    if isinstance(exc, RequestDataTooBig):
        return Response(
            body("payload_too_large", "The request body is larger than this API accepts."), status=413
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = body("invalid_request", "The request body is not valid.", errors=_flatten(exc.detail))
        return response
    codes = {
        exceptions.NotAuthenticated: (
            "unauthenticated",
            "Authentication is required: send Authorization: Bearer <token>.",
        ),
        exceptions.AuthenticationFailed: ("invalid_token", None),
        exceptions.PermissionDenied: ("forbidden", None),
        exceptions.NotFound: ("not_found", "Not found."),
        exceptions.MethodNotAllowed: ("method_not_allowed", None),
        exceptions.NotAcceptable: ("not_acceptable", None),
        exceptions.UnsupportedMediaType: ("unsupported_media_type", None),
        exceptions.ParseError: ("malformed_request", None),
        exceptions.Throttled: ("rate_limited", None),
    }
    if getattr(exc, "default_code", "") == "payload_too_large":
        response.data = body("payload_too_large", str(getattr(exc, "detail", "")))
        return response
    code, detail = "error", None
    for klass, (candidate, text) in codes.items():
        if isinstance(exc, klass):
            code, detail = candidate, text
            break
    if detail is None:
        raw = getattr(exc, "detail", "")
        detail = str(raw) if not isinstance(raw, dict | list) else "The request could not be processed."
    if response.status_code == status.HTTP_401_UNAUTHORIZED and code == "forbidden":
        code = "unauthenticated"
    response.data = body(code, detail)
    return response
