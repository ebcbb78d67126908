"""``crm.create_ticket`` and ``crm.update_ticket``: previews for the reviewer, and the commits."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from adapters import connections, http
from adapters.crm import client
from adapters.crm.schemas import CreateTicketArgs, Ticket, TicketEnvelope, UpdateTicketArgs
from adapters.errors import InvalidArgs, PermanentFailure, StaleTarget
from adapters.normalize import clean_text
from adapters.registry import Outcome, Preview

# A ticket another tenant owns and a ticket that does not exist get the very same answer (contract section 6,
# "tenant isolation outside"): nothing of it, not even whether it exists.
TICKET_NOT_FOUND = "ticket not found"
TICKET_NOT_FOUND_DETAIL = "Ticket not found: no ticket with this id is reachable for this tenant."
# What happened; what a stale proposal needs (a new proposal, a new review) is its status's to say, once.
STALE_TICKET = "The ticket changed in the CRM after it was reviewed."
NO_SNAPSHOT = "The update has no preview snapshot of the ticket to compare with."


def _outcome(ticket: Ticket, attempts: int) -> Outcome:
    return Outcome(
        system="crm",
        external_id=str(ticket.id),
        # Enough for a receipt; the requester's email stays in the CRM.
        summary={
            "id": ticket.id,
            "status": ticket.status,
            "priority": ticket.priority,
            "subject": ticket.subject,
            "api_url": client.ticket_api_url(ticket.id),
        },
        attempts=attempts,
        url=client.ticket_url(ticket.id),
    )


# --- create -------------------------------------------------------------------------------------------


def preview_create(args: CreateTicketArgs) -> Preview:
    values = args.model_dump(mode="json", exclude_none=True)
    changes = [{"field": name, "before": None, "after": value} for name, value in values.items()]
    summary = f'Create ticket "{args.subject}" ({args.priority})'
    if args.customer_email:
        summary += f" for {args.customer_email}"
    return Preview(summary=summary, changes=changes)


def create_body(args: CreateTicketArgs) -> dict[str, Any]:
    ticket: dict[str, Any] = {
        "subject": args.subject,
        "comment": {"body": args.description},
        "priority": args.priority,
    }
    if args.customer_email:
        ticket["requester"] = {"email": args.customer_email}
    if args.tags:
        ticket["tags"] = args.tags
    return {"ticket": ticket}


def execute_create(args: CreateTicketArgs, idempotency_key: str, snapshot: dict[str, Any]) -> Outcome:
    # The CRM keeps the Idempotency-Key: a retry after a lost response returns the first ticket.
    response = client.call("POST", "tickets.json", json=create_body(args), idempotency_key=idempotency_key)
    ticket = http.parse(TicketEnvelope, response, client.DOWNSTREAM).ticket
    # The tenant's own from now on, also on a CRM other tenants share (a replayed key returns the same id).
    connections.record_created(client.DOWNSTREAM, ticket.id)
    return _outcome(ticket, http.attempts_of(response))


# --- update -------------------------------------------------------------------------------------------


def _not_found() -> InvalidArgs:
    return InvalidArgs(
        errors=[{"loc": ["args", "ticket_id"], "msg": TICKET_NOT_FOUND, "type": "not_found"}],
        detail=TICKET_NOT_FOUND_DETAIL,
    )


def _gone(attempts: int = 0) -> PermanentFailure:
    """At commit: the proposal fails with the same reason as the preview's 400."""
    return PermanentFailure(detail=TICKET_NOT_FOUND_DETAIL, attempts=attempts, status=404)


def _owned(ticket_id: int) -> bool:
    """Asked before any request: on a CRM other tenants share, only the tickets the gateway created for this
    tenant; on its own CRM, any; without a tenant, none."""
    return connections.owns(connections.current(client.DOWNSTREAM), ticket_id)


def _live(ticket_id: int) -> TicketEnvelope:
    if not _owned(ticket_id):
        raise _not_found()
    try:
        return client.get_ticket_for_people(ticket_id)
    except PermanentFailure as exc:
        if exc.status == 404:
            raise _not_found() from None
        raise


def _target(envelope: TicketEnvelope) -> dict[str, Any]:
    """The ticket as the reviewer recognises it: subject, requester, a link, and when this was read (the
    "before" values are as of then; the commit refuses if the ticket moved since)."""
    live = envelope.ticket
    requester = next((u for u in envelope.users if u.id == live.requester_id), None)
    who = (
        ""
        if requester is None
        else " ".join(
            part for part in (requester.name or "", f"<{requester.email}>" if requester.email else "") if part
        )
    )
    return {
        "key": f"crm:ticket:{live.id}",
        "system": client.DOWNSTREAM,
        "id": live.id,
        "title": live.subject or "",
        "requester": who,
        "url": client.ticket_url(live.id),
        "read_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def diff(args: UpdateTicketArgs, live: Ticket) -> list[dict[str, Any]]:
    """Field by field, only what changes; a comment is always an addition."""
    changes = []
    for name in ("subject", "priority", "status", "tags"):
        after = getattr(args, name)
        before = getattr(live, name)
        if after is not None and after != before:
            changes.append({"field": name, "before": before, "after": after})
    if args.comment is not None:
        changes.append({"field": "comment", "before": None, "after": args.comment})
    return changes


def preview_update(args: UpdateTicketArgs) -> Preview:
    envelope = _live(args.ticket_id)
    live = envelope.ticket
    changes = diff(args, live)
    parts = [
        f"{c['field']} {c['before']} → {c['after']}" if c["field"] != "comment" else "add a comment"
        for c in changes
    ]
    summary = f"Update ticket #{live.id}: " + (", ".join(parts) if parts else "no change")
    notes = [] if changes else ["The ticket already has these values; committing changes nothing."]
    return Preview(
        summary=summary,
        changes=changes,
        snapshot={"updated_at": live.updated_at},
        notes=notes,
        target=_target(envelope),
    )


def update_body(args: UpdateTicketArgs, updated_stamp: str) -> dict[str, Any]:
    ticket: dict[str, Any] = args.model_dump(
        mode="json", exclude_none=True, include={"subject", "priority", "status", "tags"}
    )
    if args.comment is not None:
        ticket["comment"] = {"body": args.comment, "public": True}
    # Zendesk's own collision guard: the CRM refuses (409) if the ticket moved after ``updated_stamp``,
    # closing the gap between our re-read and the PUT.
    ticket["safe_update"] = True
    ticket["updated_stamp"] = updated_stamp
    return {"ticket": ticket}


def execute_update(
    args: UpdateTicketArgs, idempotency_key: str, snapshot: dict[str, Any], *, resumed: bool = False
) -> Outcome:
    """``resumed``: an earlier run of this commit may have sent the PUT (the registry's ``takes_resumed``)."""
    seen = snapshot.get("updated_at")
    if not seen:
        raise StaleTarget(detail=NO_SNAPSHOT)
    if not _owned(args.ticket_id):  # checked again at commit: nothing is sent for a ticket not the tenant's
        raise _gone()
    try:
        live, _ = client.get_ticket(args.ticket_id)
    except PermanentFailure as exc:
        if exc.status == 404:
            raise _gone(exc.attempts) from None
        raise
    if live.updated_at != seen:
        if resumed:  # perhaps moved by our own PUT, sent by the earlier run
            return _reconcile(args, seen, live, attempts=0)
        raise StaleTarget(detail=STALE_TICKET)
    try:
        response = client.call(
            "PUT",
            f"tickets/{args.ticket_id}.json",
            json=update_body(args, seen),
            idempotency_key=idempotency_key,
        )
    except PermanentFailure as exc:
        if exc.status != 409:
            raise
        # A real Zendesk keeps the Idempotency-Key of creations only: the 409 may answer our own write,
        # applied by an earlier attempt whose answer was lost (a retry: exc.attempts > 1) or by the earlier run.
        if resumed or exc.attempts > 1:
            return _reconcile(args, seen, client.get_ticket(args.ticket_id)[0], attempts=exc.attempts)
        raise StaleTarget(detail=STALE_TICKET) from None
    ticket = http.parse(TicketEnvelope, response, client.DOWNSTREAM).ticket
    outcome = _outcome(ticket, http.attempts_of(response))
    outcome.summary["updated_at"] = ticket.updated_at
    return outcome


def _reconcile(args: UpdateTicketArgs, seen: str, live: Ticket, *, attempts: int) -> Outcome:
    """The ticket moved after the preview at ``seen`` while our own write may have landed: committed (found
    applied, nothing sent again) if ``live`` shows the approved change, else stale as for anyone else's edit.
    ``attempts``: the PUT attempts of this run (0 when the earlier run's PUT is what is found)."""
    if not _landed(args, seen, live):
        raise StaleTarget(detail=STALE_TICKET)
    outcome = replace(_outcome(live, attempts), reconciled=True)
    outcome.summary["updated_at"] = live.updated_at
    return outcome


def _landed(args: UpdateTicketArgs, seen: str, live: Ticket) -> bool:
    """Every approved field has its approved value and, if a comment was approved, the CRM lists it as made
    after ``seen`` (one made at ``seen`` is the one the preview saw: an agent re-proposing the same comment).
    A CRM without the comments endpoint (or failing it for good) proves nothing: False."""
    for name in ("subject", "priority", "status", "tags"):
        after = getattr(args, name)
        before = getattr(live, name)
        if after is not None and (set(after) != set(before) if name == "tags" else after != before):
            return False
    if args.comment is None:
        return True
    try:
        comments = client.get_comments(args.ticket_id)
    except PermanentFailure:
        return False
    try:
        since = datetime.fromisoformat(seen)
        return any(clean_text(c.body) == args.comment and c.created_at > since for c in comments)
    except (ValueError, TypeError):  # a stamp we cannot read, or a naive one beside an aware one: no proof
        return False
