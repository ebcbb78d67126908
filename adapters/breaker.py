"""A circuit breaker per downstream ("crm", "slack") whose state lives in Redis.

Every web and worker process shares one breaker per downstream, so the state machine runs inside Redis
as Lua scripts (atomic: no read-modify-write races between processes) and reads the clock with Redis'
``TIME`` (one clock for all machines, no skew between workers).

    closed --(ACME_BREAKER_FAILURES consecutive failures)--> open
    open --(ACME_BREAKER_COOLDOWN elapsed)--> half_open: exactly ONE caller wins the probe token
        (SET NX PX, so a probe that dies without a verdict frees the slot when the token expires)
    half_open --probe succeeds--> closed        half_open --probe fails--> open (new cooldown)

A failure is a 5xx, a timeout or a connection error; a 4xx proves the downstream is up and counts as a
success. pybreaker's Redis storage was not used: it cannot hand a single probe to one process.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings

from adapters.errors import Deferred
from adapters.redis import get_redis, key

logger = logging.getLogger(__name__)

State = Literal["closed", "open", "half_open"]
TRIPPED_MESSAGE = "circuit breaker tripped: %s"

# Metrics hook: called with the downstream name each time a breaker opens (or re-opens after a failed
# probe). The count is also kept in Redis under ``breaker:trips:<name>`` for any process to read.
on_trip: list[Callable[[str], None]] = []

# Lua returns [verdict, epoch_ms]: 0 allowed (closed), 1 allowed as the half-open probe, 2 denied until ms.
_ACQUIRE = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'open' then return {0, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if now < open_until then return {2, open_until} end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1, 0} end
local ttl = redis.call('PTTL', KEYS[2])
if ttl < 0 then ttl = 0 end
return {2, now + ttl}
"""

# Returns 1 when this call opened the breaker, 2 when it closed it, 0 otherwise.
_RECORD = """
local token = ARGV[2]
local is_probe = token ~= '' and redis.call('GET', KEYS[2]) == token
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == 'ok' then
  if state == 'open' then
    if not is_probe then return 0 end
    redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'open_until', 0)
    redis.call('DEL', KEYS[2])
    return 2
  end
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0)
  return 0
end
if state == 'open' then
  if not is_probe then return 0 end
  redis.call('HSET', KEYS[1], 'open_until', now + tonumber(ARGV[4]))
  redis.call('DEL', KEYS[2])
  redis.call('INCR', KEYS[3])
  return 1
end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'failures', 0, 'open_until', now + tonumber(ARGV[4]))
  redis.call('INCR', KEYS[3])
  return 1
end
return 0
"""

# Frees the probe token only if we still own it (compare-and-delete).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_STATE = """
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'open' then return 'closed' end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now < tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0') then return 'open' end
return 'half_open'
"""


@dataclass(frozen=True)
class Permit:
    """Leave to send one request. ``probe_token`` is set when this request is the half-open probe."""

    downstream: str
    probe_token: str | None = None

    @property
    def is_probe(self) -> bool:
        return self.probe_token is not None


def _keys(downstream: str) -> list[str]:
    return [
        key("breaker", downstream),
        key("breaker", downstream, "probe"),
        key("breaker", "trips", downstream),
    ]


def _run(source: str, keys: list[str], args: list[str | int]) -> Any:
    client = get_redis()
    return client.register_script(source)(keys=keys, args=args, client=client)


def _probe_ttl_ms() -> int:
    # Long enough for the probe's own request to time out; if its process dies, the next caller after
    # this TTL becomes the probe instead of the breaker staying half-open for ever.
    return int((float(settings.ACME_HTTP_TIMEOUT) + 5.0) * 1000)


def acquire(downstream: str) -> Permit:
    """Ask leave to send a request. Raises ``Deferred("breaker_open", retry_at)`` while open."""
    token = uuid.uuid4().hex
    verdict, until_ms = (int(v) for v in _run(_ACQUIRE, _keys(downstream)[:2], [token, _probe_ttl_ms()]))
    if verdict == 0:
        return Permit(downstream)
    if verdict == 1:
        logger.info("circuit breaker half-open, probing: %s", downstream)
        return Permit(downstream, probe_token=token)
    retry_at = until_ms / 1000.0
    raise Deferred(
        reason="breaker_open",
        retry_at=retry_at,
        detail=f"The {downstream} circuit breaker is open; nothing was sent. It half-opens at {retry_at:.0f}.",
    )


def _record(permit: Permit, outcome: str) -> None:
    result = _run(
        _RECORD,
        _keys(permit.downstream),
        [
            outcome,
            permit.probe_token or "",
            int(settings.ACME_BREAKER_FAILURES),
            int(float(settings.ACME_BREAKER_COOLDOWN) * 1000),
        ],
    )
    if result == 1:
        logger.warning(TRIPPED_MESSAGE, permit.downstream)
        for callback in list(on_trip):
            try:
                callback(permit.downstream)
            except Exception:  # a broken metrics hook must not break the call path
                logger.exception("breaker on_trip hook failed")
    elif result == 2:
        logger.info("circuit breaker closed: %s", permit.downstream)


def record_success(permit: Permit) -> None:
    _record(permit, "ok")


def record_failure(permit: Permit) -> None:
    _record(permit, "fail")


def release(permit: Permit) -> None:
    """Give the probe slot back without a verdict (the request never reached the downstream)."""
    if permit.probe_token:
        _run(_RELEASE, [_keys(permit.downstream)[1]], [permit.probe_token])


def state(downstream: str) -> State:
    value = _run(_STATE, _keys(downstream)[:1], [])
    text = value.decode() if isinstance(value, bytes) else str(value)
    return "open" if text == "open" else "half_open" if text == "half_open" else "closed"


def trips(downstream: str) -> int:
    return int(get_redis().get(_keys(downstream)[2]) or 0)


def reset(downstream: str) -> None:
    """Close the breaker by hand (operators, tests)."""
    get_redis().delete(*_keys(downstream)[:2])
