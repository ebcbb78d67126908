"""Where the CRM lives and how we authenticate; every call goes through ``adapters.http``.

The base URL and token are the current tenant's CRM connection (``adapters.connections.current``): its own
when it has one, else ``CRM_BASE_URL`` / ``CRM_API_TOKEN``. Each connection has its own breaker.
"""

from __future__ import annotations

from typing import Any

import requests

from adapters import connections, http
from adapters.crm.schemas import Comment, CommentList, Ticket, TicketEnvelope

DOWNSTREAM = "crm"


def url(path: str) -> str:
    return f"{connections.current(DOWNSTREAM).base_url}/api/v2/{path}"


def ticket_url(ticket_id: int) -> str:
    """The ticket as a person sees it (Zendesk's agent interface): where a reviewer's link goes."""
    return f"{connections.current(DOWNSTREAM).base_url}/agent/tickets/{ticket_id}"


def ticket_api_url(ticket_id: int) -> str:
    """The ticket's API resource (JSON): kept in the receipt's data, for programs."""
    return url(f"tickets/{ticket_id}.json")


def call(method: str, path: str, **kwargs: Any) -> requests.Response:
    conn = connections.current(DOWNSTREAM)
    headers = {"Authorization": f"Bearer {conn.token()}", "Accept": "application/json"}
    return http.call(
        DOWNSTREAM,
        method,
        f"{conn.base_url}/api/v2/{path}",
        headers=headers,
        breaker_key=conn.key,
        public_only=conn.public_only,
        **kwargs,
    )


def get_ticket(ticket_id: int) -> tuple[Ticket, int]:
    """The live ticket and the attempts it took."""
    response = call("GET", f"tickets/{ticket_id}.json")
    return http.parse(TicketEnvelope, response, DOWNSTREAM).ticket, http.attempts_of(response)


def get_ticket_for_people(ticket_id: int) -> TicketEnvelope:
    """The live ticket with its users sideloaded (one request), for a preview a person reads."""
    response = call("GET", f"tickets/{ticket_id}.json", params={"include": "users"})
    return http.parse(TicketEnvelope, response, DOWNSTREAM)


def get_comments(ticket_id: int) -> list[Comment]:
    """The ticket's comments, newest first (Zendesk's first page: 100)."""
    response = call("GET", f"tickets/{ticket_id}/comments.json", params={"sort_order": "desc"})
    return http.parse(CommentList, response, DOWNSTREAM).comments
