"""``warehouse_query``: one audited query of one tenant's warehouse rows. Also the registry's tool.

Order of things: parse the plan -> policy (the agent's allowed tools) and rate limit -> compile against the
schema -> Redis cache (per tenant, short TTL) -> execute -> shape the page -> audit. The audit event
records who asked, the plan, the row count, the duration and whether it came from the cache; never the
rows themselves. Refused plans are audited too, with the refusal and a hash of what was sent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from typing import Any

from django.conf import settings
from django.db import DatabaseError

from adapters import policy, ratelimit, registry
from adapters.errors import Deferred, PolicyDenied
from adapters.redis import get_redis, key
from adapters.registry import Context
from adapters.warehouse import cursor as cursors
from adapters.warehouse import executor, schema
from adapters.warehouse.compiler import Compiled, compile_plan, render
from adapters.warehouse.errors import QueryError
from adapters.warehouse.plan import Plan, parse
from adapters.warehouse.router import warehouse_alias
from adapters.warehouse.values import to_json
from audit import services as audit
from audit.services import Actor, Where

logger = logging.getLogger(__name__)

TOOL = "warehouse.query"
ACTION = "warehouse.query"


def max_limit() -> int:
    return int(getattr(settings, "ACME_WAREHOUSE_MAX_LIMIT", 1000))


def _cache_key(tenant: str, plan: Plan, signature: str) -> str:
    material = json.dumps(
        [plan.canonical(), signature], sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    return key("warehouse", "q", tenant, hashlib.sha256(material.encode()).hexdigest())


def _cache_get(name: str) -> dict[str, Any] | None:
    if int(getattr(settings, "ACME_WAREHOUSE_CACHE_TTL", 30)) <= 0:
        return None
    try:
        raw = get_redis().get(name)
    except Exception:  # a cache: Redis being down costs speed, not answers
        logger.warning("warehouse cache unavailable", exc_info=True)
        return None
    return json.loads(raw) if raw else None


def _cache_set(name: str, body: dict[str, Any]) -> None:
    ttl = int(getattr(settings, "ACME_WAREHOUSE_CACHE_TTL", 30))
    if ttl <= 0:
        return
    try:
        get_redis().set(name, json.dumps(body, separators=(",", ":")), ex=ttl)
    except Exception:
        logger.warning("warehouse cache unavailable", exc_info=True)


def _page(compiled: Compiled, rows: list[tuple[Any, ...]]) -> dict[str, Any]:
    width = len(compiled.columns)
    truncated = len(rows) > compiled.limit
    rows = rows[: compiled.limit]
    next_cursor = None
    if truncated and compiled.keys:
        next_cursor = cursors.encode(list(rows[-1][width:]), fingerprint=compiled.fingerprint)
    return {
        "columns": compiled.columns,
        "rows": [[to_json(v, t) for v, t in zip(row[:width], compiled.types, strict=True)] for row in rows],
        "next_cursor": next_cursor,
        "truncated": truncated,
    }


def _compile(plan: Plan, tenant: str, *, refresh: bool = False) -> tuple[Compiled, str]:
    current = schema.current(refresh=refresh)
    return compile_plan(plan, current, tenant=tenant, max_limit=max_limit()), current.signature


def run(plan: Plan, *, tenant: str) -> tuple[dict[str, Any], bool]:
    """The page for ``plan`` in ``tenant``'s rows, and whether it came from the cache."""
    if not tenant:
        raise ValueError("a warehouse query needs a tenant")
    compiled, signature = _compile(plan, tenant)
    cache_name = _cache_key(tenant, plan, signature)
    cached = _cache_get(cache_name)
    if cached is not None:
        return cached, True
    alias = warehouse_alias()
    from django.db import connections

    query, params = render(compiled.tokens, connections[alias])
    try:
        rows = executor.run(query, params, tenant=tenant, alias=alias)
    except DatabaseError as exc:
        if not executor.is_missing_object(exc):
            raise
        # The warehouse changed under the cached schema: read it again. A plan naming what is gone is now
        # refused by the compiler (InvalidQuery, listing what is left); anything else was a real error.
        schema.invalidate()
        _compile(plan, tenant, refresh=True)
        raise
    body = _page(compiled, rows)
    _cache_set(cache_name, body)
    return body, False


def warehouse_query(*, raw_plan: Any, ctx: Context, actor: Actor, where: Where) -> dict[str, Any]:
    """Run one plan for ``ctx.tenant`` and audit it. Raises QueryError subclasses (refusals), PolicyDenied
    and Deferred (rate limits)."""
    started = time.monotonic()
    plan: Plan | None = None
    try:
        plan = parse(raw_plan)
        args = plan.canonical()
        policy.check(registry.get(TOOL), args, ctx)
        ratelimit.enforce(TOOL, args, tenant=ctx.tenant)
        body, cached = run(plan, tenant=ctx.tenant)
    except QueryError as exc:
        _audit(
            ctx,
            actor,
            where,
            plan,
            raw_plan,
            started,
            result="refused",
            extra={"error": exc.code, "detail": exc.detail[:300]},
        )
        raise
    except PolicyDenied as exc:
        _audit(ctx, actor, where, plan, raw_plan, started, result="denied", extra={"policy": exc.policy})
        raise
    except Deferred as exc:
        _audit(ctx, actor, where, plan, raw_plan, started, result="deferred", extra={"reason": exc.reason})
        raise
    _audit(
        ctx,
        actor,
        where,
        plan,
        raw_plan,
        started,
        result="ok",
        extra={"rows": len(body["rows"]), "truncated": body["truncated"], "cached": cached},
    )
    return body


def _audit(
    ctx: Context,
    actor: Actor,
    where: Where,
    plan: Plan | None,
    raw: Any,
    started: float,
    *,
    result: str,
    extra: dict[str, Any],
) -> None:
    data: dict[str, Any] = {"duration_ms": round((time.monotonic() - started) * 1000, 1), **extra}
    if plan is not None:
        described = plan.canonical()
        described["cursor"] = plan.cursor is not None  # the cursor carries row values: keep them out
        data["plan"] = described
    else:
        # Not a valid plan: keep a fingerprint of what was sent, not the (arbitrary) content.
        text = json.dumps(raw, sort_keys=True, default=str, ensure_ascii=True)
        data["plan_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    audit.record(
        tenant=ctx.tenant,
        actor=actor,
        action=ACTION,
        where=where,
        result=result,
        subject_type="dataset",
        subject_id=_safe(plan.dataset if plan is not None else "")[:64],
        data=_safe(data),
    )


def _safe(value: Any) -> Any:
    """Agent-sent strings as text any database stores: NUL and lone surrogates become escapes."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, list):
        return [_safe(v) for v in value]
    if isinstance(value, dict):
        return {_safe(k): _safe(v) for k, v in value.items()}
    return value


def run_tool(args: Plan, ctx: Context) -> dict[str, Any]:
    """The registry's ``read`` entry point (``registry.read("warehouse.query", plan, ctx)``)."""
    actor = Actor(type="agent", label=ctx.agent) if ctx.agent else audit.SYSTEM
    return warehouse_query(
        raw_plan=args.model_dump(mode="json", by_alias=True), ctx=ctx, actor=actor, where=Where(channel="api")
    )
