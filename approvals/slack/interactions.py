"""``POST /api/v1/slack/interactions/``: Slack's interactivity Request URL, one for every tenant.

Order, for every request: the body is read raw and its signature verified (slack-sdk's
``SignatureVerifier``: ``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``, the timestamp within 5 minutes, a
constant-time compare) before anything of it is parsed. The tenant is the one whose Slack connection has
the payload's team id: the signature is checked against the signing secrets of the connections that have
a team id, and the payload's team must be the team of the connection whose secret signed it. Anything
else is a 401 and records nothing.

A click decides through the same services as the web UI and the API (``proposal_approve``,
``proposal_reject``: four-eyes, state checks, the args hash the button carried, the audit event with
``where.channel = "slack"``), as the reviewer the Slack user is mapped to (``Membership.slack_user_id``).
A click that decides nothing is answered with an ephemeral message saying why (a reviewer outside the group
the proposal is routed to gets the service's refusal, like any other); an approval that leaves the quorum
short gets one saying it was recorded ("1 of 2 approvals"), and the message shows the count. Slack is answered at once:
the calls back to Slack (the message's update, an ephemeral answer) go through the outbox to the worker;
only the reason modal is opened inside the request, in at most ``MODAL_DEADLINE`` seconds, because its
``trigger_id`` expires 3 seconds after the click. Nothing is kept in process memory: the button and the modal carry what is needed.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any
from urllib.parse import parse_qs

import redis
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from slack_sdk.signature import SignatureVerifier

from adapters import connections, http
from adapters.errors import DownstreamError
from adapters.models import Connection
from adapters.slack import web
from approvals import errors, rules, services
from approvals.models import Membership, Proposal, Status
from approvals.slack import blocks, notify
from audit.where import where_from

logger = logging.getLogger(__name__)

UNSIGNED = (
    "The request is not signed by a Slack workspace connected to the gateway (or it is older than 5 minutes)."
)
NOT_MAPPED = (
    "You are not a reviewer of this tenant in the gateway (no reviewer has your Slack user id); "
    "nothing was recorded. Ask an admin to set your Slack user id (create_reviewer --slack-user-id)."
)
UNKNOWN_PROPOSAL = "This proposal is not known to the gateway; nothing was recorded."
ARGS_CHANGED = "This proposal changed since this message was posted; open it to review the new version. Nothing was recorded."
APPROVAL_RECORDED = (
    "Your approval is recorded: {given} of {required} approvals. It is committed once the others approve."
)
REASON_MISSING = "Say why: the agent reads the reason."
MODAL_FAILED = "Slack did not open the form in time; click the button again. Nothing was recorded."
# Seconds the inline views.open may take in all (retries included): Slack waits 3 s for our answer.
MODAL_DEADLINE = 2.0


def _unauthorized() -> JsonResponse:
    return JsonResponse({"error": "invalid_signature", "detail": UNSIGNED}, status=401)


def verified_connection(
    body: bytes, timestamp: str | None, signature: str | None
) -> list[connections.Resolved]:
    """The Slack connections whose signing secret signed ``body`` (normally one). Slack names the
    workspace only inside the payload, which is not parsed before it is verified: so each connected
    workspace's secret is tried, each compare in constant time (``SignatureVerifier.is_valid``)."""
    if not timestamp or not signature:
        return []
    # One query for every workspace's secret, and a connection resolved only for the one that signed: an
    # unsigned request costs one query and one HMAC per connected workspace, never a query per tenant.
    rows = (
        Connection.objects.filter(system="slack")
        .exclude(team_id="")
        .exclude(signing_secret_encrypted="")
        .values_list("tenant", "signing_secret_encrypted")
    )
    signers = [
        tenant
        for tenant, secret in rows
        if SignatureVerifier(connections.decrypt(secret)).is_valid(
            body=body, timestamp=timestamp, signature=signature
        )
    ]
    return [connections.resolve(tenant, "slack") for tenant in signers]


@csrf_exempt
@require_POST
def interactions(request: HttpRequest) -> HttpResponse:
    try:
        body = request.body
    except RequestDataTooBig:
        return JsonResponse({"error": "payload_too_large"}, status=413)
    signed_by = verified_connection(
        body, request.headers.get("X-Slack-Request-Timestamp"), request.headers.get("X-Slack-Signature")
    )
    if not signed_by:
        return _unauthorized()
    try:
        payload = json.loads(parse_qs(body.decode("utf-8"), strict_parsing=True)["payload"][0])
        team = str((payload.get("team") or {}).get("id") or payload.get("team_id") or "")
        kind = str(payload.get("type") or "")
        user = str((payload.get("user") or {}).get("id") or "")
    except (ValueError, KeyError, AttributeError, UnicodeDecodeError):
        return JsonResponse({"error": "invalid_payload"}, status=400)
    matching = [c for c in signed_by if c.team_id == team]
    if len(matching) != 1:
        return _unauthorized()  # signed by one workspace's app, naming another workspace
    conn = matching[0]
    if kind == "block_actions":
        _click(request, conn, payload, user)
        return HttpResponse(status=200)
    callback_id = (payload.get("view") or {}).get("callback_id")
    if kind == "view_submission" and callback_id in (blocks.REJECT_MODAL, blocks.CHANGES_MODAL):
        return _reason_submitted(request, conn, payload, user, changes=callback_id == blocks.CHANGES_MODAL)
    return HttpResponse(status=200)  # an interaction the gateway does not act on (e.g. "Open", a link)


def _reviewer(tenant: str, user: str) -> Any:
    member = (
        Membership.objects.select_related("user")
        .filter(tenant__slug=tenant, slack_user_id=user, user__is_active=True)
        .first()
        if user
        else None
    )
    return member.user if member is not None and member.can_review else None


def _proposal(tenant: str, value: str) -> tuple[Proposal | None, str]:
    """The proposal a button or modal names (``<id>:<args hash>``), in ``tenant`` only, and that hash."""
    pk, _, args_hash = value.partition(":")
    try:
        proposal_id = uuid.UUID(pk)
    except ValueError:
        return None, ""
    found = (
        Proposal.objects.select_related("tenant", "agent").filter(pk=proposal_id, tenant__slug=tenant).first()
    )
    return found, args_hash


def _ephemeral(conn: connections.Resolved, channel: str, user: str, text: str) -> None:
    if channel and user:
        notify.stage_ephemeral(tenant=conn.tenant, channel=channel, user=user, text=text)


def _click(request: HttpRequest, conn: connections.Resolved, payload: dict[str, Any], user: str) -> None:
    actions = payload.get("actions") or []
    action = actions[0] if actions and isinstance(actions[0], dict) else {}
    action_id = str(action.get("action_id") or "")
    if action_id not in (blocks.APPROVE, blocks.REJECT, blocks.CHANGES):
        return
    channel = str(
        (payload.get("channel") or {}).get("id") or (payload.get("container") or {}).get("channel_id") or ""
    )
    reviewer = _reviewer(conn.tenant, user)
    if reviewer is None:
        _ephemeral(conn, channel, user, NOT_MAPPED)
        return
    proposal, args_hash = _proposal(conn.tenant, str(action.get("value") or ""))
    if proposal is None:
        _ephemeral(conn, channel, user, UNKNOWN_PROPOSAL)
        return
    if args_hash != proposal.args_hash:
        _ephemeral(conn, channel, user, ARGS_CHANGED)
        return
    try:
        if action_id == blocks.APPROVE:
            approved = services.proposal_approve(
                proposal=proposal,
                reviewer=reviewer,
                where=where_from(request, channel="slack"),
                args_hash=args_hash,  # checked again under the row lock: an edit may land in between
            )
            if approved.status == Status.PENDING:
                # The quorum is not met yet: the message shows the new count (the service staged its update);
                # the reviewer is told their click counted.
                state = rules.approvals_state(approved)
                _ephemeral(
                    conn,
                    channel,
                    user,
                    APPROVAL_RECORDED.format(given=len(state["given"]), required=state["required"]),
                )
        else:
            # Reject / Request changes: the same checks as the decision itself, before a modal is opened
            # for one that cannot decide.
            services.require_reviewer(proposal, reviewer)
            if proposal.status != Status.PENDING:
                raise errors.InvalidTransition(
                    errors.INVALID_STATE.format(status=proposal.status, action="decided", allowed="pending")
                )
            _open_modal(
                conn,
                trigger_id=str(payload.get("trigger_id") or ""),
                view=blocks.reason_modal(proposal, action=action_id, channel=channel),
                channel=channel,
                user=user,
            )
    except errors.DomainError as exc:
        _ephemeral(conn, channel, user, exc.detail)


def _open_modal(
    conn: connections.Resolved, *, trigger_id: str, view: dict[str, Any], channel: str, user: str
) -> None:
    """Open the reason modal now, inside this request: Slack's ``trigger_id`` is good for 3 seconds, so
    handing ``views.open`` to the worker (the outbox) loses it whenever the worker is busy. One call, bounded
    by ``MODAL_DEADLINE`` so Slack is still answered within its 3 seconds; if it fails, the reviewer is told
    to click again (nothing was decided)."""
    try:
        with http.deadline(MODAL_DEADLINE):
            web.call(conn, "views.open", {"trigger_id": trigger_id, "view": view})
    except (DownstreamError, redis.RedisError) as exc:
        logger.warning("slack views.open failed: %s", getattr(exc, "detail", type(exc).__name__))
        _ephemeral(conn, channel, user, MODAL_FAILED)


def _reason_submitted(
    request: HttpRequest, conn: connections.Resolved, payload: dict[str, Any], user: str, *, changes: bool
) -> HttpResponse:
    view = payload.get("view") or {}
    value = str(view.get("private_metadata") or "").rpartition(":")[0]  # "<id>:<args hash>:<channel>"
    state = ((view.get("state") or {}).get("values") or {}).get(blocks.REASON_BLOCK) or {}
    reason = str((state.get(blocks.REASON_INPUT) or {}).get("value") or "").strip()

    def error(text: str) -> JsonResponse:
        # Shown in the modal, under the reason (Slack's "response_action": "errors").
        return JsonResponse({"response_action": "errors", "errors": {blocks.REASON_BLOCK: text[:150]}})

    reviewer = _reviewer(conn.tenant, user)
    if reviewer is None:
        return error(NOT_MAPPED)
    proposal, args_hash = _proposal(conn.tenant, value)
    if proposal is None:
        return error(UNKNOWN_PROPOSAL)
    if args_hash != proposal.args_hash:
        return error(ARGS_CHANGED)
    if not services.reason_given(reason):
        return error(REASON_MISSING)
    decide = services.proposal_request_changes if changes else services.proposal_reject
    try:
        decide(
            proposal=proposal, reviewer=reviewer, reason=reason, where=where_from(request, channel="slack")
        )
    except errors.DomainError as exc:
        return error(exc.detail)
    return HttpResponse(status=200)  # closes the modal; the message is updated by the worker
