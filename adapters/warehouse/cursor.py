"""The opaque ``next_cursor``: the last row's sort key values, signed with SECRET_KEY (django.core.signing).

The signature covers a fingerprint of the plan (everything but ``limit`` and ``cursor``) and the tenant,
so a cursor cannot be forged, edited, replayed against another plan, or used by another tenant.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import math
from typing import Any

from django.core import signing

from adapters.warehouse.errors import invalid

SALT = "acme.warehouse.cursor.v1"
MAX_AGE = 24 * 3600


def fingerprint(plan: dict[str, Any], tenant: str) -> str:
    material = {k: v for k, v in plan.items() if k not in ("limit", "cursor")}
    canonical = json.dumps([tenant, material], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$f": repr(value)}
    if isinstance(value, decimal.Decimal):
        return {"$d": str(value)}
    if isinstance(value, dt.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    raise TypeError(f"cannot put a {type(value).__name__} in a cursor")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "$d" in value:
            return decimal.Decimal(value["$d"])
        if "$dt" in value:
            return dt.datetime.fromisoformat(value["$dt"])
        if "$date" in value:
            return dt.date.fromisoformat(value["$date"])
        if "$f" in value:
            return float(value["$f"])
    return value


def encode(values: list[Any], *, fingerprint: str) -> str:
    return signing.dumps({"f": fingerprint, "k": [_encode(v) for v in values]}, salt=SALT, compress=True)


def decode(token: str, *, fingerprint: str, keys: int) -> list[Any]:
    try:
        payload = signing.loads(token, salt=SALT, max_age=MAX_AGE)
    except signing.SignatureExpired:
        raise invalid(
            "The cursor has expired; start again without a cursor.", ["cursor"], "cursor_expired"
        ) from None
    except (signing.BadSignature, ValueError, TypeError, UnicodeError):
        raise invalid(
            "The cursor is not one this service issued (or it was altered).", ["cursor"], "cursor_invalid"
        ) from None
    if not isinstance(payload, dict) or payload.get("f") != fingerprint:
        raise invalid(
            "The cursor belongs to another query; send it with the plan that returned it.",
            ["cursor"],
            "cursor_mismatch",
        )
    values = payload.get("k")
    if not isinstance(values, list) or len(values) != keys:
        raise invalid("The cursor does not fit this query.", ["cursor"], "cursor_mismatch")
    return [_decode(v) for v in values]
