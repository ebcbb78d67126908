"""Every normalization rule, case by case: each case fails if its rule is removed."""

from __future__ import annotations

import re
from typing import Annotated, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import Field, ValidationError

from adapters.crm.schemas import CreateTicketArgs, UpdateTicketArgs
from adapters.normalize import (
    NOTHING_VISIBLE,
    PRIORITY_SYNONYMS,
    PRIORITY_VOCABULARY,
    STATUS_SYNONYMS,
    ArgsModel,
    Channel,
    CleanLine,
    CleanText,
    Email,
    Priority,
    Tags,
    TicketId,
    TicketStatus,
)


class Probe(ArgsModel):
    line: Annotated[str, Field(min_length=1, max_length=10), CleanLine] | None = None
    text: Annotated[str, Field(min_length=1, max_length=20), CleanText] | None = None
    email: Email | None = None
    priority: Priority | None = None
    status: TicketStatus | None = None
    tags: Tags | None = None
    ticket_id: TicketId | None = None
    channel: Channel | None = None


def ok(**kwargs: Any) -> Any:
    model = Probe.model_validate(kwargs)
    (name,) = kwargs
    return getattr(model, name)


def rejected(**kwargs: Any) -> list[Any]:
    with pytest.raises(ValidationError) as info:
        Probe.model_validate(kwargs)
    return info.value.errors()


# --- one-line text ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Printer  ", "Printer"),  # ends trimmed
        ("a \t  b", "a b"),  # whitespace runs collapsed
        ("a\nb", "a b"),  # no line breaks in a one-line field
        ("a\r\nb", "a b"),
        ("Pri\u200bnter", "Printer"),  # zero-width space
        ("\ufeffBOM", "BOM"),  # byte-order mark
        ("a\u200db", "ab"),  # zero-width joiner
        ("evil\u202e", "evil"),  # bidi override
        ("x\x00y\x07z", "xyz"),  # control characters
        ("e\u0301", "\u00e9"),  # NFC: the length limit counts what a person sees
    ],
)
def test_clean_line(raw: str, expected: str) -> None:
    assert ok(line=raw) == expected


def test_line_length_limit_applies_after_cleaning() -> None:
    assert ok(line="   0123456789   ") == "0123456789"
    assert rejected(line="0123456789a")[0]["type"] == "string_too_long"
    assert rejected(line=" \u200b ")[0]["type"] == "string_too_short"


# --- long text ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("line1\nline2", "line1\nline2"),  # line breaks kept
        ("a\tb", "a\tb"),  # tabs kept
        ("a\r\nb", "a\nb"),  # CRLF -> LF
        ("  body  \n", "body"),  # ends trimmed
        ("a   \nb", "a\nb"),  # trailing spaces per line
        ("x\x1b[31my", "x[31my"),  # ANSI escape's control char removed
        ("zero\u200bwidth", "zerowidth"),
    ],
)
def test_clean_text(raw: str, expected: str) -> None:
    assert ok(text=raw) == expected


def test_text_length_limit() -> None:
    assert rejected(text="x" * 21)[0]["type"] == "string_too_long"


# --- email --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("A@B.com", "a@b.com"),
        ("  ada@example.com ", "ada@example.com"),
        ("ada\u200b@example.com", "ada@example.com"),
        ("first.last+tag@sub.example.org", "first.last+tag@sub.example.org"),
    ],
)
def test_email_normalized(raw: str, expected: str) -> None:
    assert ok(email=raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["not-an-email", "a@b", "a@@b.com", "a b@c.com", "@b.com", "a@b..com", "a@-b.com", "x" * 250 + "@b.com"],
)
def test_email_rejected(raw: str) -> None:
    assert rejected(email=raw)[0]["loc"] == ("email",)


# --- priority ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("word", "expected"), sorted(PRIORITY_SYNONYMS.items()))
def test_every_priority_synonym(word: str, expected: str) -> None:
    assert ok(priority=word) == expected
    assert ok(priority=f"  {word.upper()} ") == expected  # case and whitespace do not matter


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("low", "low"),
        ("minor", "low"),
        ("p4", "low"),
        ("medium", "normal"),
        ("normal", "normal"),
        ("moderate", "normal"),
        ("p3", "normal"),
        ("high", "high"),
        ("important", "high"),
        ("p2", "high"),
        ("critical", "urgent"),
        ("urgent", "urgent"),
        ("emergency", "urgent"),
        ("asap", "urgent"),
        ("p1", "urgent"),
        ("blocker", "urgent"),
        ("Critical", "urgent"),
        (" URGENT\t", "urgent"),
    ],
)
def test_priority_contract_table(word: str, expected: str) -> None:
    # The contract's table spelled out, so dropping a synonym from PRIORITY_SYNONYMS fails here too.
    assert ok(priority=word) == expected


@pytest.mark.parametrize("raw", ["whenever", "p9", "", 3])
def test_priority_rejected(raw: Any) -> None:
    assert rejected(priority=raw)[0]["loc"] == ("priority",)


@pytest.mark.parametrize(("word", "expected"), sorted(STATUS_SYNONYMS.items()))
def test_every_status_synonym(word: str, expected: str) -> None:
    assert ok(status=word) == expected
    assert ok(status=word.upper()) == expected


# --- tags ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["VIP"], ["vip"]),  # lower-cased
        (["  billing "], ["billing"]),  # trimmed
        (["vip", "VIP", "vip "], ["vip"]),  # deduped after normalizing
        (["b", "a", "b"], ["b", "a"]),  # order kept
        (["on fire"], ["on-fire"]),  # inner spaces become a dash
        (["x\u200by"], ["xy"]),  # invisible characters removed
        ([], []),
    ],
)
def test_tags_normalized(raw: list[str], expected: list[str]) -> None:
    assert ok(tags=raw) == expected


@pytest.mark.parametrize("raw", [["a/b"], ["#tag"], ["x" * 51], [""], [3], "vip"])
def test_tags_rejected(raw: Any) -> None:
    assert rejected(tags=raw)[0]["loc"][0] == "tags"


def test_at_most_ten_tags_counted_after_dedupe() -> None:
    assert len(ok(tags=[f"t{i}" for i in range(10)] + ["T0"])) == 10
    assert rejected(tags=[f"t{i}" for i in range(11)])[0]["type"] == "too_long"


# --- ids: only lossless coercion ----------------------------------------------------------------------


# A JSON number with no fraction is an integer to JSON Schema (the tools publish "type": "integer"):
# 12.0 is the id 12, as it is to JavaScript, which cannot even tell 12.0 from 12.
@pytest.mark.parametrize(
    ("raw", "expected"), [(123, 123), ("123", 123), (" 42 ", 42), (12.0, 12), (1e3, 1000), (2.0**53, 2**53)]
)
def test_ticket_id_lossless(raw: Any, expected: int) -> None:
    assert ok(ticket_id=raw) == expected
    assert type(ok(ticket_id=raw)) is int


@pytest.mark.parametrize(
    "raw",
    [
        "12.0",
        "1e3",
        "+5",
        "-5",
        "0x10",
        "abc",
        12.5,
        2.0**53 + 2,
        1e300,
        float("nan"),
        float("inf"),
        True,
        0,
        0.0,
        -1,
        "0",
    ],
)
def test_ticket_id_lossy_rejected(raw: Any) -> None:
    assert rejected(ticket_id=raw)[0]["loc"] == ("ticket_id",)


# --- channels -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("#support", "#support"),
        ("support", "#support"),  # the '#' added
        (" #Support ", "#support"),  # trimmed, lower-cased
        ("C0SUPPORT1", "C0SUPPORT1"),  # ids kept verbatim
    ],
)
def test_channel(raw: str, expected: str) -> None:
    assert ok(channel=raw) == expected


@pytest.mark.parametrize("raw", ["#", "#has space", "#bad/char", ""])
def test_channel_rejected(raw: str) -> None:
    assert rejected(channel=raw)[0]["loc"] == ("channel",)


# --- models -------------------------------------------------------------------------------------------


def test_args_models_forbid_unknown_fields() -> None:
    with pytest.raises(ValidationError) as info:
        CreateTicketArgs.model_validate({"subject": "s", "description": "d", "prio": "high"})
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_args_models_are_strict() -> None:
    with pytest.raises(ValidationError):
        CreateTicketArgs.model_validate({"subject": 5, "description": "d"})


def test_update_needs_at_least_one_change() -> None:
    with pytest.raises(ValidationError, match="at least one of"):
        UpdateTicketArgs.model_validate({"ticket_id": 1})


# --- what the tools publish holds: every value their JSON Schema allows is accepted -------------------------
def _published(tool: str, field: str) -> dict[str, Any]:
    from adapters import registry

    prop = registry.get(tool).parameters()["properties"][field]
    return next((alt for alt in prop.get("anyOf", [prop]) if alt.get("type") != "null"), prop)


@given(channel=st.from_regex(_published("slack.post_message", "channel")["pattern"], fullmatch=True))
def test_every_channel_the_schema_allows_is_accepted(channel: str) -> None:
    assert re.fullmatch(r"#[a-z0-9][a-z0-9_-]{0,79}|[CGD][A-Z0-9]{6,}", ok(channel=channel))


@given(data=st.data())
def test_every_tag_list_the_schema_allows_is_accepted(data: st.DataObject) -> None:
    schema = _published("crm.create_ticket", "tags")
    item = st.from_regex(schema["items"]["pattern"], fullmatch=True)
    tags = data.draw(st.lists(item, max_size=schema["maxItems"]))
    assert 0 < len(ok(tags=tags)) <= len(tags) or tags == []


def test_the_published_patterns_refuse_what_the_server_refuses() -> None:
    """The patterns are not looser than the rules: what a rule refuses, the schema refuses too."""
    channel = re.compile(_published("slack.post_message", "channel")["pattern"])
    tag = re.compile(_published("crm.create_ticket", "tags")["items"]["pattern"])
    for raw in ["#", "#has space", "#bad/char", "", "##two", "#été"]:
        assert not channel.fullmatch(raw), raw
        assert rejected(channel=raw)
    for raw in ["a/b", "#tag", "x" * 51, "", "-lead", "été"]:
        assert not tag.fullmatch(raw), raw
        assert rejected(tags=[raw])


# --- one vocabulary (schema, errors, edit form, docs) ---------------------------------------------------


def _priority_schema() -> dict[str, Any]:
    return CreateTicketArgs.model_json_schema()["properties"]["priority"]


def test_the_priority_schema_lists_the_words_that_are_stored_and_names_every_synonym() -> None:
    schema = _priority_schema()
    assert schema["enum"] == ["low", "normal", "high", "urgent"]
    # Every word accepted is named in the description: none is accepted "though in no list".
    for word in PRIORITY_SYNONYMS:
        assert re.search(rf"\b{re.escape(word)}\b", schema["description"]), word


def test_an_unknown_priority_is_told_the_vocabulary_of_the_schema() -> None:
    (error,) = rejected(priority="whenever")
    assert error["msg"].endswith(f"use {PRIORITY_VOCABULARY}")
    assert _priority_schema()["description"].startswith(PRIORITY_VOCABULARY.split(" (")[0])
    assert "low, normal, high or urgent" in error["msg"]


def test_a_subject_with_nothing_visible_says_so() -> None:
    (error,) = rejected(line=" \u200b ")
    assert error["msg"] == NOTHING_VISIBLE
    assert "at least 1 character" not in error["msg"]


def test_a_bad_tag_is_named_in_the_error() -> None:
    (error,) = rejected(tags=["fine", "no/slash"])
    assert "'no/slash'" in error["msg"] and "fine" not in error["msg"]
