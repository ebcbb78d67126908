"""Reviewers hear of proposals by email: new ones (batched), a reminder, an escalation to the tenant's admins.

Each email is a ``ReviewerEmail`` row. ``stage_new`` runs inside the submission's transaction: the proposal
joins its reviewer's *open* batch (one per reviewer and kind, collecting for ``ACME_EMAIL_BATCH`` seconds),
or opens one, due a batch window after the reviewer's last email, whose hand-off is staged in the outbox
(``approvals.outbox``) for when it is due. So at most one email a minute reaches a reviewer, listing what
arrived, and nothing is lost when Redis or the mail server is down.

Sending (``email_send``, an RQ job per batch): a conditional ``UPDATE … WHERE state = 'open'`` claims the row
(open → sending), so two workers never send it twice; success marks it sent; a failure reopens it with a
backoff and stages the next hand-off, up to ``MAX_ATTEMPTS``, then it is failed (the admin shows each
state). A worker dying between the SMTP answer and the mark leaves it ``sending``: it is not sent again
(at most once; the admin shows it).

A proposal a rule routes to a reviewer group (``Proposal.review_group``) is announced and recalled to that
group's members only; its escalation still reaches every admin of the tenant, who can reassign it.

Reminders and escalations (``remind_due``, ``escalate_due``, run by the worker's housekeeping): a pending
proposal's ``reminded_at`` / ``escalated_at`` is claimed by a conditional ``UPDATE … WHERE … IS NULL`` in the
same transaction that stages the emails and, where the proposal has a Slack message, its thread reply
(``approvals.slack.notify.stage_reminder``), so a restart neither loses nor repeats one.

Links: ``ACME_PUBLIC_URL/proposals/<id>/open/?t=<token>``; the token (``django.core.signing``, salted and
time-limited) names the proposal and the reviewer it was sent to. It logs nobody in: it leads to the
review page, which asks for a login as any page does (``views.proposal_open``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from approvals import outbox
from approvals.models import OutboxMessage, Proposal, ReviewerEmail, Role, Status
from approvals.slack import notify as slack_notify

logger = logging.getLogger(__name__)

LINK_SALT = "acme.email-link"
LINK_MAX_AGE = 14 * 86400  # a link outlives the proposal's default 24 h expiry, and stops working after
MAX_ATTEMPTS = 8
SUBJECTS = {
    ReviewerEmail.Kind.NEW: "{n} proposal{s} waiting for your review",
    ReviewerEmail.Kind.REMINDER: "Reminder: {n} proposal{s} still waiting for a decision",
    ReviewerEmail.Kind.ESCALATION: "Escalation: {n} proposal{s} about to expire without a decision",
}
INTROS = {
    ReviewerEmail.Kind.NEW: "An agent proposed the following; nothing is done until a reviewer approves.",
    ReviewerEmail.Kind.REMINDER: "These proposals are still waiting for a decision.",
    ReviewerEmail.Kind.ESCALATION: (
        "You administer this tenant: these proposals expire soon and nobody has decided on them."
    ),
}
DISABLED = "email is off: EMAIL_URL is not set (DEBUG off); reviewers get no email notifications"

# Called with each proposal whose reminder was just claimed (in its transaction): where another channel
# (Slack's thread reply) registers its own reminder. Registered at import time, never changed at run time.

_disabled_logged = False


def enabled() -> bool:
    global _disabled_logged
    if settings.ACME_EMAIL_ENABLED:
        return True
    if not _disabled_logged:  # once per process: a notice, not a log line per proposal
        _disabled_logged = True
        logger.warning(DISABLED)
    return False


def _reviewers(proposal: Proposal, roles: Iterable[str], *, routed: bool = True) -> list[User]:
    """The people of ``roles`` in the proposal's tenant who hear of it; when ``routed`` and a rule routes it
    to a reviewer group, only that group's members (the others may not decide on it)."""
    users = User.objects.filter(
        memberships__tenant_id=proposal.tenant_id, memberships__role__in=list(roles), is_active=True
    ).exclude(email="")
    if routed and proposal.review_group_id is not None:
        users = users.filter(reviewer_groups=proposal.review_group_id)
    return list(users.order_by("pk").distinct())


def _add(user: User, proposal: Proposal, kind: str) -> None:
    """Put ``proposal`` in ``user``'s open batch of ``kind``, or open one (staging its hand-off)."""
    window = timedelta(seconds=settings.ACME_EMAIL_BATCH)
    # Two transactions staging this reviewer's first email at once would each find no open batch and open
    # one: they queue on the reviewer's row instead, so the second finds the first's batch (one email a
    # minute, never two). Callers visit reviewers in pk order, so the locks are taken in one order.
    User.objects.select_for_update().filter(pk=user.pk).values_list("pk", flat=True).first()
    batch = (
        ReviewerEmail.objects.select_for_update()
        .filter(user=user, kind=kind, state=ReviewerEmail.State.OPEN)
        .order_by("pk")
        .first()
    )
    if batch is not None:
        if str(proposal.pk) not in batch.proposal_ids:
            batch.proposal_ids.append(str(proposal.pk))
            batch.save(update_fields=["proposal_ids"])
        return
    now = timezone.now()
    send_after = now if kind != ReviewerEmail.Kind.NEW else now + window
    last = (
        ReviewerEmail.objects.filter(user=user, kind=kind, sent_at__isnull=False)
        .order_by("-sent_at")
        .values_list("sent_at", flat=True)
        .first()
    )
    if last is not None:
        send_after = max(send_after, last + window)
    batch = ReviewerEmail.objects.create(
        tenant_id=proposal.tenant_id,
        user=user,
        kind=kind,
        proposal_ids=[str(proposal.pk)],
        send_after=send_after,
    )
    outbox.stage(OutboxMessage.Kind.EMAIL, {"email_id": batch.pk}, available_at=send_after)


def stage_new(proposal: Proposal) -> None:
    """Call in the transaction that stored a new pending proposal: its tenant's reviewers with an email
    (not the person it was made for, who may not decide on it; only its group's members when a rule routes
    it to a group) hear of it in their next batch."""
    if not enabled():
        return
    for user in _reviewers(proposal, (Role.REVIEWER, Role.ADMIN)):
        if user.pk != proposal.on_behalf_of_id:
            _add(user, proposal, ReviewerEmail.Kind.NEW)


def remind_due(*, limit: int = 200) -> int:
    """Pending proposals older than ACME_REMIND_AFTER seconds are re-announced once."""
    cutoff = timezone.now() - timedelta(seconds=settings.ACME_REMIND_AFTER)
    due = Proposal.objects.filter(status=Status.PENDING, reminded_at__isnull=True, created_at__lte=cutoff)
    return _claim_each(due, "reminded_at", (Role.REVIEWER, Role.ADMIN), ReviewerEmail.Kind.REMINDER, limit)


def escalate_due(*, limit: int = 200) -> int:
    """Pending proposals expiring within ACME_ESCALATE_BEFORE seconds go to the tenant's admins, once."""
    soon = timezone.now() + timedelta(seconds=settings.ACME_ESCALATE_BEFORE)
    due = Proposal.objects.filter(
        status=Status.PENDING, escalated_at__isnull=True, expires_at__lte=soon, expires_at__gt=timezone.now()
    )
    return _claim_each(due, "escalated_at", (Role.ADMIN,), ReviewerEmail.Kind.ESCALATION, limit)


def _claim_each(due: Any, field: str, roles: tuple[str, ...], kind: str, limit: int) -> int:
    count = 0
    for pk in list(due.order_by("created_at").values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            # The claim: only the first pass (of any worker, before or after a restart) sets it.
            claimed = Proposal.objects.filter(
                pk=pk, status=Status.PENDING, **{f"{field}__isnull": True}
            ).update(**{field: timezone.now()})
            if not claimed:
                continue
            proposal = Proposal.objects.select_related("tenant").get(pk=pk)
            if enabled():
                # An escalation reaches every admin, routed or not: an admin can reassign it.
                for user in _reviewers(proposal, roles, routed=kind != ReviewerEmail.Kind.ESCALATION):
                    if user.pk != proposal.on_behalf_of_id:
                        _add(user, proposal, kind)
            if field == "reminded_at":
                slack_notify.stage_reminder(proposal)
            count += 1
    return count


# --- sending ------------------------------------------------------------------------------------------


def link_for(proposal_id: Any, user: User) -> str:
    token = signing.dumps({"p": str(proposal_id), "u": user.pk}, salt=LINK_SALT, compress=True)
    path = reverse("proposal-open", kwargs={"pk": proposal_id})
    return f"{settings.ACME_PUBLIC_URL}{path}?t={token}"


def read_link(token: str, proposal_id: Any) -> int | None:
    """The reviewer a link was sent to, or None when it is forged, altered, expired or for another proposal."""
    try:
        data = signing.loads(token, salt=LINK_SALT, max_age=LINK_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or data.get("p") != str(proposal_id) or not isinstance(data.get("u"), int):
        return None
    return int(data["u"])


def _body(email: ReviewerEmail, proposals: list[Proposal]) -> str:
    lines = [INTROS[ReviewerEmail.Kind(email.kind)], ""]
    for proposal in proposals:
        summary = (proposal.preview or {}).get("summary") or proposal.tool
        lines += [
            f"- {summary}",
            f"  {proposal.tool}, risk {proposal.risk}, by {proposal.agent.name} ({proposal.tenant.slug}); "
            f"status {proposal.status}",
            f"  Review: {link_for(proposal.pk, email.user)}",
            "",
        ]
    lines.append(f"Your inbox: {settings.ACME_PUBLIC_URL}{reverse('inbox')}")
    return "\n".join(lines)


def email_send(*, email_id: int) -> str:
    """Send one batch (the RQ job's service). Returns sent, skipped (another worker has it, or it is not
    due), retry or failed."""
    claimed = ReviewerEmail.objects.filter(
        pk=email_id, state=ReviewerEmail.State.OPEN, send_after__lte=timezone.now()
    ).update(state=ReviewerEmail.State.SENDING, attempts=F("attempts") + 1)
    if not claimed:
        return "skipped"
    email = ReviewerEmail.objects.select_related("user").get(pk=email_id)
    proposals = list(
        Proposal.objects.filter(pk__in=email.proposal_ids)
        .select_related("agent", "tenant")
        .order_by("created_at")
    )
    n = len(proposals)
    subject = SUBJECTS[ReviewerEmail.Kind(email.kind)].format(n=n, s="" if n == 1 else "s")
    try:
        EmailMessage(
            subject=subject,
            body=_body(email, proposals),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[email.user.email],
        ).send(fail_silently=False)
    except Exception as exc:  # the mail server is down or refused: retry with backoff, then give up
        error = f"{type(exc).__name__}: {exc}"[:1000]
        if email.attempts >= MAX_ATTEMPTS:
            ReviewerEmail.objects.filter(pk=email_id).update(
                state=ReviewerEmail.State.FAILED, last_error=error
            )
            logger.error("reviewer email failed for good", extra={"email_id": email_id})
            return "failed"
        retry_at = timezone.now() + timedelta(seconds=min(3600, 30 * 2 ** (email.attempts - 1)))
        with transaction.atomic():
            ReviewerEmail.objects.filter(pk=email_id).update(
                state=ReviewerEmail.State.OPEN, send_after=retry_at, last_error=error
            )
            outbox.stage(OutboxMessage.Kind.EMAIL, {"email_id": email_id}, available_at=retry_at)
        logger.warning("reviewer email failed; will retry", extra={"email_id": email_id})
        return "retry"
    ReviewerEmail.objects.filter(pk=email_id).update(
        state=ReviewerEmail.State.SENT, sent_at=timezone.now(), last_error=""
    )
    return "sent"
