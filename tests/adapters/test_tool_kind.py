"""A tool's kind is asked of the registry (``Tool.is_workflow``, ``Tool.system``), never read off its name."""

from __future__ import annotations

from pydantic import BaseModel

from adapters import registry
from adapters.types import Step, Tool


class _Args(BaseModel):
    pass


def _tool(name: str, *, steps: tuple[Step, ...] = ()) -> Tool:
    return Tool(
        name=name, kind="write", description="", args_model=_Args, risk="low", system="ops", steps=steps
    )


def test_a_multi_step_tool_is_a_workflow_whatever_its_name() -> None:
    step = Step(name="one", kind="write", description="", run=lambda *_: {})

    assert _tool("ops.rollout", steps=(step,)).is_workflow
    assert not _tool("workflow.looks_like_one").is_workflow


def test_the_declared_tools_answer_their_kind() -> None:
    assert registry.get("workflow.customer_update_digest").is_workflow
    assert not registry.get("crm.create_ticket").is_workflow
    assert registry.get("slack.post_message").system == "slack"


def test_find_answers_none_for_a_tool_no_longer_declared() -> None:
    assert registry.find("crm_create_ticket") is registry.get("crm.create_ticket")
    assert registry.find("workflow.withdrawn") is None
