"""Errors the integration layer raises. The domain above turns them into statuses and API errors.

One of four ``errors.py``; this one is the integration layer's exceptions (what an outside call or a tool's
args can go wrong with). The others -- ``adapters/warehouse/errors.py``: the warehouse read path's refusals;
``approvals/errors.py``: the domain's exceptions (what a proposal's lifecycle refuses);
``approvals/api/errors.py``: the API's error *responses*: it turns the other three into the contract's shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class AdapterError(Exception):
    """Base of every error raised by adapters."""


@dataclass
class InvalidArgs(AdapterError):
    """The agent's args broke the tool contract. ``errors`` items: {"loc": [...], "msg": str, "type": str}."""

    errors: list[dict[str, Any]]
    detail: str = "The args do not satisfy the tool's contract."

    def __str__(self) -> str:
        return self.detail


@dataclass
class UnknownTool(AdapterError):
    name: str
    allowed: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return f"Unknown tool {self.name!r}."


@dataclass
class PolicyDenied(AdapterError):
    """A policy refused the call. ``policy`` names the rule; ``detail`` is a sentence the agent can act on."""

    policy: str
    detail: str
    # Which check refused (adapters.policy: "allowed_fields", "pii.card_number", ...), for agents to branch on.
    check: str = ""

    def __str__(self) -> str:
        return self.detail


@dataclass
class RateLimited(PolicyDenied):
    """A rate policy refused the call for now: the same call passes in ``retry_after`` seconds.

    A kind of PolicyDenied (callers that audit or refuse denials treat it alike); the API answers 429 with
    ``Retry-After`` rather than 403, because waiting -- not changing the call -- is what the agent should do.
    """

    retry_after: int = 1


class DownstreamError(AdapterError):
    """Calling the outside system failed."""


@dataclass
class TransientFailure(DownstreamError):
    """Retries were exhausted on errors that may heal (timeouts, 5xx, 429, connection errors)."""

    detail: str
    attempts: int = 1

    def __str__(self) -> str:
        return self.detail


@dataclass
class PermanentFailure(DownstreamError):
    """The outside system refused the call for good (4xx other than 429, a malformed response...)."""

    detail: str
    attempts: int = 1
    status: int | None = None

    def __str__(self) -> str:
        return self.detail


@dataclass
class Deferred(DownstreamError):
    """Not attempted now: a breaker is open or a rate limit applies. Try again at ``retry_at`` (epoch s).
    ``attempts``: requests the call had already sent before it had to wait (their outcome may be unknown)."""

    reason: str  # "breaker_open" | "rate_limited"
    retry_at: float
    detail: str = ""
    attempts: int = 0

    def __str__(self) -> str:
        return self.detail or self.reason


@dataclass
class StaleTarget(DownstreamError):
    """The target changed since the preview (e.g. a ticket's updated_at moved): needs a new review."""

    detail: str

    def __str__(self) -> str:
        return self.detail
