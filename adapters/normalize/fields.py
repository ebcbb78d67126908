"""The business systems' vocabularies and values (``adapters.normalize``): priorities and ticket statuses
with the words agents say for them, tags, ids, Slack channels."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema

from adapters.normalize.text import clean_line

# Priority --------------------------------------------------------------------------------------------

# One vocabulary, stated once: the CRM's low/normal/high/urgent is what the schema's enum lists, the edit form
# offers, the preview shows and the CRM receives. Agents also say low/medium/high/critical and other words;
# each is listed in the schema's description and in the error (PRIORITY_VOCABULARY), none accepted silently.
PRIORITIES = ("low", "normal", "high", "urgent")
PRIORITY_SYNONYMS: dict[str, str] = {
    **dict.fromkeys(["low", "minor", "p4", "trivial"], "low"),
    **dict.fromkeys(["normal", "medium", "moderate", "med", "p3"], "normal"),
    **dict.fromkeys(["high", "important", "major", "p2"], "high"),
    **dict.fromkeys(["urgent", "critical", "emergency", "asap", "blocker", "p1", "p0"], "urgent"),
}
CrmPriority = Literal["low", "normal", "high", "urgent"]
# The longest value echoed in an error: enough to recognise it, never a wall of text.
_SHOWN = 40


def shown(value: str) -> str:
    """A value quoted in an error message: repr (invisible characters escaped), cut at ``_SHOWN``."""
    return repr(value if len(value) <= _SHOWN else value[:_SHOWN] + "…")


def vocabulary(values: tuple[str, ...], table: dict[str, str]) -> str:
    """``"a, b or c (also understood: x, y = a; z = c)"``: the values, then every other word of ``table``."""
    words = f"{', '.join(values[:-1])} or {values[-1]}"
    also = [f"{', '.join(w for w in table if table[w] == v and w != v)} = {v}" for v in values]
    also = [entry for entry in also if not entry.startswith(" =")]
    return f"{words} (also understood: {'; '.join(also)})" if also else words


PRIORITY_VOCABULARY = vocabulary(PRIORITIES, PRIORITY_SYNONYMS)


def _synonyms(table: dict[str, str], what: str, said: str) -> Any:
    def normalize(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        word = " ".join(clean_line(value).lower().split())
        if word not in table:
            raise ValueError(f"unknown {what} {shown(value)}; use {said}")
        return table[word]

    return normalize


Priority = Annotated[
    CrmPriority,
    BeforeValidator(_synonyms(PRIORITY_SYNONYMS, "priority", PRIORITY_VOCABULARY)),
    WithJsonSchema({"type": "string", "enum": list(PRIORITIES), "description": PRIORITY_VOCABULARY}),
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
STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
STATUS_VOCABULARY = vocabulary(STATUSES, STATUS_SYNONYMS)
TicketStatus = Annotated[
    Literal["new", "open", "pending", "hold", "solved", "closed"],
    BeforeValidator(_synonyms(STATUS_SYNONYMS, "status", STATUS_VOCABULARY)),
    WithJsonSchema({"type": "string", "enum": list(STATUSES), "description": STATUS_VOCABULARY}),
]

# Tags ------------------------------------------------------------------------------------------------

_TAG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
# What an agent is told (the tools' JSON Schema): every string it matches normalizes to a valid tag (lower
# case; spaces become '-'). Looser input that still normalizes (surrounding spaces) is accepted too.
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_ -]{0,49}$"
MAX_TAGS = 10
TAG_INVALID = "tags are short slugs: letters, digits, '-' or '_', at most 50 characters"


# Raw items looked at before the de-duplicated list is held to MAX_TAGS: room for an agent's repeats
# ("Billing", "billing"), never so many that refusing a huge list costs more than reading its length.
MAX_RAW_TAGS = 10 * MAX_TAGS
TOO_MANY_RAW_TAGS = (
    f"at most {MAX_TAGS} tags (and at most {MAX_RAW_TAGS} items before duplicates are removed)"
)


def normalize_tags(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    if len(value) > MAX_RAW_TAGS:  # before any per-item work: a 44,000-item list is refused at once
        raise ValueError(TOO_MANY_RAW_TAGS)
    tags: dict[str, None] = {}  # an ordered set: dedupe in linear time, first occurrence wins
    for item in value:
        if not isinstance(item, str):
            raise ValueError("each tag must be a string")
        tag = "-".join(clean_line(item).lower().split())
        if not _TAG.match(tag):
            raise ValueError(f"tag {shown(item)}: {TAG_INVALID}")
        tags.setdefault(tag)
    return list(tags)


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
