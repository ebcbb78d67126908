"""``workflow.customer_update_digest``: read a customer from the CRM, post a digest to Slack, and record
that it was sent as a low-priority CRM ticket. Approved once as a whole.

Compensations: the Slack post is undone with ``chat.delete``, the CRM record by deleting the ticket; the
read needs none. Each step sends its own idempotency key, so a step re-run after a crash is a replay.

A workflow is no way around a tool's rules: each step runs under its own tool's policy (checked at the
preview, with the args the step will send: a paused ``slack.post_message`` refuses the workflow at intake
in that policy's words) and rate limits (the Slack post takes its channel's token at the commit). The
customer is read at the preview, so the reviewer sees the exact Slack text (the customer's name included;
an unknown customer is a 400 at intake), and the commit posts that text as approved, kept in the preview's
snapshot, never a text rendered again from a later read.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from adapters import connections, http, policy, ratelimit, registry
from adapters.crm import client as crm
from adapters.crm.schemas import TicketEnvelope, User, UserSearch
from adapters.errors import InvalidArgs, PermanentFailure
from adapters.normalize import ArgsModel, Channel, CleanText, Email
from adapters.registry import Context, Preview, Risk, Step
from adapters.slack import messages as slack


class DigestArgs(ArgsModel):
    customer_email: Email = Field(description="The CRM customer the digest is about.")
    channel: Channel = Field(description="Slack channel for the digest ('#name' or an id).")
    summary: Annotated[str, Field(min_length=1, max_length=1000), CleanText] = Field(
        description="What to tell the channel about this customer."
    )


UNKNOWN_CUSTOMER = "No CRM customer has that email."
CUSTOMER_CHANGED = (
    "The CRM customer with that email is no longer the one previewed (#{previewed}); nothing was posted."
)


def step_policy_args(args: DigestArgs) -> dict[str, dict[str, Any]]:
    """What each step's tool policy judges, by tool: the fields the agent's args decide (the workflow's own
    fixed values, such as the record's tags, are not the agent's to be refused for)."""
    return {
        "crm.get_customer": {"email": args.customer_email},
        slack.TOOL: {"channel": args.channel, "text": args.summary},
        "crm.create_ticket": {
            "subject": f"Digest sent to {args.channel}",
            "description": args.summary,
            "customer_email": args.customer_email,
        },
    }


def _find_customer(email: str) -> tuple[User | None, int]:
    response = crm.call("GET", "users/search.json", params={"query": f"email:{email}"})
    users = http.parse(UserSearch, response, crm.DOWNSTREAM).users
    return (users[0] if users else None), http.attempts_of(response)


def _prefix(customer_id: int, name: str) -> str:
    return f"Customer update: {name} (CRM #{customer_id}): "


def preview(args: DigestArgs, ctx: Context) -> Preview:
    # Each step under its own tool's policy, before anything is read: the first refusal answers.
    risks: list[Risk] = [
        policy.check(registry.get(tool), step_args, ctx) for tool, step_args in step_policy_args(args).items()
    ]
    customer, _ = _find_customer(args.customer_email)
    if customer is None:
        raise InvalidArgs(
            errors=[{"loc": ["args", "customer_email"], "msg": UNKNOWN_CUSTOMER, "type": "not_found"}],
            detail=UNKNOWN_CUSTOMER,
        )
    name = customer.name or "(no name)"
    # The customer's name comes from the CRM, not from the agent: always escaped. The agent's summary goes
    # the way slack.post_message's policy lets a message go (escaped, or formatting spelled out).
    body = slack.render_for(args.summary, ctx)
    text = slack.escape(_prefix(customer.id, name)) + body.sent
    display = _prefix(customer.id, name) + body.display
    if body.risk is not None:
        risks.append(body.risk)
    changes = [
        {
            "field": "step 1: read customer",
            "before": None,
            "after": f"{args.customer_email}: {name} (CRM #{customer.id})",
        },
        # Exactly the text chat.postMessage will receive.
        {"field": "step 2: post to Slack", "before": None, "after": f"{args.channel}: {text}"},
    ]
    if display != text:
        changes.append({"field": "step 2: as Slack shows it", "before": None, "after": display})
    changes.append(
        {"field": "step 3: record in CRM", "before": None, "after": "low-priority ticket tagged 'digest'"}
    )
    highest: Risk = max(risks, key=lambda level: policy.RISK_ORDER[level])
    return Preview(
        summary=f"Digest about {args.customer_email} to {args.channel}, recorded in the CRM",
        changes=changes,
        snapshot={
            "customer": {"customer_id": customer.id, "name": name},
            "post_digest": {"channel": args.channel, "text": text},
        },
        notes=["If a later step fails for good, the Slack post and the CRM record are undone.", *body.notes],
        risk=highest,
    )


def lookup_customer(
    args: DigestArgs, results: dict[str, dict[str, Any]], key: str, snapshot: dict[str, Any]
) -> dict[str, Any]:
    customer, attempts = _find_customer(args.customer_email)
    if customer is None:
        raise PermanentFailure(UNKNOWN_CUSTOMER, attempts=attempts)
    previewed = (snapshot.get("customer") or {}).get("customer_id")
    if previewed is not None and previewed != customer.id:
        raise PermanentFailure(CUSTOMER_CHANGED.format(previewed=previewed), attempts=attempts)
    return {"customer_id": customer.id, "name": customer.name or "(no name)"}


def post_digest(
    args: DigestArgs, results: dict[str, dict[str, Any]], key: str, snapshot: dict[str, Any]
) -> dict[str, Any]:
    approved = (snapshot.get("post_digest") or {}).get("text")
    if approved is None:  # previewed before the preview showed the text: the safe rendering, all escaped
        customer = results["lookup_customer"]
        approved = slack.escape(_prefix(customer["customer_id"], customer["name"]) + args.summary)
    # slack.post_message's rate limits (one message a second per channel): over them the commit is deferred
    # and resumes here, the lookup kept.
    conn = connections.current(slack.DOWNSTREAM)
    ratelimit.enforce(
        slack.TOOL,
        {"channel": args.channel, "text": approved},
        tenant=conn.tenant,
        connection=conn.key if conn.own else "",
    )
    outcome = slack.post(args.channel, approved, key)
    channel, _, ts = outcome.external_id.partition(":")
    return {"channel": channel, "ts": ts}


def delete_digest(args: DigestArgs, result: dict[str, Any]) -> None:
    conn = connections.current(slack.DOWNSTREAM)  # the tenant's Slack, where the digest was posted
    response = http.call(
        slack.DOWNSTREAM,
        "POST",
        f"{conn.base_url}/chat.delete",
        json={"channel": result["channel"], "ts": result["ts"]},
        headers={"Authorization": f"Bearer {conn.token()}"},
        breaker_key=conn.key,
        public_only=conn.public_only,
    )
    body = http.parse(slack.PostMessageResponse, response, slack.DOWNSTREAM)
    if not body.ok and body.error != "message_not_found":  # already gone is as good as undone
        raise PermanentFailure(f"Slack refused chat.delete: {body.error}")


def record_in_crm(
    args: DigestArgs, results: dict[str, dict[str, Any]], key: str, snapshot: dict[str, Any]
) -> dict[str, Any]:
    post = results["post_digest"]
    response = crm.call(
        "POST",
        "tickets.json",
        idempotency_key=key,
        json={
            "ticket": {
                "subject": f"Digest sent to {post['channel']}",
                "comment": {
                    "body": f"Customer update posted to Slack ({post['channel']} at {post['ts']}): {args.summary}"
                },
                "priority": "low",
                "requester": {"email": args.customer_email},
                "tags": ["digest"],
            }
        },
    )
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
    Step(
        "lookup_customer", "read", "Read the customer from the CRM", lookup_customer, tool="crm.get_customer"
    ),
    Step(
        "post_digest",
        "write",
        "Post the digest to Slack",
        post_digest,
        compensate=delete_digest,
        tool=slack.TOOL,
    ),
    Step(
        "record_in_crm",
        "write",
        "Record the digest as a CRM ticket",
        record_in_crm,
        compensate=delete_record,
        tool="crm.create_ticket",
    ),
)
