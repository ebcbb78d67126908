"""Hostile strings at the integration layer (issue 23): invisible characters, card numbers in disguise,
huge lists."""

from __future__ import annotations

from typing import Any

import pytest

from adapters import normalize, policy, registry
from adapters.errors import InvalidArgs, PolicyDenied

CTX = registry.Context(tenant="acme", agent="bot")
TICKET = {"subject": "Printer on fire", "description": "Floor 3"}


def _errors(tool: str, args: dict[str, Any]) -> list[dict[str, Any]]:
    with pytest.raises(InvalidArgs) as caught:
        registry.prepare(tool, args, CTX)
    return caught.value.errors


# --- invisible characters (issue 23, item 2) ------------------------------------------------------------

# Default-ignorable code points that are not format characters (Cf), and a blank glyph.
BLANKS = ["\u034f", "\ufe0f", "\U000e0100", "\u115f", "\u1160", "\u3164", "\uffa0", "\u2800", "\u180b"]


@pytest.mark.parametrize("blank", BLANKS, ids=[f"U+{ord(c):04X}" for c in BLANKS])
def test_a_subject_of_invisible_characters_is_refused(blank: str) -> None:
    errors = _errors("crm.create_ticket", {**TICKET, "subject": blank * 3 + " " + blank})

    assert errors[0]["loc"] == ["args", "subject"]
    assert errors[0]["type"] == "string_too_short"


@pytest.mark.parametrize("blank", BLANKS, ids=[f"U+{ord(c):04X}" for c in BLANKS])
def test_invisible_characters_are_stripped_from_text_that_has_some(blank: str) -> None:
    prepared = registry.prepare("crm.create_ticket", {**TICKET, "subject": f"Print{blank}er"}, CTX)

    assert prepared.args["subject"] in ("Printer", "Print er")  # a blank glyph reads as a space


def test_a_slack_message_of_hangul_fillers_is_refused() -> None:
    errors = _errors("slack.post_message", {"channel": "#ops", "text": "\u3164\n\u3164"})

    assert errors[0]["loc"] == ["args", "text"]


# --- card numbers in disguise (item 3) ------------------------------------------------------------------

CARD = "4111111111111111"


@pytest.mark.parametrize(
    "text",
    [
        "4111\u034f1111\u034f1111\u034f1111",
        "4111 1111\u034f 1111 1111",
        "4111.1111.1111.1111",
        "4111\n1111\n1111\n1111",
        "4111 - 1111 - 1111 - 1111",
        "4111\u200b1111\u20131111\u20131111",
        "pay with 4111/1111/1111/1111 today",
    ],
    ids=["cgj", "cgj-and-space", "dots", "newlines", "spaced-dashes", "zwsp-en-dash", "slashes"],
)
def test_a_card_number_with_other_separators_is_found(text: str) -> None:
    assert policy.contains_card_number(text)


def test_a_card_number_split_by_u034f_is_refused_by_the_policy_end_to_end() -> None:
    with pytest.raises(PolicyDenied) as caught:
        registry.prepare(
            "crm.create_ticket", {**TICKET, "description": "Card 4111\u034f1111\u034f1111\u034f1111"}, CTX
        )

    assert caught.value.check == policy.CARD_NUMBER


def test_a_card_in_a_slack_message_with_dots_is_refused() -> None:
    with pytest.raises(PolicyDenied) as caught:
        registry.prepare("slack.post_message", {"channel": "#ops", "text": "card 4111.1111.1111.1111"}, CTX)

    assert caught.value.check == policy.CARD_NUMBER


@pytest.mark.parametrize(
    "text", ["4111.1111.1111.1112", "version 4.111.111.1111", "call 2024.11.23 at 10.30"]
)
def test_luhn_still_decides(text: str) -> None:
    assert not policy.contains_card_number(text)


# --- bounded cost (item 7) ------------------------------------------------------------------------------


def test_a_huge_tag_list_is_refused_before_any_tag_is_normalized(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = normalize.clean_line

    def counting(value: Any) -> Any:
        calls.append(value)
        return real(value)

    monkeypatch.setattr(normalize.fields, "clean_line", counting)  # where the tag rule calls it
    tags = [f"tag-{i}" for i in range(44_000)]

    errors = _errors("crm.create_ticket", {**TICKET, "tags": tags})

    assert errors[0]["loc"][:2] == ["args", "tags"]
    assert normalize.TOO_MANY_RAW_TAGS in errors[0]["msg"]
    tag_calls = [c for c in calls if isinstance(c, str) and c.startswith("tag-")]
    assert len(tag_calls) <= normalize.MAX_RAW_TAGS


def test_repeated_tags_are_still_deduplicated_within_the_bound() -> None:
    prepared = registry.prepare("crm.create_ticket", {**TICKET, "tags": ["Billing", "billing"] * 20}, CTX)

    assert prepared.args["tags"] == ["billing"]


def test_a_huge_subject_is_refused_by_its_length_before_cleaning(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = normalize._strip_invisible

    def counting(value: str, keep: frozenset[str]) -> str:
        calls.append(value)
        return real(value, keep)

    monkeypatch.setattr(normalize.text, "_strip_invisible", counting)  # where the cleaners call it

    errors = _errors("crm.create_ticket", {**TICKET, "subject": "x" * 250_000})

    assert errors[0]["loc"] == ["args", "subject"]
    assert errors[0]["type"] == "string_too_long"
    assert not [c for c in calls if len(c) > 1000]
