"""``Retry-After``, both ways: the one a downstream sends us (``parse_retry_after``, RFC 9110 section
10.2.3, capped at ``MAX_RETRY_AFTER``) and the one the gateway sends (``retry_after_seconds``, whole seconds
rounded up). ``adapters.http`` re-exports every name.
"""

from __future__ import annotations

import email.utils
import math
import re
import time

# The longest Retry-After we believe. A commit waits as long as the server asks, but a value past this is a
# misconfigured server (or a hostile one): the time it names must still be a datetime we can store, show
# and schedule, and a day outlasts any maintenance window a real CRM or Slack announces.
MAX_RETRY_AFTER = 24 * 3600.0


# delta-seconds is digits only (RFC 9110); a fraction is tolerated. ``float()`` alone would also take
# "-5", "1e999", "inf" and "nan".
_DELTA_SECONDS = re.compile(r"\d+(\.\d+)?")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date (RFC 9110 section 10.2.3), at most
    ``MAX_RETRY_AFTER``; None when absent or not one of those."""
    if not value:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        seconds = float(value)  # inf for hundreds of digits: capped below
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = max(0.0, when.timestamp() - (time.time() if now is None else now))
    return min(seconds, MAX_RETRY_AFTER)


# Seconds to suggest when a downstream failed without saying when it will be back.
DEFAULT_RETRY_AFTER = 5


def retry_after_seconds(seconds: float) -> int:
    """A wait as the ``Retry-After`` the gateway sends (the API's 429 and 503, the MCP door, a budget's
    message): whole seconds (RFC 9110) rounded *up*, so that a client retrying after it is never too early;
    at least 1 (0 invites a client to hammer us); at most ``MAX_RETRY_AFTER``, the longest wait believed
    from a downstream; and never ``int()`` of an infinity or a NaN, which would turn a polite 503 into a 500.
    The one rounding: every ``Retry-After`` and ``retry_after`` the gateway answers goes through it."""
    if math.isnan(seconds):
        return DEFAULT_RETRY_AFTER
    return math.ceil(min(max(1.0, seconds), MAX_RETRY_AFTER))
