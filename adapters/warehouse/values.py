"""Values: an agent's JSON values typed against a column, database values turned back into JSON."""

from __future__ import annotations

import datetime as dt
import decimal
import math
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime

from adapters.warehouse.errors import InvalidQuery, invalid, shown
from adapters.warehouse.schema import Column, ColumnType

INT_MIN, INT_MAX = -(2**63), 2**63 - 1
NUMBER_BOUND = decimal.Decimal(10) ** 15
MAX_TEXT = 1000
UTC = dt.UTC


def _bad(column: Column, value: Any, loc: list[Any], expected: str) -> InvalidQuery:
    return invalid(
        f"Column {column.name!r} is {column.type}: expected {expected}, got {shown(value)}.",
        loc,
        "value_type",
    )


def typed(column: Column, value: Any, loc: list[Any]) -> Any:
    """``value`` as the Python type the column holds, or InvalidQuery. Never trusts the agent's type."""
    kind = column.type
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(column, value, loc, "an integer")
        if not INT_MIN <= value <= INT_MAX:
            raise _bad(column, value, loc, "a 64-bit integer")
        return value
    if kind in ("decimal", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _bad(column, value, loc, "a number")
        try:
            number = decimal.Decimal(value) if not isinstance(value, float) else decimal.Decimal(repr(value))
        except (decimal.InvalidOperation, ValueError):
            raise _bad(column, value, loc, "a number") from None
        exponent = number.as_tuple().exponent
        if (
            not number.is_finite()
            or abs(number) >= NUMBER_BOUND
            or (isinstance(exponent, int) and exponent < -30)
        ):
            raise _bad(column, value, loc, "a finite number below 10^15, at most 30 decimal places")
        if isinstance(value, str) and len(value) > 40:
            raise _bad(column, value, loc, "a number of at most 40 characters")
        return number if kind == "decimal" else float(number)
    if kind == "text":
        return text(column, value, loc)
    if kind == "datetime":
        if not isinstance(value, str) or len(value) > 40:
            raise _bad(column, value, loc, "an ISO 8601 date-time")
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _bad(column, value, loc, "an ISO 8601 date-time such as 2026-01-31T12:00:00Z") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        try:
            return parsed.astimezone(UTC)
        except (OverflowError, ValueError):
            raise _bad(column, value, loc, "a date-time within years 1 to 9999") from None
    if kind == "date":
        if not isinstance(value, str) or len(value) > 10:
            raise _bad(column, value, loc, "an ISO 8601 date")
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise _bad(column, value, loc, "an ISO 8601 date such as 2026-01-31") from None
    if kind == "bool":
        if not isinstance(value, bool):
            raise _bad(column, value, loc, "true or false")
        return value
    raise _bad(column, value, loc, "a supported type")  # pragma: no cover


def text(column: Column, value: Any, loc: list[Any]) -> str:
    if not isinstance(value, str):
        raise _bad(column, value, loc, "a string")
    if len(value) > MAX_TEXT:
        raise _bad(column, value, loc, f"a string of at most {MAX_TEXT} characters")
    if "\x00" in value:
        raise _bad(column, value, loc, "a string without NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(column, value, loc, "valid Unicode text") from None
    return value


def to_json(value: Any, kind: ColumnType) -> Any:
    """A database value (either backend) as the JSON the API returns for that type. Decimals become
    JSON numbers (floats): these are analytics, not ledgers."""
    if value is None:
        return None
    if kind == "int":
        return int(value)
    if kind in ("decimal", "float"):
        number = float(value)
        if not math.isfinite(number):
            return None
        # SQLite sums decimals as binary floats (75734.52000000002): show them at a decimal's precision.
        return round(number, 6) if kind == "decimal" and isinstance(value, float) else number
    if kind == "datetime":
        if isinstance(value, str):
            value = parse_datetime(value) or value
        if isinstance(value, dt.datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return str(value)
    if kind == "date":
        if isinstance(value, str):
            value = parse_date(value) or value
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    if kind == "bool":
        return bool(value)
    return str(value)
