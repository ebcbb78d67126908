"""Reusable normalizers for tool args: model output is unpredictable, the business systems are not.

Each rule is a small function wrapped in an ``Annotated`` type, so an args model reads as its contract:

    class CreateTicketArgs(ArgsModel):
        subject: Annotated[str, Field(min_length=1, max_length=200), CleanLine]
        priority: Priority

Models are strict (no silent type juggling); the only coercions are the lossless ones spelled out here
(e.g. ``"123"`` -> ``123`` for an id). Normalizers leave a value of the wrong type alone so that pydantic's
strict check names the type error.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

# Text ------------------------------------------------------------------------------------------------

# Zero-width and invisible formatting characters (category Cf: ZWSP, ZWJ, BOM, bidi overrides, soft
# hyphen...) can hide text from a reviewer or reorder what they see; control characters (Cc) can forge
# log lines or break the downstream. Only \n and \t survive, and only in long text.
_KEEP_IN_LONG_TEXT = frozenset("\n\t")


def _strip_invisible(value: str, keep: frozenset[str]) -> str:
    return "".join(
        ch for ch in value if ch in keep or unicodedata.category(ch) not in {"Cc", "Cf", "Co", "Cs"}
    )


def clean_line(value: Any) -> Any:
    """One-line text: invisible/control characters removed, whitespace runs collapsed, ends trimmed."""
    if not isinstance(value, str):
        return value
    value = unicodedata.normalize("NFC", value)
    value = _strip_invisible(value.replace("\r\n", " ").replace("\r", " ").replace("\n", " "), frozenset())
    return " ".join(value.split())


def clean_text(value: Any) -> Any:
    """Long text: like ``clean_line`` but keeps line breaks and tabs; trailing spaces per line trimmed."""
    if not isinstance(value, str):
        return value
    value = unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n")
    value = _strip_invisible(value, _KEEP_IN_LONG_TEXT)
    return "\n".join(line.rstrip() for line in value.split("\n")).strip()


# Markers for ``Annotated[str, Field(max_length=...), CleanLine]``: the cleaner wraps the constrained
# type, so the length limit applies to the cleaned value (invisible padding cannot push text past, or
# sneak it under, a limit).
CleanLine = BeforeValidator(clean_line)
CleanText = BeforeValidator(clean_text)


# Emails ----------------------------------------------------------------------------------------------

# Deliberately plain (no DNS, no quoted local parts): what a CRM accepts as a requester's address.
_EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
EMAIL_INVALID = "is not a valid email address"


def normalize_email(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = clean_line(value).lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError(EMAIL_INVALID)
    return value


Email = Annotated[
    str,
    BeforeValidator(normalize_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254}),
]

# Priority --------------------------------------------------------------------------------------------

# Agents speak low/medium/high/critical (and whatever else they pick up); the CRM stores low/normal/high/urgent.
PRIORITY_SYNONYMS: dict[str, str] = {
    **dict.fromkeys(["low", "minor", "p4", "trivial"], "low"),
    **dict.fromkeys(["medium", "normal", "moderate", "p3", "med"], "normal"),
    **dict.fromkeys(["high", "important", "p2", "major"], "high"),
    **dict.fromkeys(["critical", "urgent", "emergency", "asap", "p1", "blocker", "p0"], "urgent"),
}
CrmPriority = Literal["low", "normal", "high", "urgent"]


def _synonyms(table: dict[str, str], what: str) -> Any:
    def normalize(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        word = " ".join(clean_line(value).lower().split())
        if word not in table:
            raise ValueError(
                f"unknown {what} {value!r}; use one of: {', '.join(sorted(set(table.values())))}"
            )
        return table[word]

    return normalize


Priority = Annotated[
    CrmPriority,
    BeforeValidator(_synonyms(PRIORITY_SYNONYMS, "priority")),
    WithJsonSchema(
        {
            "type": "string",
            "enum": ["low", "medium", "high", "critical", "normal", "urgent"],
            "description": "low, medium, high or critical (synonyms such as p1 or urgent are understood); "
            "stored as the CRM's low/normal/high/urgent.",
        }
    ),
]

# Zendesk's ticket statuses; "resolved" and "on hold" are what people say.
STATUS_SYNONYMS: dict[str, str] = {
    **dict.fromkeys(["new"], "new"),
    **dict.fromkeys(["open", "reopen", "reopened"], "open"),
    **dict.fromkeys(["pending", "waiting"], "pending"),
    **dict.fromkeys(["hold", "on hold", "on-hold", "on_hold"], "hold"),
    **dict.fromkeys(["solved", "resolved", "done", "fixed"], "solved"),
    **dict.fromkeys(["closed"], "closed"),
}
TicketStatus = Annotated[
    Literal["new", "open", "pending", "hold", "solved", "closed"],
    BeforeValidator(_synonyms(STATUS_SYNONYMS, "status")),
    WithJsonSchema({"type": "string", "enum": ["new", "open", "pending", "hold", "solved", "closed"]}),
]

# Tags ------------------------------------------------------------------------------------------------

_TAG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
# What an agent is told (the tools' JSON Schema): every string it matches normalizes to a valid tag (lower
# case; spaces become '-'). Looser input that still normalizes (surrounding spaces) is accepted too.
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_ -]{0,49}$"
MAX_TAGS = 10
TAG_INVALID = "tags are short slugs: letters, digits, '-' or '_', at most 50 characters"


def normalize_tags(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    tags: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise ValueError("each tag must be a string")
        tag = "-".join(clean_line(item).lower().split())
        if not _TAG.match(tag):
            raise ValueError(TAG_INVALID)
        if tag not in tags:  # dedupe, first occurrence wins (order is what the agent meant)
            tags.append(tag)
    return tags


Tags = Annotated[
    list[str],
    Field(max_length=MAX_TAGS),
    BeforeValidator(normalize_tags),
    WithJsonSchema(
        {
            "type": "array",
            "maxItems": MAX_TAGS,
            "items": {"type": "string", "pattern": TAG_PATTERN},
            "description": "Short slugs: letters, digits, '-' or '_' (spaces become '-'), stored in lower case.",
        }
    ),
]

# Ids -------------------------------------------------------------------------------------------------

_DIGITS = re.compile(r"^[0-9]{1,18}$")


# Beyond this a JSON number (a double in most producers) no longer holds every integer exactly.
_EXACT_IN_A_DOUBLE = 2**53


def integral_number(value: Any) -> Any:
    """A JSON number with no fraction, such as ``123.0``, -> ``123``. JSON Schema counts it as an integer,
    so a published ``"type": "integer"`` promises to take it, and many JSON producers cannot tell the two
    apart. ``12.5``, ``1e300`` (past what a double holds exactly) and ``True`` stay as they are and fail a
    strict int check."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= _EXACT_IN_A_DOUBLE:
        return int(value)
    return value


def lossless_int(value: Any) -> Any:
    """``"123"`` -> ``123`` (surrounding whitespace allowed), and ``123.0`` -> ``123`` (``integral_number``).
    ``"12.0"``, ``"1e3"``, ``"+5"`` stay as they are and fail the strict int check: none is an exact,
    canonical id."""
    if isinstance(value, str) and _DIGITS.match(value.strip()):
        return int(value.strip())
    return integral_number(value)


# The constraint comes first so the before-validator wraps it (and the JSON Schema shows exclusiveMinimum).
TicketId = Annotated[int, Field(gt=0), BeforeValidator(lossless_int)]

# Slack channels --------------------------------------------------------------------------------------

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")
_CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,79}$")
# What an agent is told: every string it matches is accepted (a name is lower-cased and gets its '#').
CHANNEL_PATTERN = r"^(#?[A-Za-z0-9][A-Za-z0-9_-]{0,79}|[CGD][A-Z0-9]{6,})$"
CHANNEL_INVALID = "a channel is '#name' (lower case, digits, '-', '_') or a Slack channel id like C0123ABCD"


def normalize_channel(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = clean_line(value)
    if _CHANNEL_ID.match(value):  # ids are upper case by construction; keep them verbatim
        return value
    name = value.removeprefix("#").lower()
    if not _CHANNEL_NAME.match(name):
        raise ValueError(CHANNEL_INVALID)
    return f"#{name}"


Channel = Annotated[
    str, BeforeValidator(normalize_channel), WithJsonSchema({"type": "string", "pattern": CHANNEL_PATTERN})
]


# Models ----------------------------------------------------------------------------------------------


class ArgsModel(BaseModel):
    """Base of every tool's args: unknown fields rejected, no implicit coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)


__all__ = [
    "ArgsModel",
    "Channel",
    "CleanLine",
    "CleanText",
    "CrmPriority",
    "Email",
    "Priority",
    "Tags",
    "TicketId",
    "TicketStatus",
    "clean_line",
    "clean_text",
    "integral_number",
    "normalize_channel",
    "normalize_email",
    "normalize_tags",
]
