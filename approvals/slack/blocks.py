"""A proposal's Slack message, built with slack-sdk's Block Kit models.

While the proposal is pending the message carries "Approve", "Reject" and "Open" (and, when its rule asks
for several approvals or routes it to a group, "1 of 2 approvals" with who gave them, and the group: a
partial approval updates the message); once decided it shows who decided what, and then the commit's
outcome, without buttons. A button's ``value`` is
``<proposal id>:<args hash>``: a click decides on exactly the args the message showed (nothing is kept in
process memory between the post and the click), and a click on args that changed since is refused.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from adapters.slack.messages import escape
from approvals import rules
from approvals.models import Proposal, Status

APPROVE = "approve"
REJECT = "reject"
CHANGES = "request_changes"
REJECT_MODAL = "reject_reason"  # the modals' callback_id
CHANGES_MODAL = "changes_reason"
MODALS = {  # action -> (callback_id, title, submit label)
    REJECT: (REJECT_MODAL, "Reject proposal", "Reject"),
    CHANGES: (CHANGES_MODAL, "Request changes", "Request changes"),
}
REASON_BLOCK = "reason"
REASON_INPUT = "reason_input"
MAX_CHANGES = 8  # fields shown; the rest are behind "Open"
MAX_VALUE = 200  # characters of one before/after value
OUTCOMES = {
    Status.APPROVED: ":white_check_mark: Approved by {who}; committing.",
    Status.COMMITTING: ":white_check_mark: Approved by {who}; committing.",
    Status.COMMITTED: ":white_check_mark: Approved by {who} and committed{link}.",
    Status.REJECTED: ":no_entry: Rejected by {who}: {reason}",
    Status.CHANGES_REQUESTED: ":leftwards_arrow_with_hook: Changes requested by {who}: {reason}",
    Status.FAILED: ":x: Approved by {who}, but the commit failed: {reason}",
    Status.STALE: ":warning: Approved by {who}, but the record changed before the commit (stale); nothing was written.",
    Status.EXPIRED: ":hourglass: Expired without a decision.",
    Status.CANCELLED: ":heavy_multiplication_x: Cancelled.",
}


def review_url(proposal: Proposal) -> str:
    base = str(getattr(settings, "ACME_PUBLIC_URL", "http://127.0.0.1:8000")).rstrip("/")
    return base + reverse("proposal-review", args=[proposal.pk])


def button_value(proposal: Proposal) -> str:
    return f"{proposal.pk}:{proposal.args_hash}"


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 1] + "…"
    return escape(text)  # the agent's text is shown, never interpreted (mentions, links)


def _change_lines(proposal: Proposal) -> str:
    changes = (proposal.preview or {}).get("changes") or []
    lines = [
        f"• *{escape(str(c.get('field', '')))}*: {_value(c.get('before'))} → {_value(c.get('after'))}"
        if isinstance(c, dict)
        else f"• {_value(c)}"
        for c in changes[:MAX_CHANGES]
    ]
    if len(changes) > MAX_CHANGES:
        lines.append(f"…and {len(changes) - MAX_CHANGES} more: <{review_url(proposal)}|open the proposal>")
    return "\n".join(lines) or "_(no field-by-field change)_"


def quorum_line(proposal: Proposal) -> str:
    """ "1 of 2 approvals (alice)" and the group the proposal is routed to, for a pending proposal whose rule
    asks for more than one approval or routes it; "" otherwise. The same count as the web and the API
    (``rules.approvals_state``: the approvals on the current args)."""
    parts = []
    if proposal.approvals_required > 1:
        given = [a["by"] for a in rules.approvals_state(proposal)["given"]]
        names = f" ({', '.join(escape(n) for n in given)})" if given else ""
        parts.append(
            f":busts_in_silhouette: *{len(given)} of {proposal.approvals_required} approvals*{names}"
        )
    if proposal.review_group is not None:
        parts.append(f"Only the group *{escape(proposal.review_group.name)}* can decide.")
    return " · ".join(parts)


def shown_state(proposal: Proposal) -> str:
    """What the message shows, as ``SlackPost.shown`` keeps it (32 characters at most): the status, and for a
    pending proposal that needs several approvals, how many it has ("pending:1"), so a partial approval
    updates the message and a repeated sync does not."""
    if proposal.status == Status.PENDING and proposal.approvals_required > 1:
        return f"pending:{rules.counted_approvals(proposal).count()}"
    return str(proposal.status)


def _approvers(proposal: Proposal) -> str:
    """Everyone whose approval counted, when the rule asked for several ("alice and bob"); "" otherwise."""
    if proposal.approvals_required <= 1:
        return ""
    given = [a["by"] for a in rules.approvals_state(proposal)["given"]]
    return " and ".join([", ".join(given[:-1]), given[-1]]) if len(given) > 1 else "".join(given)


def outcome_line(proposal: Proposal) -> str:
    decision = proposal.decisions.select_related("reviewer").first()
    who = decision.reviewer.get_username() if decision else "someone"
    if proposal.status not in (Status.REJECTED, Status.CHANGES_REQUESTED):
        who = _approvers(proposal) or who
    reason = escape(
        (
            decision.reason
            if decision and proposal.status in (Status.REJECTED, Status.CHANGES_REQUESTED)
            else ""
        )
        or ""
    )
    if proposal.status in (Status.FAILED, Status.STALE):
        reason = escape(proposal.status_reason or "")
    receipt = getattr(proposal, "receipt", None) if proposal.status == Status.COMMITTED else None
    link = (
        f": <{receipt.external_url}|{escape(receipt.external_id)}>"
        if receipt and receipt.external_url
        else ""
    )
    template = OUTCOMES.get(Status(proposal.status), "{status}")
    return template.format(who=escape(who), reason=reason, link=link, status=proposal.status)


def _summary(proposal: Proposal) -> str:
    # Slack reads &, < and > as control characters in every text field: the agent's words are escaped.
    return escape(str((proposal.preview or {}).get("summary") or proposal.tool))


def summary_text(proposal: Proposal) -> str:
    summary = _summary(proposal)
    return f"Proposal waiting for review: {summary}"[:3000]


def reminder_text(proposal: Proposal) -> str:
    """The thread reply of a proposal still pending after ``ACME_REMIND_AFTER`` seconds."""
    since = timezone.localtime(proposal.created_at).strftime("%Y-%m-%d %H:%M %Z")
    return f"Reminder: still waiting for a review since {since}: {_summary(proposal)}"[:3000]


def message(proposal: Proposal) -> tuple[str, list[dict[str, Any]]]:
    """The message's fallback ``text`` and its ``blocks`` for the proposal's current state."""
    summary = _summary(proposal)
    notes = [escape(str(n)) for n in (proposal.preview or {}).get("notes") or []]
    blocks: list[Any] = [
        HeaderBlock(text=PlainTextObject(text=summary[:150])),
        SectionBlock(text=MarkdownTextObject(text=_change_lines(proposal)[:3000])),
        SectionBlock(
            fields=[
                MarkdownTextObject(text=f"*Risk*\n{proposal.risk}"),
                MarkdownTextObject(text=f"*Agent*\n{escape(proposal.agent.name)}"),
            ]
        ),
    ]
    if proposal.rationale:
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=f"*Rationale*\n{escape(proposal.rationale)[:2900]}"))
        )
    if notes:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="\n".join(notes)[:3000])]))
    open_button = ButtonElement(text="Open", action_id="open", url=review_url(proposal))
    if proposal.status == Status.PENDING:
        value = button_value(proposal)
        rule = quorum_line(proposal)
        if rule:
            blocks.append(SectionBlock(block_id="quorum", text=MarkdownTextObject(text=rule[:3000])))
        blocks.append(
            ActionsBlock(
                block_id="decide",
                elements=[
                    ButtonElement(text="Approve", action_id=APPROVE, value=value, style="primary"),
                    ButtonElement(text="Reject", action_id=REJECT, value=value, style="danger"),
                    ButtonElement(text="Request changes", action_id=CHANGES, value=value),
                    open_button,
                ],
            )
        )
        text = summary_text(proposal)
    else:
        line = outcome_line(proposal)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=line[:3000])))
        blocks.append(ActionsBlock(block_id="open", elements=[open_button]))
        text = f"{summary}: {line}"[:3000]
    return text, [b.to_dict() for b in blocks]


def reason_modal(proposal: Proposal, *, action: str, channel: str) -> dict[str, Any]:
    """The modal asking for the reason of a rejection or of a request for changes (``action``); its
    ``private_metadata`` names the proposal, the args the message showed, and the channel."""
    summary = _summary(proposal)
    callback_id, title, submit = MODALS[action]
    view = View(
        type="modal",
        callback_id=callback_id,
        title=PlainTextObject(text=title),
        submit=PlainTextObject(text=submit),
        close=PlainTextObject(text="Cancel"),
        private_metadata=f"{button_value(proposal)}:{channel}",
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=summary[:3000])),
            InputBlock(
                block_id=REASON_BLOCK,
                label="Reason (the agent reads it)",
                element=PlainTextInputElement(action_id=REASON_INPUT, multiline=True),
            ),
        ],
    )
    return view.to_dict()
