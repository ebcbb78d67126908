"""Declares every tool once (imported by AdaptersConfig.ready)."""

from __future__ import annotations

from adapters.crm import customers, tickets
from adapters.crm.schemas import CreateTicketArgs, GetCustomerArgs, UpdateTicketArgs
from adapters.registry import Tool, register
from adapters.slack import messages
from adapters.warehouse import plan as warehouse_plan
from adapters.warehouse import service as warehouse_service
from adapters.workflows import digest

register(
    Tool(
        name="crm.create_ticket",
        kind="write",
        description="Open a support ticket in the CRM. Priority low, normal, high or urgent "
        "(medium and critical are understood as normal and urgent).",
        args_model=CreateTicketArgs,
        risk="medium",
        system="crm",
        preview=tickets.preview_create,  # type: ignore[arg-type]
        execute=tickets.execute_create,  # type: ignore[arg-type]
    )
)
register(
    Tool(
        name="crm.update_ticket",
        kind="write",
        description="Change a CRM ticket's subject, priority, status or tags, or add a comment. "
        "The reviewer sees a diff against the live ticket.",
        args_model=UpdateTicketArgs,
        risk="medium",
        system="crm",
        preview=tickets.preview_update,  # type: ignore[arg-type]
        execute=tickets.execute_update,  # type: ignore[arg-type]
        takes_resumed=True,
        reads_at_preview="crm",  # the live ticket, to diff against
        destructive=True,  # it changes an existing ticket
    )
)
register(
    Tool(
        name="crm.get_customer",
        kind="read",
        description="Look a customer up in the CRM by email.",
        args_model=GetCustomerArgs,
        risk="low",
        system="crm",
        run=customers.get_customer,  # type: ignore[arg-type]
        strict=True,
    )
)
register(
    Tool(
        name="slack.post_message",
        kind="write",
        description="Post a message to a Slack channel ('#name' or a channel id).",
        args_model=messages.PostMessageArgs,
        risk="low",
        system="slack",
        preview=messages.preview,  # type: ignore[arg-type]
        preview_takes_context=True,  # the policy decides whether links and mentions go out as formatting
        execute=messages.execute,  # type: ignore[arg-type]
        takes_resumed=True,  # a resumed commit looks for its post before posting (adapters.slack.messages)
        strict=True,
    )
)

register(
    Tool(
        name="workflow.customer_update_digest",
        kind="write",
        description="Read a customer from the CRM, post a digest about them to Slack, and record it in the CRM. "
        "Approved once as a whole; if a later step fails, earlier writes are undone.",
        args_model=digest.DigestArgs,
        risk="medium",
        system="workflow",
        preview=digest.preview,  # type: ignore[arg-type]
        preview_takes_context=True,  # each step's own tool policy is checked at the preview
        reads_at_preview="crm",  # the customer, so the preview shows the exact Slack text
        steps=digest.STEPS,
        strict=True,
    )
)

# The warehouse read path (issue 5): the plan's JSON Schema is the tool's parameters.
register(
    Tool(
        name="warehouse.query",
        kind="read",
        description="Query the analytics warehouse (datasets orders, customers, tickets) with a structured "
        "plan, never SQL: select columns and aggregates (count/sum/avg/min/max), filter, group, order, page "
        "with next_cursor. Rows are always the caller's tenant's only.",
        args_model=warehouse_plan.Plan,
        risk="low",
        system="warehouse",
        run=warehouse_service.run_tool,  # type: ignore[arg-type]
    )
)
