"""The sandbox CRM: a faithful-enough Zendesk Tickets API subset, in memory.

Mirrors Zendesk where our adapter depends on it: 401 without the bearer token, 422 ``RecordInvalid``
with ``details`` for bad input, 404 ``RecordNotFound``, ``Idempotency-Key`` on ticket creation (same key
and body -> the same ticket, ``x-idempotency-lookup: hit``; same key, other body -> 400
``IdempotentRequestError``), ``safe_update`` + ``updated_stamp`` -> 409 ``UpdateConflict``, and
``GET tickets/{id}/comments.json`` (oldest first; ``sort_order=desc`` for newest first), ``?include=users``
on a ticket (its requester sideloaded).
One extension: ``Idempotency-Key`` is honoured on PUT too, so a retried update is not applied twice.
``POST /_sandbox/config`` ``{"put_idempotency": false}`` turns it off (as on a real Zendesk, where a PUT
retried after a lost answer meets its own write: 409) until the next ``/_sandbox/reset``.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.sandbox.state import Reply, Store

PRIORITIES = {"low", "normal", "high", "urgent"}
STATUSES = {"new", "open", "pending", "hold", "solved", "closed"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TICKET_PATH = re.compile(r"^/crm/api/v2/tickets/(\d+)\.json$")
_COMMENTS_PATH = re.compile(r"^/crm/api/v2/tickets/(\d+)/comments\.json$")
_AGENT_PAGE = re.compile(r"^/crm/agent/tickets/(\d+)$")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _next_stamp(store: Store, previous: str | None = None) -> str:
    # Zendesk stamps have one-second resolution; keep them strictly increasing so that every write
    # moves updated_at (what stale detection relies on) even when two land within the same second.
    now = datetime.now(UTC).replace(microsecond=0)
    if previous:
        prev = datetime.strptime(previous, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        now = max(now, prev + timedelta(seconds=1))
    return _iso(now)


def _invalid(details: dict[str, list[dict[str, str]]]) -> Reply:
    return Reply(
        422, {"error": "RecordInvalid", "description": "Record validation errors", "details": details}
    )


def _validate(ticket: Any, *, creating: bool) -> dict[str, list[dict[str, str]]]:
    if not isinstance(ticket, dict):
        return {"base": [{"description": "ticket must be an object", "error": "InvalidValue"}]}
    details: dict[str, list[dict[str, str]]] = {}

    def bad(field: str, description: str, error: str = "InvalidValue") -> None:
        details.setdefault(field, []).append({"description": description, "error": error})

    comment = ticket.get("comment")
    body = comment.get("body") if isinstance(comment, dict) else ticket.get("description")
    if creating and (not isinstance(body, str) or not body.strip()):
        bad("description", "Description: cannot be blank", "BlankValue")
    if comment is not None and (not isinstance(comment, dict) or not isinstance(comment.get("body"), str)):
        bad("comment", "Comment: body must be a string")
    if "subject" in ticket and not isinstance(ticket["subject"], str | None):
        bad("subject", "Subject: must be a string")
    if ticket.get("priority") is not None and ticket["priority"] not in PRIORITIES:
        bad("priority", f"Priority: {ticket['priority']!r} is not valid")
    if ticket.get("status") is not None and ticket["status"] not in STATUSES:
        bad("status", f"Status: {ticket['status']!r} is not valid")
    tags = ticket.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        bad("tags", "Tags: must be a list of strings")
    requester = ticket.get("requester")
    if requester is not None:
        email = requester.get("email") if isinstance(requester, dict) else None
        if not isinstance(email, str) or not _EMAIL.match(email):
            bad("requester", "Requester: email is invalid")
    return details


def _fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _idempotent(store: Store, scope: str, key: str | None, body: Any, perform: Any) -> Reply:
    """Run ``perform`` once per key; replays return the first answer. The caller holds the lock."""
    if not key:
        return perform()
    fingerprint = _fingerprint(body)
    seen = store.idempotency.get((scope, key))
    if seen is not None:
        if seen[0] != fingerprint:
            return Reply(
                400,
                {
                    "error": "IdempotentRequestError",
                    "description": "Request parameters do not match the original request for this idempotency key",
                },
            )
        first = seen[1]
        return Reply(first.status, first.body, {"x-idempotency-lookup": "hit"})
    reply = perform()
    if reply.status < 300:
        store.idempotency[(scope, key)] = (fingerprint, reply)
    reply.headers["x-idempotency-lookup"] = "miss"
    return reply


def _user_for(store: Store, email: str) -> dict[str, Any]:
    email = email.lower()
    for user in store.users.values():
        if user["email"] == email:
            return user
    user_id = store.next_user_id
    store.next_user_id += 1
    user = {
        "id": user_id,
        "name": email.split("@")[0],
        "email": email,
        "role": "end-user",
        "created_at": _next_stamp(store),
    }
    store.users[user_id] = user
    return user


def create_ticket(store: Store, body: Any, key: str | None) -> Reply:
    ticket_in = body.get("ticket") if isinstance(body, dict) else None
    details = _validate(ticket_in, creating=True)
    if details:
        return _invalid(details)
    assert isinstance(ticket_in, dict)

    def perform() -> Reply:
        ticket_id = store.next_ticket_id
        store.next_ticket_id += 1
        stamp = _next_stamp(store)
        requester = ticket_in.get("requester")
        requester_id = _user_for(store, requester["email"])["id"] if requester else None
        comment = ticket_in.get("comment") or {"body": ticket_in.get("description", "")}
        ticket = {
            "id": ticket_id,
            "url": f"/crm/api/v2/tickets/{ticket_id}.json",
            "subject": ticket_in.get("subject"),
            "description": comment["body"],
            "priority": ticket_in.get("priority"),
            "status": ticket_in.get("status") or "new",
            "requester_id": requester_id,
            "tags": list(dict.fromkeys(ticket_in.get("tags") or [])),
            "comments": [_comment(store, comment["body"], True, requester_id, stamp)],
            "created_at": stamp,
            "updated_at": stamp,
        }
        store.tickets[ticket_id] = ticket
        return Reply(201, {"ticket": _public(ticket)}, {"Location": ticket["url"]})

    return _idempotent(store, "POST tickets", key, body, perform)


def _comment(store: Store, body: str, public: bool, author_id: int | None, stamp: str) -> dict[str, Any]:
    comment_id = store.next_comment_id
    store.next_comment_id += 1
    return {
        "id": comment_id,
        "type": "Comment",
        "author_id": author_id,
        "body": body,
        "public": public,
        "created_at": stamp,
    }


def _public(ticket: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in ticket.items() if k != "comments"}


def get_ticket(store: Store, ticket_id: int, include: str = "") -> Reply:
    ticket = store.tickets.get(ticket_id)
    if ticket is None:
        return Reply(404, {"error": "RecordNotFound", "description": "Not found"})
    body: dict[str, Any] = {"ticket": _public(ticket)}
    if "users" in include.split(","):  # Zendesk's sideloading: the ticket's requester
        requester = store.users.get(ticket["requester_id"])
        body["users"] = [requester] if requester else []
    return Reply(200, body)


def list_comments(store: Store, ticket_id: int, sort_order: str) -> Reply:
    ticket = store.tickets.get(ticket_id)
    if ticket is None:
        return Reply(404, {"error": "RecordNotFound", "description": "Not found"})
    comments = ticket["comments"][::-1] if sort_order == "desc" else ticket["comments"]
    return Reply(
        200, {"comments": comments, "count": len(comments), "next_page": None, "previous_page": None}
    )


def update_ticket(store: Store, ticket_id: int, body: Any, key: str | None) -> Reply:
    ticket = store.tickets.get(ticket_id)
    if ticket is None:
        return Reply(404, {"error": "RecordNotFound", "description": "Not found"})
    changes = body.get("ticket") if isinstance(body, dict) else None
    details = _validate(changes, creating=False)
    if details:
        return _invalid(details)
    assert isinstance(changes, dict)

    def perform() -> Reply:
        if changes.get("safe_update") and changes.get("updated_stamp") != ticket["updated_at"]:
            return Reply(
                409,
                {"error": "UpdateConflict", "description": "The ticket was updated after updated_stamp"},
            )
        for field in ("subject", "priority", "status"):
            if field in changes:
                ticket[field] = changes[field]
        if "tags" in changes:
            ticket["tags"] = list(dict.fromkeys(changes["tags"]))
        stamp = _next_stamp(store, ticket["updated_at"])
        comment = changes.get("comment")
        if isinstance(comment, dict):
            public = bool(comment.get("public", True))
            ticket["comments"].append(_comment(store, comment["body"], public, None, stamp))
        ticket["updated_at"] = stamp
        return Reply(200, {"ticket": _public(ticket)})

    scope = f"PUT tickets/{ticket_id}"
    return _idempotent(store, scope, key if store.put_idempotency else None, body, perform)


def search_users(store: Store, query: str) -> Reply:
    query = query.strip().lower()
    if query.startswith("email:"):
        email = query.removeprefix("email:").strip()
        users = [u for u in store.users.values() if u["email"] == email]
    else:
        users = [
            u for u in store.users.values() if query and (query in u["email"] or query in u["name"].lower())
        ]
    return Reply(200, {"users": users, "count": len(users), "next_page": None, "previous_page": None})


def agent_page(store: Store, ticket_id: int) -> Reply:
    """The ticket as a person sees it (Zendesk's ``/agent/tickets/{id}``), where receipts link. A bare HTML
    page with no token asked: the sandbox is a development tool bound to loopback, its tickets made up."""
    ticket = store.tickets.get(ticket_id)
    if ticket is None:
        return Reply(404, b"<!doctype html><title>Not found</title><p>No such ticket.</p>", _HTML)
    rows = "".join(
        f"<tr><th>{name}</th><td>{html.escape(str(ticket.get(name)))}</td></tr>"
        for name in ("subject", "status", "priority", "tags", "updated_at")
    )
    comments = "".join(f"<li>{html.escape(c['body'])}</li>" for c in ticket["comments"])
    page = (
        f"<!doctype html><meta charset=utf-8><title>Ticket #{ticket_id}</title>"
        f"<h1>Ticket #{ticket_id} (sandbox CRM)</h1><table>{rows}</table><ol>{comments}</ol>"
    )
    return Reply(200, page.encode(), dict(_HTML))


_HTML = {"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": "default-src 'none'"}


def route(store: Store, method: str, path: str, query: dict[str, str], body: Any, headers: Any) -> Reply:
    page = _AGENT_PAGE.match(path)
    if page and method == "GET":
        with store.lock:
            return agent_page(store, int(page.group(1)))
    if headers.get("Authorization", "") != f"Bearer {store.crm_token}":
        return Reply(401, {"error": "Couldn't authenticate you"})
    key = headers.get("Idempotency-Key")
    with store.lock:
        if path == "/crm/api/v2/tickets.json" and method == "POST":
            return create_ticket(store, body, key)
        if path == "/crm/api/v2/users/search.json" and method == "GET":
            return search_users(store, query.get("query", ""))
        match = _TICKET_PATH.match(path)
        if match and method == "GET":
            return get_ticket(store, int(match.group(1)), query.get("include", ""))
        if match and method == "PUT":
            return update_ticket(store, int(match.group(1)), body, key)
        if match and method == "DELETE":
            return (
                Reply(204, None)
                if store.tickets.pop(int(match.group(1)), None)
                else Reply(404, {"error": "RecordNotFound", "description": "Not found"})
            )
        comments = _COMMENTS_PATH.match(path)
        if comments and method == "GET":
            return list_comments(store, int(comments.group(1)), query.get("sort_order", "asc"))
    return Reply(404, {"error": "InvalidEndpoint", "description": "Not found"})
