"""What the read path refuses. The API turns them into 400s (``invalid_query`` and friends).

One of four ``errors.py``; this one is the warehouse read path's refusals. The others --
``adapters/errors.py``: the integration layer's exceptions (what an outside call or a tool's args can go wrong
with); ``approvals/errors.py``: the domain's exceptions (what a proposal's lifecycle refuses);
``approvals/api/errors.py``: the API's error *responses*: it turns the other three into the contract's shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adapters.errors import AdapterError


def shown(value: Any, limit: int = 64) -> str:
    """An agent-sent value, safe to put in a message: repr (escapes control characters and lone
    surrogates, which would not survive UTF-8 encoding of the response), cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class QueryError(AdapterError):
    detail: str
    code: str = "invalid_query"

    def __str__(self) -> str:
        return self.detail


@dataclass
class InvalidQuery(QueryError):
    """The plan names something that does not exist or breaks the plan's rules. ``allowed`` lists what
    would have been accepted at that place; ``errors`` items are {"loc": [...], "msg", "type"}."""

    errors: list[dict[str, Any]] = field(default_factory=list)
    allowed: list[str] | None = None
    code: str = "invalid_query"


@dataclass
class QueryTooExpensive(QueryError):
    """The planner expects the query to scan more rows than the quota allows."""

    estimated_rows: int = 0
    max_rows: int = 0
    code: str = "query_too_expensive"


@dataclass
class QueryTimeout(QueryError):
    """The statement ran past the statement timeout and was cancelled."""

    timeout_ms: int = 0
    code: str = "query_timeout"


def invalid(detail: str, loc: list[Any], type_: str, allowed: list[str] | None = None) -> InvalidQuery:
    return InvalidQuery(
        detail=detail,
        errors=[{"loc": [str(p) for p in loc], "msg": detail, "type": type_}],
        allowed=allowed,
    )
