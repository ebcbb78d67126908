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
from functools import cache
from typing import Annotated, Any, Literal

import regex
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic_core import PydanticCustomError, ValidationError

# Text ------------------------------------------------------------------------------------------------

# Zero-width and invisible formatting characters (category Cf: ZWSP, ZWJ, BOM, bidi overrides, soft
# hyphen...) can hide text from a reviewer or reorder what they see; control characters (Cc) can forge
# log lines or break the downstream. Only \n and \t survive, and only in long text.
# Default-ignorable code points that are not Cf render as nothing too (U+034F combining grapheme joiner,
# variation selectors, Hangul fillers U+115F/U+1160/U+3164/U+FFA0, tag characters): every one of them goes.
# The standard library's unicodedata has no Default_Ignorable_Code_Point property; the ``regex`` module
# knows it for the Unicode version it ships.
_KEEP_IN_LONG_TEXT = frozenset("\n\t")
_INVISIBLE = regex.compile(r"[\p{Default_Ignorable_Code_Point}\p{Cc}\p{Cf}\p{Co}\p{Cs}]")
# Characters that draw an empty cell yet are neither whitespace nor default-ignorable: read as a space, so
# text made only of them has nothing visible and is refused like an empty one.
BLANK_GLYPHS = "\u2800"  # BRAILLE PATTERN BLANK
_BLANK_GLYPHS = str.maketrans(dict.fromkeys(BLANK_GLYPHS, " "))


def _strip_invisible(value: str, keep: frozenset[str]) -> str:
    value = value.translate(_BLANK_GLYPHS)
    return _INVISIBLE.sub(lambda m: m.group() if m.group() in keep else "", value)


def strip_invisible(value: str) -> str:
    """``value`` without any invisible code point (line breaks and tabs included), for detectors that must
    see through them (e.g. a card number with U+034F between its groups)."""
    return _strip_invisible(value, frozenset())


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


# Text left empty by the cleaners: said as such, not as pydantic's "at least 1 character" (the person or
# agent typed something; it was only spaces or invisible characters). Its type stays pydantic's.
NOTHING_VISIBLE = "has nothing visible in it (spaces and invisible characters do not count)"


def _visible(clean: Any) -> Any:
    def validate(value: Any) -> Any:
        value = clean(value)
        if value == "":
            raise PydanticCustomError("string_too_short", NOTHING_VISIBLE)
        return value

    return validate


# Markers for ``Annotated[str, Field(max_length=...), CleanLine]``: the cleaner wraps the constrained
# type, so the length limit applies to the cleaned value (invisible padding cannot push text past, or
# sneak it under, a limit).
CleanLine = BeforeValidator(_visible(clean_line))
CleanText = BeforeValidator(_visible(clean_text))


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


# Models ----------------------------------------------------------------------------------------------


# A raw string may be longer than its field's published maxLength by what the cleaners remove (invisible
# characters, runs of spaces), up to this factor; past it the value is refused before any cleaning.
RAW_TEXT_FACTOR = 2


@cache
def _raw_text_limits(model: type[BaseModel]) -> dict[str, int]:
    """Each string field's published maxLength (from the JSON Schema the agents are given)."""
    limits: dict[str, int] = {}
    for name, schema in model.model_json_schema().get("properties", {}).items():
        lengths = [
            v["maxLength"]
            for v in schema.get("anyOf", [schema])
            if v.get("type") == "string" and "maxLength" in v
        ]
        if lengths:
            limits[name] = max(lengths)
    return limits


class ArgsModel(BaseModel):
    """Base of every tool's args: unknown fields rejected, no implicit coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)

    @model_validator(mode="before")
    @classmethod
    def _bounded_raw_text(cls, data: Any) -> Any:
        """Bound every raw string before the per-character work of the cleaners (linear, but a 256 KB
        subject should cost a length check, not a normalization). Lists bound themselves the same way
        (``normalize_tags``)."""
        if isinstance(data, dict):
            for name, limit in _raw_text_limits(cls).items():
                value = data.get(name)
                if isinstance(value, str) and len(value) > RAW_TEXT_FACTOR * limit + 64:
                    # The error pydantic's own max_length gives, at the field's location (a ValidationError
                    # raised here passes through as is; a ValueError would be located at the model).
                    raise ValidationError.from_exception_data(
                        cls.__name__,
                        [
                            {
                                "type": "string_too_long",
                                "loc": (name,),
                                "input": value[:50],
                                "ctx": {"max_length": limit},
                            }
                        ],
                    )
        return data


__all__ = [
    "NOTHING_VISIBLE",
    "PRIORITIES",
    "PRIORITY_VOCABULARY",
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
    "strip_invisible",
]
