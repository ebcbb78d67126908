"""Domain errors. The API turns each into the contract's error shape; messages tests check live here.

One of four ``errors.py``; this one is the domain's exceptions (what a proposal's lifecycle refuses). The
others -- ``adapters/errors.py``: the integration layer's exceptions (what an outside call or a tool's args
can go wrong with); ``adapters/warehouse/errors.py``: the warehouse read path's refusals;
``approvals/api/errors.py``: the API's error *responses*: it turns the other three into the contract's shape.
"""

from __future__ import annotations

from typing import Any

INVALID_STATE = "This proposal is {status}; it can be {action} only while {allowed}."
SELF_APPROVAL = "You cannot decide on a proposal made on your own behalf; ask another reviewer."
NOT_A_REVIEWER = "Only a reviewer or admin of this tenant can decide on proposals."
NOT_IN_REVIEW_GROUP = (
    "This proposal is routed to the reviewer group {group}; only its members can decide on it. "
    "Ask one of them, or an admin to reassign it."
)
ALREADY_APPROVED = (
    "You already approved these args; the proposal waits for {missing} more approval(s) from other reviewers."
)
NOT_THE_PROPOSER = "Only the agent that made this proposal can cancel it."
KEY_REUSED = (
    "This Idempotency-Key was already used for another request (other args, tool or on_behalf_of); "
    "use a new key for a different request."
)
ARGS_CHANGED = (
    "Its args changed since you saw them (the args hash differs), so nothing was decided; open it again."
)
REASON_REQUIRED = "A reason is required to reject a proposal."
CHANGES_REASON_REQUIRED = "A reason is required to request changes: say what the agent should change."
TARGET_CHANGED = (
    "The target changed since the preview this edit was checked against, so nothing was approved. "
    "Preview the edit again (the reviewer page's Edit does), or reject the proposal and have it proposed anew."
)

AGENT_REVOKED = (
    "The agent that made this proposal ({agent}) has been deactivated, so its proposals can no longer be "
    "approved or committed; have an active agent propose it again if it is still wanted."
)


class DomainError(Exception):
    status = 400
    code = "invalid_request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidTransition(DomainError):
    """An illegal status change; the API answers 409 invalid_state."""

    status = 409
    code = "invalid_state"


class NotAllowed(DomainError):
    status = 403
    code = "forbidden"


class NotInReviewGroup(NotAllowed):
    """A reviewer outside the group a proposal is routed to (``Proposal.review_group``): 403
    not_in_review_group, nothing recorded."""

    code = "not_in_review_group"


class AlreadyApproved(DomainError):
    """A reviewer approving the same args of a proposal a second time: the quorum counts distinct people, so
    the API answers 409 already_approved and records nothing."""

    status = 409
    code = "already_approved"


class IdempotencyConflict(DomainError):
    status = 409
    code = "idempotency_key_reused"


class TargetChanged(DomainError):
    """An edit-then-approve whose fresh read of the target differs from the preview the reviewer saw: the
    approval would adopt a state nobody reviewed. The API answers 409 target_changed; nothing is recorded."""

    status = 409
    code = "target_changed"


class ArgsChanged(DomainError):
    """An approval bound to the args hash the reviewer had on screen (``args_hash``) while the proposal's args
    changed since (another reviewer's edit): counting it would complete a quorum on args this reviewer never
    saw. The API answers 409 args_changed; nothing is recorded."""

    status = 409
    code = "args_changed"


class AgentRevoked(InvalidTransition):
    """Approving (or committing) the proposal of a deactivated agent: 409 ``invalid_state`` with this reason.
    Deactivation cancels the agent's pending proposals; this refuses what a race or a direct database change
    left behind."""
