"""Policy hooks: the rules an agent's call must pass before it becomes a proposal (or a read).

The engine works on plain data. The caller (``approvals``) loads the rules it stores and hands them over in
``Context.policy`` as ``PolicyRule`` values, with ``Context.recent_count`` for the rate rule; nothing here
knows where rules live or what a proposal is.

``check(tool, args, ctx)`` runs, in this order, and the first failing rule answers:

1. allowed tools -- the agent's own list (``Context.allowed_tools``);
2. allowed fields -- the fields the agent may set on this tool;
3. max items -- items per list argument (e.g. tags) in one call;
4. PII -- payment card numbers refused in free text;
5. max per hour -- proposals per tool per agent in a sliding hour;

then returns the risk: the tool's, raised (never lowered) by the rule's ``risk_override``.

Which rule applies: exactly one, the most specific enabled rule for (agent, tool) among the rules for every
risk (``PolicyRule.risk`` None) -- agent + tool, then agent + ``*``, then tenant-wide + tool, then
tenant-wide + ``*``; ``DEFAULT_RULE`` when none matches. Rules do not merge: an agent's own rule replaces
the tenant-wide one entirely, so an admin can both tighten and relax a limit for one agent, and what
applies can be read off a single row.

Who approves and how many (``approval_rule``) is asked once the risk is known: a rule for that risk
outranks every rule for every risk, then the same precedence. A rule for one risk takes no part in the
checks above (the risk is not known until they, and the preview, have run).

Content rules deny with ``PolicyDenied`` (403 ``policy_denied``): resending the same call will never pass.
The hourly limit denies with ``RateLimited`` (429 ``rate_limited`` with ``Retry-After``): the same call will
pass later, and the answer says when.

"Rate limit" names four different things in this codebase; this module is the second:

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

from collections.abc import Callable
from functools import cache
from typing import Any

from adapters.cards import contains_card_number, strings
from adapters.cards import luhn_valid as luhn_valid  # re-exported: policy.luhn_valid
from adapters.catalog import canonical
from adapters.errors import PolicyDenied, RateLimited
from adapters.types import Context, PolicyRule, Risk, Tool

HOUR = 3600
RISK_ORDER: dict[str, int] = {"low": 0, "medium": 1, "high": 2}

# Which check denied, as ``PolicyDenied.check``: stable codes an agent can branch on.
ALLOWED_TOOLS = "allowed_tools"
ALLOWED_FIELDS = "allowed_fields"
MAX_ITEMS = "max_items"
CARD_NUMBER = "pii.card_number"
MAX_PER_HOUR = "max_per_hour"

# Denial sentences (tests check them): what was refused and what the agent can do about it.
TOOL_NOT_ALLOWED = "This agent may not use {tool}; it may use: {allowed}."
FIELD_NOT_ALLOWED = (
    "This agent may not set {field!r} on {tool}; it may set: {allowed}. Leave {field!r} out and submit again."
)
TOO_MANY_ITEMS = "{field!r} has {count} items; at most {limit} are allowed in one call. Send at most {limit}."
CARD_REFUSED = (
    "{field!r} contains what looks like a payment card number; card numbers may not be sent. "
    "Remove it (refer to the card by its last four digits if needed) and submit again."
)
TOOL_PAUSED = (
    "{tool} is paused for this agent (0 proposals per hour allowed); ask an admin to raise the limit."
)
RATE_EXCEEDED = "At most {limit} {tool} proposals per hour are allowed for this agent; try again in {retry_after} seconds."


# No stored rule: no field, item or rate limit, but card numbers are still refused. A tenant that really
# must send card-like numbers turns it off with an explicit rule.
DEFAULT_RULE = PolicyRule(name="default")


def effective_rule(tool_name: str, ctx: Context) -> PolicyRule:
    """The one rule that checks this agent's call of this tool (see the module docstring for precedence)."""
    return _most_specific(tool_name, ctx, risk=None)


def approval_rule(tool_name: str, ctx: Context, risk: Risk) -> PolicyRule:
    """The one rule that says how many approvals a proposal of this tool at ``risk`` needs, and who gives
    them: a rule for that risk, else the rule for every risk (``effective_rule``), else ``DEFAULT_RULE``
    (one approval, any reviewer). Within each, the most specific (see the module docstring)."""
    return _most_specific(tool_name, ctx, risk=risk)


def _most_specific(tool_name: str, ctx: Context, *, risk: Risk | None) -> PolicyRule:
    # A rule may name its tool either way (``crm_create_ticket`` is ``crm.create_ticket``).
    tool_name = canonical(tool_name)
    candidates = [
        rule
        for rule in ctx.policy
        if canonical(rule.tool) in (tool_name, "*")
        and rule.agent in ("", ctx.agent)
        and rule.risk in (None, risk)
    ]
    if not candidates:
        return DEFAULT_RULE
    # Ties (the store should prevent them) go to the first name, so the answer never depends on load order.
    return min(
        candidates,
        key=lambda rule: (rule.risk is None, tuple(not s for s in rule.specificity), rule.name),
    )


def check(tool: Tool, args: dict[str, Any], ctx: Context) -> Risk:
    if "*" not in ctx.allowed_tools and tool.name not in {canonical(name) for name in ctx.allowed_tools}:
        raise PolicyDenied(
            policy=ALLOWED_TOOLS,
            check=ALLOWED_TOOLS,
            detail=TOOL_NOT_ALLOWED.format(
                tool=tool.name, allowed=", ".join(ctx.allowed_tools) or "no tools"
            ),
        )
    rule = effective_rule(tool.name, ctx)
    _check_fields(rule, tool, args)
    _check_items(rule, args)
    _check_cards(rule, tool, args)
    _check_rate(rule, tool, ctx)
    risk: Risk = tool.risk
    if rule.risk_override is not None and RISK_ORDER[rule.risk_override] > RISK_ORDER[risk]:
        risk = rule.risk_override
    return risk


def rate_limit_applies(tool_name: str, ctx: Context) -> bool:
    """Whether a submission of this tool is counted against an hourly limit (see ``check_rate``)."""
    return ctx.recent_count is not None and effective_rule(tool_name, ctx).max_per_hour is not None


def check_rate(tool: Tool, ctx: Context) -> None:
    """The hourly limit alone. ``check`` counts before the preview is rendered; a caller that stores the
    proposal counts again with this, under a lock of its own, so that concurrent submissions cannot all
    pass one count (the engine itself holds no lock and knows no database)."""
    _check_rate(effective_rule(tool.name, ctx), tool, ctx)


# --- allowed fields ------------------------------------------------------------------------------------


def _check_fields(rule: PolicyRule, tool: Tool, args: dict[str, Any]) -> None:
    """A field outside ``allowed_fields`` may not be set. Required fields are always allowed (without them
    the tool cannot be called at all: to forbid the tool, leave it out of the agent's tools), and a field
    left at its default was not set by the agent (``priority`` defaults to ``normal``)."""
    if not rule.allowed_fields:
        return
    fields = tool.args_model.model_fields
    required = [name for name, info in fields.items() if info.is_required()]
    for name, value in args.items():
        info = fields.get(name)
        if name in rule.allowed_fields or name in required:
            continue
        if (
            info is not None
            and not info.is_required()
            and value == info.get_default(call_default_factory=True)
        ):
            continue
        allowed = [n for n in fields if n in required or n in rule.allowed_fields]
        raise PolicyDenied(
            policy=rule.name,
            check=ALLOWED_FIELDS,
            detail=FIELD_NOT_ALLOWED.format(field=name, tool=tool.name, allowed=", ".join(allowed)),
        )


# --- max items -----------------------------------------------------------------------------------------


def _check_items(rule: PolicyRule, args: dict[str, Any]) -> None:
    if rule.max_items is None:
        return
    for name, value in args.items():
        if isinstance(value, list) and len(value) > rule.max_items:
            raise PolicyDenied(
                policy=rule.name,
                check=MAX_ITEMS,
                detail=TOO_MANY_ITEMS.format(field=name, count=len(value), limit=rule.max_items),
            )


# --- PII: payment card numbers -------------------------------------------------------------------------

# Card-number detection itself lives in adapters.cards (hostile text: NFKC, invisibles, separators).


@cache
def _typed_fields(tool: Tool) -> frozenset[str]:
    """Fields whose JSON Schema declares a ``format`` (email, phone...): the value *is* that datum, which
    the policy allows in fields (logs redact it); everything else that is a string is free text."""
    typed = set()
    for name, schema in tool.parameters().get("properties", {}).items():
        variants = schema.get("anyOf", [schema])
        if any("format" in variant for variant in variants):
            typed.add(name)
    return frozenset(typed)


def _check_cards(rule: PolicyRule, tool: Tool, args: dict[str, Any]) -> None:
    if not rule.refuse_cards:
        return
    typed = _typed_fields(tool)
    for name, value in args.items():
        if name in typed:
            continue
        if any(contains_card_number(text) for text in strings(value)):
            raise PolicyDenied(policy=rule.name, check=CARD_NUMBER, detail=CARD_REFUSED.format(field=name))


# --- max per hour --------------------------------------------------------------------------------------


def _check_rate(rule: PolicyRule, tool: Tool, ctx: Context) -> None:
    """At most ``max_per_hour`` proposals for this tool by this agent in any sliding hour. Without a
    counter (``ctx.recent_count`` is None: the caller creates nothing, e.g. a reviewer's edit) there is
    nothing to limit."""
    limit = rule.max_per_hour
    if limit is None or ctx.recent_count is None:
        return
    if limit <= 0:
        raise PolicyDenied(policy=rule.name, check=MAX_PER_HOUR, detail=TOOL_PAUSED.format(tool=tool.name))
    count = ctx.recent_count
    if count(tool.name, HOUR) < limit:
        return
    retry_after = seconds_until_below(lambda seconds: count(tool.name, seconds), limit=limit, window=HOUR)
    raise RateLimited(
        policy=rule.name,
        check=MAX_PER_HOUR,
        retry_after=retry_after,
        detail=RATE_EXCEEDED.format(limit=limit, tool=tool.name, retry_after=retry_after),
    )


def seconds_until_below(count_within: Callable[[int], int], *, limit: int, window: int) -> int:
    """Whole seconds until fewer than ``limit`` events fall in the sliding ``window``.

    ``count_within(s)`` counts the events of the last ``s`` seconds. In ``t`` seconds the window will hold
    exactly what the last ``window - t`` seconds hold now, which shrinks as ``t`` grows: a binary search
    (about 12 counts for an hour, and only when a call is refused) finds the smallest such ``t``. Rounded
    up to whole seconds, so retrying after it is never too early.
    """
    low, high = 1, window
    while low < high:
        middle = (low + high) // 2
        if count_within(window - middle) < limit:
            high = middle
        else:
            low = middle + 1
    return low
