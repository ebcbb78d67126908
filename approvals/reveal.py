"""The exact args as a reviewer must read them: every character outside printable ASCII made visible.

A Cyrillic a (U+0430) and a Latin a look the same, and so do two addresses that differ only by it. On the
review page the args are shown as JSON with ``ensure_ascii``: every character outside printable ASCII is
its JSON escape (``\\u0430``), and each escape is marked and titled with the character's name and glyph,
so plain English reads as usual and anything else stands out. The JSON itself stays valid and exact (copy
it, parse it: it is the approved args).
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

# In JSON text: an escaped backslash (left alone, so "\\u0430" typed by an agent is not mistaken for an
# escape), or a \uXXXX escape, possibly a surrogate pair (a character past U+FFFF), or \n, \t and friends.
_ESCAPE = re.compile(r"\\\\|\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})|\\u([0-9a-f]{4})|\\([nrtbf])")
_CONTROL_NAMES = {"n": "LINE FEED", "r": "CARRIAGE RETURN", "t": "TAB", "b": "BACKSPACE", "f": "FORM FEED"}


def _name(char: str) -> str:
    return unicodedata.name(char, f"U+{ord(char):04X}")


def _mark(match: re.Match[str]) -> str:
    text = match.group()
    if text == "\\\\":
        return text
    if match.group(1):
        char = chr(0x10000 + ((int(match.group(1), 16) - 0xD800) << 10) + (int(match.group(2), 16) - 0xDC00))
    elif match.group(3):
        char = chr(int(match.group(3), 16))
    else:
        return format_html('<mark class="esc" title="{}">{}</mark>', _CONTROL_NAMES[match.group(4)], text)
    shown = char if unicodedata.category(char)[0] in "LNPS" else ""
    title = f"U+{ord(char):04X} {_name(char)}" + (f" ({shown})" if shown else "")
    return format_html('<mark class="esc" title="{}">{}</mark>', title, text)


def reveal_json(value: Any) -> SafeString:
    """``value`` as indented JSON, HTML-safe, with every escape of a non-printable-ASCII character marked."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=True)
    # The JSON is HTML-escaped first; the escapes it contains are plain ASCII that escaping leaves alone.
    return mark_safe(_ESCAPE.sub(_mark, str(escape(text))))  # noqa: S308 (every piece is escaped above)
