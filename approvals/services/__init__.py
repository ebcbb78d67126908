"""The domain's writes: every change to a proposal goes through here, and every change writes its audit event
in the same transaction.

Plain functions, keyword-only arguments (HackSoft's styleguide), one module per concern:

- ``context``      policy rows → the engine's plain data (``agent_context``, ``edit_context``), and the
                   approval rule a proposal snapshots (``approval_fields``);
- ``intake``       the per-agent submission budget and backpressure (``intake_allowed``);
- ``submit``       ``proposal_submit``: validate, normalize, policy, preview, store; idempotency and replay;
- ``quorum``       an approval recorded and counted against the proposal's rule (``decide`` calls it);
- ``decide``       ``proposal_approve``, ``proposal_reject``, ``proposal_request_changes``, ``proposal_cancel``, ``agent_deactivate``,
                   expiry (``proposal_expire_due``);
- ``bulk``         ``proposals_bulk_decide``: one verdict on several proposals, each decided on its own;
- ``triage``       ``proposal_snooze``, ``proposal_reassign`` (audited; neither changes status nor expiry);
- ``claim``        approved → committing under a row lock and a lease (``_claim``), or a takeover;
- ``commit``       ``proposal_commit`` (claim under a lease, send once, record) and ``commits_redispatch``;
- ``sagas``        the runner of multi-step tools and their compensation;
- ``dead_letters`` ``proposal_requeue``, ``proposal_discard``;
- ``agents``       ``agent_webhook_set``: an agent's own settings, audited;
- ``base``         what they share: actors, the proposal's audit event, the proposal under a row lock.

Callers import this package (``from approvals import services``); the names below are its public surface.
"""

from __future__ import annotations

from approvals.lifecycle import AGENT_REVOKED_REASON
from approvals.services.agents import agent_webhook_set
from approvals.services.base import _locked, agent_actor, args_changes, user_actor
from approvals.services.bulk import proposals_bulk_decide
from approvals.services.commit import (
    REDIS_RETRY_SECONDS,
    CommitResult,
    commit_budget,
    commits_redispatch,
    proposal_commit,
)
from approvals.services.context import agent_context, agent_policy_rules, approval_fields, edit_context
from approvals.services.dead_letters import proposal_discard, proposal_requeue
from approvals.services.decide import (
    agent_deactivate,
    proposal_approve,
    proposal_cancel,
    proposal_expire_due,
    proposal_reject,
    proposal_request_changes,
    reason_given,
    require_reviewer,
)
from approvals.services.intake import SUBMISSION_BUDGET, SUBMISSIONS_EXCEEDED, commit_backlog, intake_allowed
from approvals.services.sagas import SagaFailed
from approvals.services.submit import Submitted, derive_idempotency_key, proposal_submit
from approvals.services.triage import proposal_reassign, proposal_snooze
from audit.services import Actor, Where

__all__ = [
    "AGENT_REVOKED_REASON",
    "REDIS_RETRY_SECONDS",
    "SUBMISSIONS_EXCEEDED",
    "SUBMISSION_BUDGET",
    "Actor",
    "CommitResult",
    "SagaFailed",
    "Submitted",
    "Where",
    "_locked",
    "agent_actor",
    "agent_context",
    "agent_deactivate",
    "agent_policy_rules",
    "agent_webhook_set",
    "approval_fields",
    "args_changes",
    "commit_backlog",
    "commit_budget",
    "commits_redispatch",
    "derive_idempotency_key",
    "edit_context",
    "intake_allowed",
    "proposal_approve",
    "proposal_cancel",
    "proposal_commit",
    "proposal_discard",
    "proposal_expire_due",
    "proposal_reassign",
    "proposal_reject",
    "proposal_request_changes",
    "proposal_requeue",
    "proposal_snooze",
    "proposal_submit",
    "proposals_bulk_decide",
    "reason_given",
    "require_reviewer",
    "user_actor",
]
