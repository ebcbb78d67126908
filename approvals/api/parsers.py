"""A stricter JSON parser than DRF's: what an agent sends is parsed once, exactly, or refused with a 400.

* duplicate keys are refused (which one "wins" differs between parsers: ambiguity an attacker can use);
* NaN/Infinity are refused (not JSON);
* nesting deeper than MAX_DEPTH is refused (and the C parser's RecursionError never becomes a 500);
* bodies over DATA_UPLOAD_MAX_MEMORY_SIZE are refused before they are read whole.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


class PayloadTooLarge(APIException):
    status_code = 413
    default_code = "payload_too_large"


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ParseError(f"Duplicate key {key[:50]!r} in the JSON body.")
        result[key] = value
    return result


def _no_constants(name: str) -> Any:
    raise ParseError(f"{name} is not valid JSON.")


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            return depth
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


def loads_strict(raw: bytes) -> Any:
    """``raw`` as JSON under the rules above (not the size limit: the caller's). Raises ParseError."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ParseError("The request body is not valid UTF-8.") from None
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except RecursionError:
        raise ParseError(f"The JSON body is nested more than {MAX_DEPTH} levels deep.") from None
    except ValueError as exc:
        raise ParseError(f"The request body is not valid JSON: {exc}") from None
    if _depth(data) > MAX_DEPTH:
        raise ParseError(f"The JSON body is nested more than {MAX_DEPTH} levels deep.")
    return data


def has_nul(value: Any) -> bool:
    """Whether a NUL character is in any string (key or value) of ``value``: PostgreSQL's text and jsonb
    cannot store one, so a body carrying it is refused before it reaches the database."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


class StrictJSONParser(JSONParser):
    def parse(
        self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        return loads_strict(raw)
