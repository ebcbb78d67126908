"""Structured JSON logs, and redaction that keeps secrets and PII out of every log line and error report.

``redact(text)`` replaces bearer/basic credentials, our API tokens (``agt_…``, ``usr_…``), well-known
secret formats (Slack ``xox…`` tokens, JWTs, credentials in URLs), ``key=value`` / ``"key": "value"``
secrets, emails, card numbers, SSNs and phone numbers with ``[REDACTED:<kind>]``. It first cuts the text to
a few KB (``MESSAGE_LIMIT``; tracebacks ``TRACEBACK_LIMIT``) and decodes percent-escapes
(``jane%40example.com`` is an email); every pattern costs linear time, whatever the input.

Three layers use it, so no single miss leaks:

* ``RedactingFilter`` (on the console handler) rewrites the record itself: message, args, extra fields and
  the formatted traceback; it runs on the handler, so third-party loggers are covered too, and before the
  handler's lock is taken. A request (an extra of ``django.request``) becomes its method and path, and the
  development server's request line loses its query string.
* ``JsonFormatter`` redacts every string of a record that did not pass the filter, including extras it has
  to ``str()``; a record the filter redacted is only serialized.
* ``RedactingExceptionReporterFilter`` / ``RedactingExceptionReporter`` (settings
  ``DEFAULT_EXCEPTION_REPORTER_FILTER`` / ``DEFAULT_EXCEPTION_REPORTER``) mask settings, headers, cookies,
  POST data and frame variables in error reports (the DEBUG 500 page, mail to admins), and redact the
  exception message, the query string and everything else they show.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from django.http import HttpRequest
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

MASK = "[REDACTED:{kind}]"

# Every pattern below costs linear time on any input (tests/audit/test_logging.py feeds each 64 KB of
# adversarial text): each repetition is bounded, and a pattern that could start anywhere inside a long run
# (a key, an email's local part, a JWT) starts only where such a run starts (a lookbehind), so no run is
# rescanned from each of its characters. An unbounded ``[\w.-]*`` at the front cost O(n²): a 4,000-character
# 404 path held the process for seconds. A run longer than a bound is redacted in part (or, for a key or
# an email's local part longer than 64 characters, not at all): no real secret or address is that shape.
MESSAGE_LIMIT = 4096  # characters of a message kept (and redacted); the rest is cut
TRACEBACK_LIMIT = 16384  # of a traceback or stack: its first quarter and its last three quarters
CUT = " …[{n} characters cut]… "

# Words that name a secret (not secrets).
_SECRET_KEY_WORDS = "|".join(
    [
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        r"api[_-]?key",
        "apikey",
        "authorization",
        "cookie",
        r"session[_-]?id",
        r"csrf[\w-]{0,32}",
        "signature",
        r"private[_-]?key",
        "credentials?",
        "dsn",
    ]
)
_SECRET_KV = re.compile(
    rf"""(?ix)
    (?<![\w.-])(?P<key>[\w.-]{{0,64}}(?:{_SECRET_KEY_WORDS})[\w.-]{{0,64}})
    (?P<sep>["']?\s{{0,8}}[:=]\s{{0,8}})
    (?:(?P<q>["'])(?P<qval>(?:\\.|(?!(?P=q)).){{0,1024}})(?P=q)?|(?P<val>[^\s"',;}}&\\]{{1,1024}}))
    """
)


def _kv(match: re.Match[str]) -> str:
    quote = match.group("q") or ""
    return f"{match.group('key')}{match.group('sep')}{quote}{MASK.format(kind='secret')}{quote}"


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_DECIMAL = re.compile(r"\d+\.\d+")


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    digits = sum(c.isdigit() for c in text)
    if not 9 <= digits <= 15 or _ISO_DATE.match(text) or _IPV4.fullmatch(text) or _DECIMAL.fullmatch(text):
        return text
    return MASK.format(kind="phone")


# Order matters: credentials first (a token can look like a phone number), then PII.
_PATTERNS: list[tuple[str, re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (
        "token",
        re.compile(r"(?i)\b(?:bearer|basic)\s{1,8}[A-Za-z0-9._~+/=-]{6,4096}"),
        MASK.format(kind="token"),
    ),
    ("token", re.compile(r"\b(?:agt|usr)_[A-Za-z0-9_-]{16,1024}"), MASK.format(kind="token")),
    ("token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,1024}"), MASK.format(kind="token")),
    (
        "token",
        re.compile(
            r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,8192}\.[A-Za-z0-9_-]{8,8192}\.[A-Za-z0-9_-]{0,8192}"
        ),
        MASK.format(kind="token"),
    ),
    (
        "secret",
        re.compile(
            r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{0,31}://)[^/\s:@\"'\\]{1,256}:[^/\s@\"'\\]{1,256}@"
        ),
        r"\1" + MASK.format(kind="credentials") + "@",
    ),
    ("secret", _SECRET_KV, _kv),
    (
        "email",
        re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}"),
        MASK.format(kind="email"),
    ),
    ("card", re.compile(r"(?<![\d-])(?:\d[ +-]?){12,18}\d(?![\d-])"), MASK.format(kind="card")),
    ("ssn", re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])"), MASK.format(kind="ssn")),
    ("phone", re.compile(r"(?<![\w.:/=-])\+?\(?\d[\d\s().-]{6,40}\d(?![\w:/])"), _phone),
]

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_PLAIN = (int, float, bool, type(None))
# Set on a record once RedactingFilter has redacted it: the formatter then has nothing left to do.
_REDACTED = "_acme_redacted"
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def _boundary_back(text: str, end: int) -> int:
    """Where to cut at or before ``end`` so no word is cut in half (a half email or token would no longer
    look like one and pass redaction whole): the last whitespace within 256 characters, else ``end``."""
    for i in range(end, max(end - 256, 0), -1):
        if text[i - 1].isspace():
            return i
    return end


def _boundary_forward(text: str, start: int) -> int:
    for i in range(start, min(start + 256, len(text))):
        if text[i].isspace():
            return i
    return start


def cut(text: str, limit: int = MESSAGE_LIMIT, *, tail: float = 0.0) -> str:
    """``text`` within about ``limit`` characters: the head (and the last ``tail`` share) kept, cut between
    words, the number of characters removed said in the middle."""
    if len(text) <= limit:
        return text
    keep_tail = int(limit * tail)
    head_end = _boundary_back(text, limit - keep_tail)
    tail_start = _boundary_forward(text, len(text) - keep_tail) if keep_tail else len(text)
    return text[:head_end] + CUT.format(n=tail_start - head_end) + text[tail_start:]


def _decoded(text: str) -> str:
    """Percent-escapes decoded (twice-encoded ones too): ``jane%40example.com`` is an email to redaction."""
    for _ in range(3):
        if not _PERCENT_ESCAPE.search(text):
            break
        text = unquote(text)
    return text


def redact(text: str, limit: int = MESSAGE_LIMIT, *, tail: float = 0.0) -> str:
    """``text`` cut to ``limit`` characters, percent-decoded, every secret and PII pattern masked."""
    text = _decoded(cut(text, limit, tail=tail))
    for _kind, pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_traceback(text: str) -> str:
    return redact(text, TRACEBACK_LIMIT, tail=0.75)


def _request_summary(request: HttpRequest) -> str:
    """A request as a log shows it: method and path, never the query string."""
    return f"<{type(request).__name__}: {request.method} {request.path!r}>"


_REQUEST_LINE_QUERY = re.compile(r"\?[^\s]{0,8192}")


def _without_query(request_line: str) -> str:
    """``GET /path?email=... HTTP/1.1`` -> ``GET /path HTTP/1.1`` (the dev server's access log)."""
    return _REQUEST_LINE_QUERY.sub("", request_line, count=1)


def redact_value(value: Any) -> Any:
    """Redact strings inside dicts/lists/tuples; anything else that is not a plain number becomes its
    redacted ``str()`` (so an object's repr cannot smuggle a query string out); a request is its method and
    path."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [redact_value(v) for v in value]
    if isinstance(value, HttpRequest):
        return redact(_request_summary(value))
    return redact(str(value))


class RedactingFilter(logging.Filter):
    """Redacts the record itself. It runs as a *handler's* filter, which ``Handler.handle`` calls before it
    takes the handler's lock: a costly message delays only the request that logs it, never every other
    thread waiting to write a line. The formatter, which runs under that lock, then only serializes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _REDACTED, False):
            return True
        if record.name == "django.server" and isinstance(record.args, tuple) and record.args:
            first = record.args[0]
            if isinstance(first, str):
                record.args = (_without_query(first), *record.args[1:])
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_traceback(record.exc_text)
        # The traceback is kept only as redacted text: a handler that formatted exc_info itself would
        # print the raw exception message.
        record.exc_info = None
        if record.stack_info:
            record.stack_info = redact_traceback(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                setattr(record, key, redact_value(value))
        setattr(record, _REDACTED, True)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, extra fields, exc (the traceback), all redacted.

    A record RedactingFilter has seen is already redacted and is only serialized here (under the handler's
    lock, see RedactingFilter); any other record is redacted here."""

    def format(self, record: logging.LogRecord) -> str:
        clean = getattr(record, _REDACTED, False)

        def text(value: str, traceback: bool = False) -> str:
            if clean:
                return value
            return redact_traceback(value) if traceback else redact(value)

        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": text(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value if clean else redact_value(value)
        exc_text = record.exc_text
        if not exc_text and record.exc_info:
            exc_text = self.formatException(record.exc_info)
        if exc_text:
            payload["exc"] = text(exc_text, traceback=True)
        if record.stack_info:
            payload["stack"] = text(record.stack_info, traceback=True)
        return json.dumps(payload, default=str)


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, always on (DEBUG too), masking more: auth headers, cookies, sessions, URLs with
    credentials; every POST value; and redacting frame variables."""

    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|AUTH|COOKIE|SESSION|CSRF|CREDENTIAL|DSN"
        "|DATABASE_URL|REDIS_URL|EMAIL_HOST_USER",
        flags=re.IGNORECASE,
    )

    def is_active(self, request: Any) -> bool:
        return True

    def get_safe_request_meta(self, request: Any) -> dict[str, Any]:
        meta = super().get_safe_request_meta(request)
        return {k: redact_value(v) if isinstance(v, str) else v for k, v in meta.items()}

    def get_post_parameters(self, request: Any) -> Any:
        if request is None:
            return {}
        masked = request.POST.copy()
        for name in masked:
            masked[name] = self.cleansed_substitute
        return masked

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> Any:
        cleansed = super().get_traceback_frame_variables(request, tb_frame)
        return [(name, _redacted_repr(value)) for name, value in cleansed]


def _redacted_repr(value: Any) -> Any:
    if value == SafeExceptionReporterFilter.cleansed_substitute:
        return value
    try:
        text = repr(value)
    except Exception:
        return "<unrepresentable>"
    return _Raw(redact(text))


class _Raw(str):
    """A string the reporter's pprint shows as is (not quoted again)."""

    def __repr__(self) -> str:
        return str(self)


class RedactingExceptionReporter(ExceptionReporter):
    """Redacts what the filter does not reach: the exception message, the URL and query string, GET
    values, chained exceptions shown per frame."""

    def get_traceback_data(self) -> dict[str, Any]:
        data = super().get_traceback_data()
        for key in ("exception_value", "exception_notes", "request_insecure_uri", "user_str"):
            if isinstance(data.get(key), str):
                data[key] = redact(data[key])
        for key in ("request_GET_items", "request_COOKIES_items"):
            if key in data:
                data[key] = [(k, redact_value(v)) for k, v in list(data[key])]
        for frame in data.get("frames", []):
            if frame.get("exc_cause") is not None:
                frame["exc_cause"] = redact(str(frame["exc_cause"]))
            if "vars" in frame:
                frame["vars"] = [(k, redact(v) if isinstance(v, str) else v) for k, v in frame["vars"]]
        if "lastframe" in data and data.get("frames"):
            data["lastframe"] = data["frames"][-1]
        return data
