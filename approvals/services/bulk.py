"""Bulk review: one reviewer's verdict on several proposals at once, each decided on its own.

Nothing is decided "in bulk": every id goes through ``proposal_approve`` / ``proposal_reject`` in its own
transaction, so every rule applies to each (tenant, requester, reviewer group, quorum, expiry, state), and
one refusal leaves the others as they are. Each id can be bound to the args hash the reviewer had on screen
(``args_hashes``): the hash is compared under the proposal's row lock, in the transaction that decides it,
so a proposal edited since (by the agent's replay, a reviewer's edit) is skipped ``args_changed``, never
approved with args nobody in this bulk looked at. An id the reviewer cannot see (unknown, another tenant's)
is skipped ``not_found``, exactly like an id that does not exist.

One result per distinct id, in the order given: ``{"id", "result": "decided"|"skipped", "status"}`` plus
``"error"`` and ``"detail"`` when skipped. ``decided`` means the service accepted the verdict: an approval
that leaves the quorum short is ``decided`` with status ``pending`` (the approval is recorded).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from approvals import errors, selectors
from approvals.models import Proposal
from approvals.services.base import _locked
from approvals.services.decide import proposal_approve, proposal_reject, reason_given
from audit.services import Where

MAX_IDS = 100
VERDICTS = ("approve", "reject")
NOT_FOUND = "No proposal with this id that you can see."
ARGS_CHANGED = errors.ARGS_CHANGED
TOO_MANY = f"At most {MAX_IDS} proposals at once."


def _canonical(value: Any) -> str | None:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def proposals_bulk_decide(
    *,
    reviewer: User,
    ids: list[Any],
    verdict: str,
    where: Where,
    reason: str = "",
    args_hashes: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Decide each of ``ids`` (at most 100 distinct) with ``verdict`` ("approve" or "reject"; a reject needs
    ``reason``, which is also an approval's comment); see the module docstring for what each result says."""
    if verdict not in VERDICTS:
        raise errors.DomainError(f"verdict must be one of {', '.join(VERDICTS)}.")
    if verdict == "reject" and not reason_given(reason):
        raise errors.DomainError(errors.REASON_REQUIRED)
    wanted = list(dict.fromkeys(_canonical(i) or str(i)[:64] for i in ids))  # duplicates count once
    if len(wanted) > MAX_IDS:
        raise errors.DomainError(TOO_MANY)
    hashes = {_canonical(k): v for k, v in (args_hashes or {}).items()}
    valid = [pk for pk in wanted if _canonical(pk) is not None]
    visible = {
        str(pk)
        for pk in selectors.proposals_visible_to(reviewer).filter(pk__in=valid).values_list("pk", flat=True)
    }
    results = []
    for pk in wanted:
        if pk not in visible:
            results.append(
                {"id": pk, "result": "skipped", "status": None, "error": "not_found", "detail": NOT_FOUND}
            )
            continue
        results.append(_decide_one(pk, reviewer, verdict, reason, hashes.get(pk), where))
    return results


def _decide_one(
    pk: str, reviewer: User, verdict: str, reason: str, seen_hash: str | None, where: Where
) -> dict[str, Any]:
    """One id in its own transaction. The row lock taken here is held while the service decides (it locks
    the same row again, in the same transaction), so the args cannot change between the check and the
    verdict. A refusal rolls back the service's own savepoint only: an expiry it records still sticks."""
    with transaction.atomic():
        locked = _locked(pk)
        if seen_hash is not None and locked.args_hash != seen_hash:
            return _skipped(locked, "args_changed", ARGS_CHANGED)
        try:
            decided = (
                proposal_approve(proposal=locked, reviewer=reviewer, where=where, comment=reason)
                if verdict == "approve"
                else proposal_reject(proposal=locked, reviewer=reviewer, reason=reason, where=where)
            )
        except errors.DomainError as exc:
            locked.refresh_from_db(fields=["status"])
            return _skipped(locked, exc.extra.get("error", exc.code), exc.detail)
    return {"id": pk, "result": "decided", "status": decided.status}


def _skipped(proposal: Proposal, error: str, detail: str) -> dict[str, Any]:
    return {
        "id": str(proposal.pk),
        "result": "skipped",
        "status": proposal.status,
        "error": error,
        "detail": detail,
    }
