"""Token buckets in Redis, shared by every process: per tool, per tenant, per any arg (e.g. channel).

Configuration (``settings.ACME_RATE_LIMITS``, merged over ``DEFAULT_LIMITS`` tool by tool)::

    ACME_RATE_LIMITS = {
        "crm.create_ticket": [{"per": ["tenant"], "rate": 2.0, "burst": 10}],  # 2/s per tenant, bursts of 10
        "slack.post_message": {"per": ["channel"], "rate": 1.0, "burst": 1},   # the default
    }

``per`` names the dimensions of one bucket: ``"tenant"`` or an arg of the tool; ``[]`` is one bucket for
the whole tool. ``rate`` is tokens per second, ``burst`` the bucket's size.

"Rate limit" names four different things in this codebase; this module is the first:

* ``adapters.ratelimit`` -- outbound: token buckets on the calls a *commit* (or a read) makes to an outside
  system (per tool, tenant, channel); over it the call is ``Deferred`` and rescheduled, nothing refused;
* ``adapters.policy`` ``max_per_hour`` -- a tenant's *policy*: proposals per agent per tool in a sliding
  hour; over it ``RateLimited`` (429 ``rate_limited``, check ``max_per_hour``);
* ``approvals.services.intake`` -- the *submission budget*: submissions per agent, whatever the tool;
  over it 429 ``rate_limited`` (policy ``submission_budget``); and backpressure (429 ``backpressure``);
* ``adapters.preview_reads`` -- the *preview-read budget*: live reads a preview makes, per agent and per
  connection; over it 429 ``rate_limited`` (policy ``preview_reads``).

(The reviewers' login throttle, ``approvals.login_throttle``, is a fifth, and says "throttle".)
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from adapters.errors import Deferred
from adapters.redis import get_redis, key
from audit import metrics

# Slack allows about one message per second per channel (docs.slack.dev "Rate limits", chat.postMessage).
DEFAULT_LIMITS: dict[str, list[dict[str, Any]]] = {
    "slack.post_message": [{"per": ["channel"], "rate": 1.0, "burst": 1}],
}

# Refill, then take one token if there is one; otherwise report how long until there is. Redis' clock.
_ACQUIRE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(saved[1]) or burst
local ts = tonumber(saved[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


def acquire(bucket: str, rate: float, burst: int) -> float:
    """Take one token from ``bucket``. Returns 0.0 if allowed, else the seconds until a token is free
    (nothing is taken then)."""
    if rate <= 0 or burst < 1:
        raise ValueError("rate must be > 0 and burst >= 1")
    client = get_redis()
    script = client.register_script(_ACQUIRE)
    wait = script(keys=[key("ratelimit", bucket)], args=[rate, burst], client=client)
    return float(wait.decode() if isinstance(wait, bytes) else wait)


def rules(tool: str) -> list[dict[str, Any]]:
    configured = {**DEFAULT_LIMITS, **getattr(settings, "ACME_RATE_LIMITS", {})}.get(tool, [])
    return [configured] if isinstance(configured, dict) else list(configured)


def enforce(tool: str, args: dict[str, Any], *, tenant: str = "", connection: str = "") -> None:
    """Take a token from every bucket that applies to this call, or raise ``Deferred("rate_limited")``.
    ``connection``: a tenant's own connection (``adapters.connections``), whose buckets are its own."""
    for rule in rules(tool):
        per = list(rule.get("per", []))
        values = [tenant if dim == "tenant" else str(args.get(dim, "")) for dim in per]
        bucket = ":".join([tool, *(f"{d}={v}" for d, v in zip(per, values, strict=True))])
        if connection:
            bucket += f"@{connection}"
        wait = acquire(bucket, float(rule["rate"]), int(rule.get("burst", 1)))
        if wait > 0:
            metrics.observe_ratelimit_wait(tool, wait)
            scope = ", ".join(f"{d} {v}" for d, v in zip(per, values, strict=True)) or "this tool"
            raise Deferred(
                reason="rate_limited",
                retry_at=time.time() + wait,
                detail=f"Rate limit of {rule['rate']}/s for {tool} ({scope}); retry in {wait:.2f} s.",
            )
