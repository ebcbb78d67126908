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

from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import ValidationError

from adapters.normalize.fields import (
    CHANNEL_INVALID,
    CHANNEL_PATTERN,
    MAX_RAW_TAGS,
    MAX_TAGS,
    PRIORITIES,
    PRIORITY_SYNONYMS,
    PRIORITY_VOCABULARY,
    STATUS_SYNONYMS,
    STATUS_VOCABULARY,
    STATUSES,
    TAG_INVALID,
    TAG_PATTERN,
    TOO_MANY_RAW_TAGS,
    Channel,
    CrmPriority,
    Priority,
    Tags,
    TicketId,
    TicketStatus,
    integral_number,
    lossless_int,
    normalize_channel,
    normalize_tags,
    shown,
    vocabulary,
)
from adapters.normalize.text import (
    BLANK_GLYPHS,
    EMAIL_INVALID,
    NOTHING_VISIBLE,
    CleanLine,
    CleanText,
    Email,
    _strip_invisible,
    clean_line,
    clean_text,
    normalize_email,
    strip_invisible,
)

# The rules live in adapters/normalize/text.py (text, emails) and fields.py (vocabularies, tags, ids,
# channels); every name is importable from here, as before. ArgsModel, the base of every args model, is here.

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
    "BLANK_GLYPHS",
    "CHANNEL_INVALID",
    "CHANNEL_PATTERN",
    "EMAIL_INVALID",
    "MAX_RAW_TAGS",
    "MAX_TAGS",
    "NOTHING_VISIBLE",
    "PRIORITIES",
    "PRIORITY_SYNONYMS",
    "PRIORITY_VOCABULARY",
    "RAW_TEXT_FACTOR",
    "STATUSES",
    "STATUS_SYNONYMS",
    "STATUS_VOCABULARY",
    "TAG_INVALID",
    "TAG_PATTERN",
    "TOO_MANY_RAW_TAGS",
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
    "_strip_invisible",
    "clean_line",
    "clean_text",
    "integral_number",
    "lossless_int",
    "normalize_channel",
    "normalize_email",
    "normalize_tags",
    "shown",
    "strip_invisible",
    "vocabulary",
]
