"""Structured JSON logs, and redaction that keeps secrets and PII out of every log line and error report.

``redact(text)`` replaces bearer/basic credentials, our API tokens (``agt_…``, ``usr_…``), well-known
secret formats (Slack ``xox…`` tokens, JWTs, credentials in URLs), ``key=value`` / ``"key": "value"``
secrets, emails, card numbers, SSNs and phone numbers with ``[REDACTED:<kind>]``.

Three layers use it, so no single miss leaks:

* ``RedactingFilter`` (on the console handler) rewrites the record itself: message, args, extra fields and
  the formatted traceback; it runs on the handler, so third-party loggers are covered too.
* ``JsonFormatter`` redacts every string it writes once more, including extras it has to ``str()``
  (a request object's repr carries its query string).
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

from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

MASK = "[REDACTED:{kind}]"

# Words that name a secret (not secrets).
_SECRET_KEY_WORDS = "|".join([
    "password", "passwd", "pwd", "secret", "token", r"api[_-]?key", "apikey", "authorization", "cookie",
    r"session[_-]?id", r"csrf[\w-]*", "signature", r"private[_-]?key", "credentials?", "dsn",
])
_SECRET_KV = re.compile(
    rf"""(?ix)
    (?P<key>[\w.-]*(?:{_SECRET_KEY_WORDS})[\w.-]*)
    (?P<sep>["']?\s*[:=]\s*)
    (?:(?P<q>["'])(?P<qval>(?:\\.|(?!(?P=q)).)*)(?P=q)|(?P<val>[^\s"',;}}&\\]+))
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
    ("token", re.compile(r"(?i)\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), MASK.format(kind="token")),
    ("token", re.compile(r"\b(?:agt|usr)_[A-Za-z0-9_-]{16,}"), MASK.format(kind="token")),
    ("token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), MASK.format(kind="token")),
    ("token", re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), MASK.format(kind="token")),
    ("secret", re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@\"'\\]+:[^/\s@\"'\\]+@"),
     r"\1" + MASK.format(kind="credentials") + "@"),
    ("secret", _SECRET_KV, _kv),
    ("email", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), MASK.format(kind="email")),
    ("card", re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])"), MASK.format(kind="card")),
    ("ssn", re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])"), MASK.format(kind="ssn")),
    ("phone", re.compile(r"(?<![\w.:/=-])\+?\(?\d[\d\s().-]{6,}\d(?![\w:/])"), _phone),
]

_STANDARD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_PLAIN = (int, float, bool, type(None))


def redact(text: str) -> str:
    for _kind, pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any) -> Any:
    """Redact strings inside dicts/lists/tuples; anything else that is not a plain number becomes its
    redacted ``str()`` (so an object's repr cannot smuggle a query string out)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [redact_value(v) for v in value]
    return redact(str(value))


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not hide the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        # The traceback is kept only as redacted text: a handler that formatted exc_info itself would
        # print the raw exception message.
        record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                setattr(record, key, redact_value(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, extra fields, exc (the traceback), all redacted."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = redact_value(value)
        exc_text = record.exc_text
        if not exc_text and record.exc_info:
            exc_text = self.formatException(record.exc_info)
        if exc_text:
            payload["exc"] = redact(exc_text)
        if record.stack_info:
            payload["stack"] = redact(record.stack_info)
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
