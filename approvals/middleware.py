"""Query strings and paths are checked like a body before any view reads them.

A NUL reaching a PostgreSQL text parameter is a 500 (``DataError``), and no control character (C0, DEL, C1;
tabs and newlines included) has any business in a filter, a cursor or a path segment. Bytes that are not
UTF-8 (a lone surrogate, an overlong encoding) are refused too: Django would silently turn them into
U+FFFD, so the value looked up would not be the value sent. The answer is a 400 naming the parameter: in
the API's error shape under ``/api/``, a plain-text page elsewhere.

Written here rather than taken from a library: neither Django nor DRF checks the query string at all, and
each view validating its own parameters would leave the admin's filters and every future view open. Django
parses ``request.GET`` with ``errors="replace"``, so the raw query string is read (as Django splits it: on
``&``, ``+`` for a space) to tell bad bytes from a real U+FFFD.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import unquote_to_bytes

from django.core.handlers.wsgi import get_bytes_from_wsgi
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

# C0 controls, DEL and C1 controls: Unicode's category Cc.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
CONTROL_IN_PARAMETER = (
    "The query parameter {name!r} holds a control character (such as NUL); send printable text only."
)
NOT_UTF8_PARAMETER = "The query parameter {name!r} is not valid UTF-8."
CONTROL_IN_PATH = "The path holds a control character (such as NUL)."
PATH = "path"


def _printable(text: str) -> str:
    """``text`` with its control characters escaped, to name a parameter safely."""
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _decode(raw: bytes) -> tuple[str, bool]:
    """(text, whether it was valid UTF-8) of one percent-encoded key or value."""
    data = unquote_to_bytes(raw.replace(b"+", b" "))
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="replace"), False


def refusal(request: HttpRequest) -> tuple[str, str] | None:
    """(parameter name, sentence) of the first refused part of the request's path or query, else None."""
    if CONTROL.search(request.path_info):
        return PATH, CONTROL_IN_PATH
    query = get_bytes_from_wsgi(request.META, "QUERY_STRING", "")
    if not query:
        return None
    for field in query.split(b"&"):
        if not field:
            continue
        raw_key, _, raw_value = field.partition(b"=")
        key, key_ok = _decode(raw_key)
        value, value_ok = _decode(raw_value)
        name = _printable(key)
        if CONTROL.search(key) or CONTROL.search(value):
            return name, CONTROL_IN_PARAMETER.format(name=name)
        if not (key_ok and value_ok):
            return name, NOT_UTF8_PARAMETER.format(name=name)
    return None


class RefuseControlCharactersMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = refusal(request)
        if refused is None:
            return self.get_response(request)
        parameter, detail = refused
        if request.path_info.startswith("/api/"):
            return JsonResponse(
                {"error": "invalid_parameter", "detail": detail, "parameter": parameter}, status=400
            )
        return HttpResponseBadRequest(f"Bad request. {detail}\n", content_type="text/plain; charset=utf-8")
