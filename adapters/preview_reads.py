"""A budget for the live reads a submission's preview makes (a ticket's diff, a workflow's customer).

An agent waits for its preview, so the read happens at once, with the gateway's token for the outside
system; without a budget, 40 submissions in a second are 40 reads with a token other tenants may share, and
a submission that fails afterwards (a policy refusal, a bad edit) costs the read all the same. Two token
buckets, both taken *before* the read, whatever becomes of the submission:

* per agent: one agent cannot spend what the others need;
* per connection: ``adapters.connections``' key (``crm`` for the environment's shared CRM, ``crm:<tenant>``
  for a tenant's own), the budget of the token that makes the reads.

Over either: ``RateLimited`` (429 ``rate_limited`` with ``Retry-After``), nothing read. The buckets are
``adapters.ratelimit``'s (Redis, shared by every process, the Redis clock): the same atomic script the
commit's outbound limits use, so no second rate-limit library and no second Redis client to configure.

Settings: ``ACME_PREVIEW_READ_LIMITS = {"agent": {"rate": 1.0, "burst": 20}, "connection": {...}}`` (tokens
per second, bucket size), merged over ``DEFAULT_LIMITS``.

"Rate limit" names four different things in this codebase; this module is the fourth:

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

from typing import TYPE_CHECKING, Any

from django.conf import settings

from adapters import connections, ratelimit
from adapters.errors import RateLimited
from adapters.http import retry_after_seconds

if TYPE_CHECKING:
    from adapters.types import Context

DEFAULT_LIMITS: dict[str, dict[str, float]] = {
    "agent": {"rate": 1.0, "burst": 20},
    "connection": {"rate": 5.0, "burst": 60},
}
POLICY = "preview_reads"
EXCEEDED = (
    "Too many live reads for previews {scope} ({burst} at once, then {rate:g} a second); "
    "try again in {retry_after} seconds."
)


def limits() -> dict[str, dict[str, float]]:
    configured: dict[str, Any] = getattr(settings, "ACME_PREVIEW_READ_LIMITS", {}) or {}
    return {scope: {**default, **configured.get(scope, {})} for scope, default in DEFAULT_LIMITS.items()}


def take(ctx: Context, system: str) -> None:
    """Take one read from the agent's and the connection's budgets, or raise ``RateLimited``. Call inside
    ``connections.using(tenant)`` (the registry's preview does), so the connection is the tenant's."""
    connection = connections.current(system).key if system in connections.SYSTEMS else system
    buckets = {
        "agent": (f"preview-read:agent:{ctx.tenant}:{ctx.agent}", "for this agent"),
        "connection": (f"preview-read:connection:{connection}", f"on the {system} connection"),
    }
    for scope, conf in limits().items():
        bucket, said = buckets[scope]
        wait = ratelimit.acquire(bucket, float(conf["rate"]), int(conf["burst"]))
        if wait > 0:
            retry_after = retry_after_seconds(wait)
            raise RateLimited(
                policy=POLICY,
                check=f"{POLICY}.{scope}",
                retry_after=retry_after,
                detail=EXCEEDED.format(
                    scope=said, burst=int(conf["burst"]), rate=conf["rate"], retry_after=retry_after
                ),
            )
