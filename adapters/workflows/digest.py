"""``workflow.customer_update_digest``: read a customer from the CRM, post a digest to Slack, and record
that it was sent as a low-priority CRM ticket. Approved once as a whole.

Compensations: the Slack post is undone with ``chat.delete``, the CRM record by deleting the ticket; the
read needs none. Each step sends its own idempotency key, so a step re-run after a crash is a replay.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from adapters import connections, http
from adapters.crm import client as crm
from adapters.crm.schemas import TicketEnvelope, UserSearch
from adapters.errors import PermanentFailure
from adapters.normalize import ArgsModel, Channel, CleanText, Email
from adapters.registry import Preview, Step
from adapters.slack import messages as slack


class DigestArgs(ArgsModel):
    customer_email: Email = Field(description="The CRM customer the digest is about.")
    channel: Channel = Field(description="Slack channel for the digest ('#name' or an id).")
    summary: Annotated[str, Field(min_length=1, max_length=1000), CleanText] = Field(
        description="What to tell the channel about this customer."
    )


def preview(args: DigestArgs) -> Preview:
    return Preview(
        summary=f"Digest about {args.customer_email} to {args.channel}, recorded in the CRM",
        changes=[
            {"field": "step 1: read customer", "before": None, "after": args.customer_email},
            {"field": "step 2: post to Slack", "before": None, "after": f"{args.channel}: {args.summary}"},
            {"field": "step 3: record in CRM", "before": None, "after": "low-priority ticket tagged 'digest'"},
        ],
        notes=["If a later step fails for good, the Slack post and the CRM record are undone."],
    )


def lookup_customer(args: DigestArgs, results: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    response = crm.call("GET", "users/search.json", params={"query": f"email:{args.customer_email}"})
    users = http.parse(UserSearch, response, crm.DOWNSTREAM).users
    if not users:
        raise PermanentFailure("No CRM customer has that email.", attempts=http.attempts_of(response))
    return {"customer_id": users[0].id, "name": users[0].name or "(no name)"}


def post_digest(args: DigestArgs, results: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    customer = results["lookup_customer"]
    text = f"Customer update: {customer['name']} (CRM #{customer['customer_id']}): {args.summary}"
    outcome = slack.execute(slack.PostMessageArgs(channel=args.channel, text=text), key, {})
    channel, _, ts = outcome.external_id.partition(":")
    return {"channel": channel, "ts": ts}


def delete_digest(args: DigestArgs, result: dict[str, Any]) -> None:
    conn = connections.current(slack.DOWNSTREAM)  # the tenant's Slack, where the digest was posted
    response = http.call(
        slack.DOWNSTREAM, "POST", f"{conn.base_url}/chat.delete",
        json={"channel": result["channel"], "ts": result["ts"]},
        headers={"Authorization": f"Bearer {conn.token()}"},
        breaker_key=conn.key,
    )
    body = http.parse(slack.PostMessageResponse, response, slack.DOWNSTREAM)
    if not body.ok and body.error != "message_not_found":  # already gone is as good as undone
        raise PermanentFailure(f"Slack refused chat.delete: {body.error}")


def record_in_crm(args: DigestArgs, results: dict[str, dict[str, Any]], key: str) -> dict[str, Any]:
    post = results["post_digest"]
    response = crm.call("POST", "tickets.json", idempotency_key=key, json={"ticket": {
        "subject": f"Digest sent to {post['channel']}",
        "comment": {"body": f"Customer update posted to Slack ({post['channel']} at {post['ts']}): {args.summary}"},
        "priority": "low",
        "requester": {"email": args.customer_email},
        "tags": ["digest"],
    }})
    ticket = http.parse(TicketEnvelope, response, crm.DOWNSTREAM).ticket
    connections.record_created(crm.DOWNSTREAM, ticket.id)  # created by the gateway for this tenant
    return {"ticket_id": ticket.id}


def delete_record(args: DigestArgs, result: dict[str, Any]) -> None:
    try:
        crm.call("DELETE", f"tickets/{result['ticket_id']}.json")
    except PermanentFailure as exc:
        if exc.status != 404:  # already gone is as good as undone
            raise


STEPS = (
    Step("lookup_customer", "read", "Read the customer from the CRM", lookup_customer),
    Step("post_digest", "write", "Post the digest to Slack", post_digest, compensate=delete_digest),
    Step("record_in_crm", "write", "Record the digest as a CRM ticket", record_in_crm, compensate=delete_record),
)
