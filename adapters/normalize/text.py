"""Text and emails (``adapters.normalize``): invisible characters out, spaces folded, nothing-visible refused."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any

import regex
from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

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
