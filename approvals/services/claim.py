"""The claim of a commit: approved → committing under a row lock and a lease with a fresh fencing token
(``services.lease``), or the takeover of a committing proposal whose lease ran out. Before claiming it
refuses what must not be sent: the proposal of a revoked agent, args that are not the ones approved.
``services.commit`` runs what it claims."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from adapters import registry
from approvals import errors, lifecycle
from approvals.models import Decision, Proposal, Status, Verdict
from approvals.services.base import _locked
from audit import services as audit
from audit.prepared import Param, PreparedRead

# Compiled once (audit.prepared): every commit reads it.
_APPROVING = PreparedRead(
    lambda proposal_id: Decision.objects.filter(proposal_id=proposal_id, verdict=Verdict.APPROVED).order_by(
        "-at"
    )[:1],
    proposal_id=Param.UUID,
)


def _claim(proposal_id: Any) -> tuple[Proposal, Decision, bool] | None:
    """approved → committing under a row lock; also takes over a committing proposal whose lease ran out.
    The flag says whether an earlier run may have sent the write: a takeover (the worker died mid-commit)
    or outbound attempts spent by a run that was deferred, or failed and was requeued. Every claim raises
    ``lease_token``: the returned proposal carries this claim's token."""
    now = timezone.now()
    with transaction.atomic():
        try:
            proposal = _locked(proposal_id)
        except Proposal.DoesNotExist:
            return None
        if proposal.status == Status.COMMITTING and proposal.lease_until and proposal.lease_until > now:
            return None  # another worker holds it
        if proposal.status not in (Status.APPROVED, Status.COMMITTING):
            return None
        if proposal.status == Status.APPROVED and proposal.next_attempt_at and proposal.next_attempt_at > now:
            return None  # deferred (breaker open or rate limit): its own dispatch comes later
        decision = _APPROVING.first(proposal_id=proposal.pk)
        if decision is not None:
            decision.proposal = proposal  # as the related manager would have set it
        if not proposal.agent.is_active:
            # Approved before its agent was deactivated (deactivation only cancels pending proposals): the
            # agent's work is withdrawn with its credential, so nothing is sent. No webhook to a revoked agent.
            lifecycle.transition(
                proposal,
                "refuse_revoked",
                actor=audit.SYSTEM,
                where=audit.WORKER,
                decision=decision,
                data={"reason": "agent_revoked"},
                reason="Refused: " + errors.AGENT_REVOKED.format(agent=proposal.agent.name),
            )
            return None
        actual_hash = registry.args_hash(proposal.args)
        if decision is None or decision.args_hash != proposal.args_hash or actual_hash != proposal.args_hash:
            lifecycle.transition(
                proposal,
                "refuse_mismatch",
                actor=audit.SYSTEM,
                where=audit.WORKER,
                decision=decision,
                data={"reason": "args_hash_mismatch"},
            )
            return None
        took_over = proposal.status == Status.COMMITTING
        proposal.lease_until = now + timedelta(seconds=settings.ACME_COMMIT_LEASE)
        proposal.lease_token += 1
        lifecycle.transition(
            proposal,
            "claim",
            actor=audit.SYSTEM,
            where=audit.WORKER,
            decision=decision,
            data={
                "resumed": took_over,
                "earlier_attempts": proposal.commit_attempts,
                "token": proposal.lease_token,
            },
            fields=["lease_until", "lease_token"],
        )
        return proposal, decision, took_over or proposal.commit_attempts > 0
