"""The declared tools: names, kinds, risks, JSON Schemas an agent can be wired from."""

from __future__ import annotations

import pytest

from adapters import registry
from adapters.errors import InvalidArgs, UnknownTool


def test_the_first_wave_is_registered() -> None:
    declared = {t.name: (t.kind, t.risk, t.requires_approval) for t in registry.tools()}
    assert declared["crm.create_ticket"] == ("write", "medium", True)
    assert declared["crm.update_ticket"] == ("write", "medium", True)
    assert declared["crm.get_customer"] == ("read", "low", False)
    assert declared["slack.post_message"] == ("write", "low", True)


def test_schemas_are_strict_and_advertise_the_agent_vocabulary() -> None:
    schema = registry.get("crm.create_ticket").parameters()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"subject", "description"}
    # One vocabulary (issue 24, item 3): the schema's enum is the words the reviewer sees and the CRM stores;
    # the agent's own words of contract section 4 (medium, critical, ...) are advertised as understood, and
    # mapped onto it.
    priority = schema["properties"]["priority"]
    assert priority["enum"] == ["low", "normal", "high", "urgent"]
    assert "medium" in priority["description"] and "critical" in priority["description"]
    tool = registry.get("crm.create_ticket")
    said = {"low": "low", "medium": "normal", "high": "high", "critical": "urgent"}
    for word, stored in said.items():
        model = registry.validate(tool, {"subject": "s", "description": "d", "priority": word})
        assert model.model_dump()["priority"] == stored
    assert schema["properties"]["subject"]["maxLength"] == 200


def test_invalid_args_name_the_field() -> None:
    with pytest.raises(InvalidArgs) as info:
        registry.prepare(
            "crm.create_ticket", {"subject": "", "description": "d"}, registry.Context(tenant="t")
        )
    assert info.value.errors[0]["loc"] == ["args", "subject"]


def test_unknown_tool() -> None:
    with pytest.raises(UnknownTool):
        registry.get("crm.delete_everything")
