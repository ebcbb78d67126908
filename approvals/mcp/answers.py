"""What the model reads back from ``tools/call``: a proposal's status in words that tell it what to do next
(with the same facts as ``structured_content``), and refusals as tool errors in the REST API's own words."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mcp_types as types

from adapters import registry
from approvals.api.errors import exception_handler
from approvals.models import Proposal, Receipt, Status

if TYPE_CHECKING:
    from approvals.mcp.server import Caller


# What the model reads. Each tells it what to do next, in the terms of its own tools.
PENDING_TEXT = (
    "Proposal {id} was submitted and is waiting for a person to approve it; nothing has been done yet. "
    "Do not call {tool} again for this: an identical call returns this same proposal. Call get_proposal "
    'with {{"proposal_id": "{id}"}} (add "wait": 30 to wait up to 30 seconds for the decision) to learn '
    "whether it was approved and done. Review page: {review_url}"
)
STATUS_TEXT = {
    Status.PENDING: "Proposal {id} is still waiting for a reviewer. Call get_proposal again later "
    '(with "wait": 30 to wait for the decision).',
    Status.APPROVED: "Proposal {id} was approved and is being carried out. Call get_proposal again "
    "to see it committed.",
    Status.COMMITTING: "Proposal {id} was approved and is being carried out. Call get_proposal again "
    "to see it committed.",
    Status.COMMITTED: "Done: proposal {id} was approved and committed to {system} ({external_id}).",
    Status.REJECTED: "Proposal {id} was rejected by a reviewer. Reason: {reason}. Do not resubmit the same "
    "call: it would be refused again. Change what the reason asks for, or tell the user.",
    Status.CHANGES_REQUESTED: "A reviewer asked for changes to proposal {id} instead of approving it. "
    "Reason: {reason}. Nothing was done and this proposal is closed. Call the same tool again with the args "
    "corrected as the reason asks: the corrected call is a new proposal (a new key) for a person to approve. "
    "Repeating the old call unchanged only returns this proposal.",
    Status.CANCELLED: "Proposal {id} was cancelled; nothing was done.",
    Status.EXPIRED: "Proposal {id} expired before anyone decided on it; nothing was done. Propose it again "
    "only if it is still wanted.",
    Status.FAILED: "Proposal {id} was approved but could not be carried out: {reason}. Nothing more will "
    "happen unless an operator retries it.",
    Status.STALE: "Proposal {id} was approved, but its target changed before it was carried out, so nothing "
    "was done: {reason}. Propose it again against the current state if it is still wanted.",
}
OTHER_STATUS_TEXT = "Proposal {id} is {status}. {reason}"
NO_SUCH_PROPOSAL = "No proposal {id!r} of this agent. Pass the proposal_id a write tool returned."


def _proposal_result(caller: Caller, proposal: Proposal) -> types.CallToolResult:
    decision = proposal.decisions.select_related("reviewer").order_by("-at").first()
    receipt = None
    if proposal.status == Status.COMMITTED:
        try:
            stored = proposal.receipt
        except Receipt.DoesNotExist:
            stored = None
        if stored is not None:
            receipt = {
                "system": stored.system,
                "external_id": stored.external_id,
                "url": stored.external_url,
                "committed_at": stored.committed_at.isoformat(),
            }
    reason = (decision.reason if decision is not None and decision.reason else "") or proposal.status_reason
    body = {
        "status": proposal.status,
        "decision": decision.verdict if decision is not None else None,
        "reason": reason,
        "receipt": receipt,
        "proposal_id": str(proposal.pk),
        "tool": registry.safe_name(proposal.tool),
    }
    template = STATUS_TEXT.get(proposal.status, OTHER_STATUS_TEXT)  # type: ignore[call-overload]
    text = template.format(
        id=proposal.pk,
        status=proposal.status,
        reason=reason or "no reason given",
        system=(receipt or {}).get("system", ""),
        external_id=(receipt or {}).get("external_id", ""),
    )
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=body)


def refusal(exc: Exception) -> types.CallToolResult | None:
    """A refusal as a tool error, in the words (and the body) the REST API answers the same call with; None
    for what is not a refusal (a bug: the SDK answers it as an internal error)."""
    response = exception_handler(exc, {})
    if response is None or (response.status_code >= 500 and response.status_code not in (502, 503)):
        return None
    return _error(dict(response.data or {}))


def _error(body: dict[str, Any]) -> types.CallToolResult:
    lines = [str(body.get("detail", ""))]
    for error in body.get("errors", []) or []:
        where = ".".join(str(part) for part in error.get("loc", []))
        lines.append(f"- {where}: {error.get('msg', '')}" if where else f"- {error.get('msg', '')}")
    if body.get("retry_after"):
        lines.append(f"Retry after {body['retry_after']} seconds.")
    return types.CallToolResult(
        content=[types.TextContent(text="\n".join(lines))], structured_content=body, is_error=True
    )
