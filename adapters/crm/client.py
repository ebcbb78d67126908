"""Where the CRM lives and how we authenticate; every call goes through ``adapters.http``."""

from __future__ import annotations

from typing import Any

import requests
from django.conf import settings

from adapters import http
from adapters.crm.schemas import Comment, CommentList, Ticket, TicketEnvelope

DOWNSTREAM = "crm"


def url(path: str) -> str:
    return f"{settings.CRM_BASE_URL}/api/v2/{path}"


def ticket_url(ticket_id: int) -> str:
    return url(f"tickets/{ticket_id}.json")


def call(method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {settings.CRM_API_TOKEN}", "Accept": "application/json"}
    return http.call(DOWNSTREAM, method, url(path), headers=headers, **kwargs)


def get_ticket(ticket_id: int) -> tuple[Ticket, int]:
    """The live ticket and the attempts it took."""
    response = call("GET", f"tickets/{ticket_id}.json")
    return http.parse(TicketEnvelope, response, DOWNSTREAM).ticket, http.attempts_of(response)


def get_comments(ticket_id: int) -> list[Comment]:
    """The ticket's comments, newest first (Zendesk's first page: 100)."""
    response = call("GET", f"tickets/{ticket_id}/comments.json", params={"sort_order": "desc"})
    return http.parse(CommentList, response, DOWNSTREAM).comments
