"""Payment card numbers in hostile free text (the policy's PII rule, ``adapters.policy``).

A card is a Luhn-valid run of 13-19 ASCII digits starting with a card network's issuer digit, found after
NFKC folding and with every invisible code point removed, whatever separators (spaces, line breaks, dots,
dashes, slashes, Unicode dashes) an agent puts between its groups. The scan is linear in the text: each
run of groups is tried span by span, and a span stops growing past 19 digits.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from adapters.normalize import strip_invisible

# A run of digit groups with separators between them ("4111 1111-1111 1111", "4111.1111.1111.1111", one
# group a line): up to three of any whitespace (line breaks included), '.', '-', '/' or a Unicode dash.
# ASCII digits only, after NFKC folding (so full-width digits are seen as digits) and with every invisible
# code point removed (so U+034F or a zero-width space between the groups hides nothing).
_SEPARATOR = r"[\s.\-/\u2010-\u2015\u2212]{1,3}"
_DIGIT_RUN = re.compile(rf"(?<![0-9])[0-9]+(?:{_SEPARATOR}[0-9]+)*(?![0-9])")
CARD_MIN, CARD_MAX = 13, 19
# Issuer (major industry) digits of the card networks: 2 and 5 Mastercard, 3 Amex/Diners/JCB, 4 Visa,
# 6 Discover/Maestro/UnionPay. Requiring one keeps Luhn-valid 13-digit millisecond timestamps (1...),
# zero-padded ids and the like out of the net; a random digit run passes Luhn one time in ten.
CARD_ISSUER_DIGITS = frozenset("23456")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char)
        if index % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _looks_like_card(digits: str) -> bool:
    return CARD_MIN <= len(digits) <= CARD_MAX and digits[0] in CARD_ISSUER_DIGITS and luhn_valid(digits)


def contains_card_number(text: str) -> bool:
    """True when ``text`` holds a Luhn-valid 13-19 digit card-like number, separators and invisibles allowed.

    Within a longer run of groups ("4111 1111 1111 1111 2026"), every span of whole groups is tried, so a
    card followed or preceded by other numbers is still found; an unbroken run of digits is tried whole
    only (a 32-digit id has no card hidden inside it, yet almost every 16-digit slice would pass Luhn
    one time in ten)."""
    text = strip_invisible(unicodedata.normalize("NFKC", text))
    for match in _DIGIT_RUN.finditer(text):
        groups = re.split(_SEPARATOR, match.group())
        for start in range(len(groups)):
            digits = ""
            for group in groups[start:]:
                digits += group
                if len(digits) > CARD_MAX:
                    break
                if _looks_like_card(digits):
                    return True
    return False


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
