"""The policy engine on plain data, rule by rule: each denial case fails if its rule is removed, and each
has a twin that passes once the rule's limit is lifted (so the case is about that rule, not another)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from adapters import policy, registry
from adapters.errors import PolicyDenied, RateLimited
from adapters.policy import PolicyRule

CREATE = registry.get("crm.create_ticket")
UPDATE = registry.get("crm.update_ticket")
SLACK = registry.get("slack.post_message")
READ = registry.get("crm.get_customer")

# Normalized args, as registry.prepare hands them to the engine.
TICKET: dict[str, Any] = {
    "subject": "Printer on fire",
    "description": "Smoke from the printer on floor 3.",
    "priority": "normal",
    "customer_email": "alice@example.com",
}
VISA = "4111 1111 1111 1111"
FULLWIDTH_VISA = VISA.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})


def ctx(
    *rules: PolicyRule, tools: tuple[str, ...] = ("*",), agent: str = "bot", recent: Any = None
) -> registry.Context:
    return registry.Context(
        tenant="acme", agent=agent, allowed_tools=tools, policy=rules, recent_count=recent
    )


def denied(tool: registry.Tool, args: dict[str, Any], context: registry.Context) -> PolicyDenied:
    with pytest.raises(PolicyDenied) as caught:
        policy.check(tool, args, context)
    return caught.value


def events(*ages: float) -> Callable[[str, int], int]:
    """A recent_count over proposals made ``ages`` seconds ago (any tool)."""
    return lambda tool, seconds: sum(1 for age in ages if age < seconds)


# --- allowed tools -------------------------------------------------------------------------------------


def test_a_tool_outside_the_agents_list_is_denied():
    error = denied(CREATE, TICKET, ctx(tools=("slack.post_message",)))

    assert (error.policy, error.check) == ("allowed_tools", policy.ALLOWED_TOOLS)
    assert "may not use crm.create_ticket" in error.detail and "slack.post_message" in error.detail


@pytest.mark.parametrize(
    "tools", [("*",), ("crm.create_ticket",), ("slack.post_message", "crm.create_ticket")]
)
def test_a_tool_in_the_agents_list_passes(tools):
    assert policy.check(CREATE, TICKET, ctx(tools=tools)) == "medium"


# --- allowed fields ------------------------------------------------------------------------------------

FIELDS = PolicyRule(name="fields", tool="crm.create_ticket", allowed_fields=("subject", "description"))


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({**TICKET}, "customer_email"),
        ({**TICKET, "customer_email": None, "priority": "urgent"}, "priority"),
        ({"subject": "s", "description": "d", "priority": "normal", "tags": ["vip"]}, "tags"),
    ],
)
def test_a_field_outside_allowed_fields_is_denied_by_name(args, field):
    args = {k: v for k, v in args.items() if v is not None}

    error = denied(CREATE, args, ctx(FIELDS))

    assert (error.policy, error.check) == ("fields", policy.ALLOWED_FIELDS)
    assert repr(field) in error.detail
    assert "it may set: subject, description" in error.detail  # what the agent can do instead
    # the same call passes without the rule
    policy.check(CREATE, args, ctx(replace(FIELDS, allowed_fields=())))


def test_required_fields_and_defaults_need_no_allowance():
    # subject and description are required; priority "normal" is the default, not something the agent set
    rule = replace(FIELDS, allowed_fields=("tags",))

    assert (
        policy.check(CREATE, {"subject": "s", "description": "d", "priority": "normal"}, ctx(rule))
        == "medium"
    )
    # on an update, ticket_id is the target (required), and only the allowed change passes
    update = PolicyRule(name="u", tool="crm.update_ticket", allowed_fields=("comment",))
    policy.check(UPDATE, {"ticket_id": 7, "comment": "Looking into it."}, ctx(update))
    assert denied(UPDATE, {"ticket_id": 7, "status": "solved"}, ctx(update)).check == policy.ALLOWED_FIELDS


# --- max items -----------------------------------------------------------------------------------------


def test_more_list_items_than_max_items_is_denied():
    rule = PolicyRule(name="items", max_items=2)
    args = {**TICKET, "tags": ["a", "b", "c"]}

    error = denied(CREATE, args, ctx(rule))

    assert (error.policy, error.check) == ("items", policy.MAX_ITEMS)
    assert "'tags' has 3 items; at most 2" in error.detail
    policy.check(CREATE, {**args, "tags": ["a", "b"]}, ctx(rule))  # at the limit
    policy.check(CREATE, args, ctx(replace(rule, max_items=None)))  # without the rule


# --- PII: card numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "field", "value"),
    [
        (CREATE, "description", f"Customer paid with {VISA}, please refund."),
        (CREATE, "description", "card 4111-1111-1111-1111 exp 12/27"),
        (CREATE, "description", "4111111111111111"),
        (CREATE, "subject", "Refund 5500 0000 0000 0004"),  # Mastercard
        (CREATE, "description", "Amex 3782 822463 10005"),  # 15 digits, 4-6-5 groups
        (CREATE, "description", "4222222222222"),  # 13-digit Visa
        (CREATE, "description", f"ref {VISA} 2026"),  # a card followed by more digits
        (CREATE, "description", FULLWIDTH_VISA),
        (CREATE, "tags", ["vip", "4111-1111-1111-1111"]),  # a tag is not a typed field either
        (SLACK, "text", f"Card on file: {VISA}"),
        (UPDATE, "comment", f"New card {VISA}"),
    ],
)
def test_a_card_number_in_free_text_is_refused(tool, field, value):
    args: dict[str, Any] = (
        {"ticket_id": 7} if tool is UPDATE else {"channel": "#ops"} if tool is SLACK else {**TICKET}
    )
    args[field] = value

    error = denied(tool, args, ctx())  # no stored rule: the default refuses cards

    assert (error.policy, error.check) == ("default", policy.CARD_NUMBER)
    assert repr(field) in error.detail and "Remove it" in error.detail
    assert "4111" not in error.detail  # the refusal does not echo the number
    policy.check(tool, args, ctx(PolicyRule(name="cards-ok", refuse_cards=False)))  # without the rule


@pytest.mark.parametrize(
    "text",
    [
        "Call me on +1 (555) 010-2000 or +44 20 7946 0958, or write to bob@example.com.",
        "4111 1111 1111 1112",  # fails Luhn
        "1732354800002",  # a Luhn-valid millisecond timestamp: no card network starts with 1
        "order 9111111111111110",  # Luhn-valid, but 9 is no card network's first digit
        "411111111111",  # 12 digits: too short
        "41111111111111111111111111111117",  # one Luhn-valid 32-digit id: too long, not sliced
        "invoice 2024-03-15, 3 items",
    ],
)
def test_numbers_that_are_not_cards_pass(text):
    assert policy.check(CREATE, {**TICKET, "description": text}, ctx()) == "medium"


def test_emails_are_allowed_in_typed_fields():
    # a typed (format: email) field holds that datum; it is not scanned as free text
    args = {**TICKET, "customer_email": "4111111111111111@example.com"}

    assert policy.check(CREATE, args, ctx()) == "medium"
    assert (
        denied(CREATE, {**TICKET, "description": args["customer_email"]}, ctx()).check == policy.CARD_NUMBER
    )


@pytest.mark.parametrize(
    ("digits", "valid"),
    [("4111111111111111", True), ("4111111111111112", False), ("79927398713", True), ("0", True)],
)
def test_luhn(digits, valid):
    assert policy.luhn_valid(digits) is valid


# --- max per hour --------------------------------------------------------------------------------------

RATE = PolicyRule(name="rate", tool="crm.create_ticket", max_per_hour=3)


def test_at_the_hourly_limit_the_call_is_rate_limited_until_a_slot_frees():
    # three proposals 100 s, 200 s and 3000 s ago: the oldest leaves the hour in 600 s
    error = denied(CREATE, TICKET, ctx(RATE, recent=events(100, 200, 3000)))

    assert isinstance(error, RateLimited)
    assert (error.policy, error.check, error.retry_after) == ("rate", policy.MAX_PER_HOUR, 600)
    assert "At most 3 crm.create_ticket proposals per hour" in error.detail and "600 seconds" in error.detail
    policy.check(CREATE, TICKET, ctx(replace(RATE, max_per_hour=None), recent=events(100, 200, 3000)))


@pytest.mark.parametrize("ages", [(), (100, 200), (100, 200, 3600), (100, 200, 5000)])
def test_under_the_hourly_limit_passes(ages):
    assert policy.check(CREATE, TICKET, ctx(RATE, recent=events(*ages))) == "medium"


def test_retry_after_counts_down_to_the_slot_that_frees_first():
    # limit 2, three in the hour: two must leave before a third fits; the second oldest leaves in 1800 s
    error = denied(CREATE, TICKET, ctx(replace(RATE, max_per_hour=2), recent=events(10, 1800, 3599.5)))

    assert isinstance(error, RateLimited)
    assert error.retry_after == 1800


def test_a_limit_of_zero_pauses_the_tool_with_a_403_not_a_429():
    error = denied(CREATE, TICKET, ctx(replace(RATE, max_per_hour=0), recent=events()))

    assert not isinstance(error, RateLimited)  # waiting would not help
    assert error.check == policy.MAX_PER_HOUR and "paused" in error.detail


def test_without_a_counter_there_is_no_rate_limit():
    assert policy.check(CREATE, TICKET, ctx(RATE, recent=None)) == "medium"


@pytest.mark.parametrize(
    ("times", "limit", "expected"),
    [((0.5,), 1, 3600), ((3599.5,), 1, 1), ((3000,), 1, 600), ((1, 2, 3), 1, 3599), ((1, 2, 3), 3, 3597)],
)
def test_seconds_until_below(times, limit, expected):
    count = events(*times)
    assert policy.seconds_until_below(lambda s: count("t", s), limit=limit, window=3600) == expected


# --- risk ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "override", "risk"),
    [(CREATE, "high", "high"), (CREATE, "low", "medium"), (SLACK, "medium", "medium"), (SLACK, None, "low")],
)
def test_risk_override_raises_but_never_lowers_the_tools_risk(tool, override, risk):
    args = TICKET if tool is CREATE else {"channel": "#ops", "text": "hello"}

    assert policy.check(tool, args, ctx(PolicyRule(name="risk", risk_override=override))) == risk


# --- which rule applies --------------------------------------------------------------------------------

AGENT_TOOL = PolicyRule(name="agent-tool", agent="bot", tool="crm.create_ticket")
AGENT_ANY = PolicyRule(name="agent-any", agent="bot", tool="*")
TENANT_TOOL = PolicyRule(name="tenant-tool", tool="crm.create_ticket")
TENANT_ANY = PolicyRule(name="tenant-any", tool="*")
OTHER_AGENT = PolicyRule(name="other-agent", agent="someone-else", tool="crm.create_ticket")
OTHER_TOOL = PolicyRule(name="other-tool", agent="bot", tool="slack.post_message")


@pytest.mark.parametrize(
    ("rules", "winner"),
    [
        ((TENANT_ANY, TENANT_TOOL, AGENT_ANY, AGENT_TOOL), "agent-tool"),
        ((TENANT_ANY, TENANT_TOOL, AGENT_ANY), "agent-any"),  # an agent's rule beats a tenant's, even "*"
        ((TENANT_ANY, TENANT_TOOL), "tenant-tool"),
        ((TENANT_ANY,), "tenant-any"),
        ((OTHER_AGENT, OTHER_TOOL), "default"),  # neither is about this agent and tool
        ((), "default"),
    ],
)
def test_the_most_specific_rule_applies(rules, winner):
    assert policy.effective_rule("crm.create_ticket", ctx(*rules)).name == winner
    assert policy.effective_rule("crm.create_ticket", ctx(*reversed(rules))).name == winner  # order-free


def test_an_agents_rule_replaces_the_tenant_rule_entirely():
    strict = replace(TENANT_TOOL, allowed_fields=("subject", "description"), max_items=1)
    relaxed = replace(AGENT_TOOL)  # no limits at all

    args = {**TICKET, "tags": ["a", "b"]}
    assert denied(CREATE, args, ctx(strict)).policy == "tenant-tool"
    assert policy.check(CREATE, args, ctx(strict, relaxed)) == "medium"
    # another agent of the tenant still meets the tenant rule
    assert denied(CREATE, args, ctx(strict, relaxed, agent="other-bot")).policy == "tenant-tool"


def test_rules_apply_to_read_tools_too():
    rule = PolicyRule(name="reads", tool="crm.get_customer", risk_override="high")
    assert policy.check(READ, {"email": "alice@example.com"}, ctx(rule)) == "high"


def test_checks_run_in_the_documented_order():
    # breaks fields, items, cards and rate at once: the first in order answers
    rule = PolicyRule(name="all", allowed_fields=("subject", "description"), max_items=0, max_per_hour=1)
    args = {**TICKET, "description": VISA, "tags": ["a"]}
    order = [policy.ALLOWED_FIELDS, policy.MAX_ITEMS, policy.CARD_NUMBER, policy.MAX_PER_HOUR]

    seen = []
    for _ in order:
        error = denied(CREATE, args, ctx(rule, recent=events(1)))
        seen.append(error.check)
        rule = {
            policy.ALLOWED_FIELDS: replace(rule, allowed_fields=()),
            policy.MAX_ITEMS: replace(rule, max_items=None),
            policy.CARD_NUMBER: replace(rule, refuse_cards=False),
            policy.MAX_PER_HOUR: replace(rule, max_per_hour=None),
        }[error.check]
    assert seen == order
