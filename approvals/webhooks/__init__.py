"""Signed events to agents (outbound) and from the CRM (inbound).

Outbound: an agent registers a callback URL; every decision, commit, failure, expiry and staleness of its
proposals becomes a ``WebhookDelivery`` row, staged in the outbox in the same transaction as the change,
POSTed by a worker with ``X-Acme-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``
and ``X-Acme-Event-Id``, retried with backoff until a 2xx or the attempts run out. Agents deduplicate on the
event id (a delivery whose answer was lost is sent again).

- ``staging``       what is sent: ``stage`` (the delivery row and its payload), ``EVENTS``;
- ``delivery``      sending: ``deliver`` (one attempt, backoff), ``delivery_redeliver``, ``redispatch``;
- ``signing``       ``secret_for``, ``sign``, ``verify``, ``SIGNATURE_HEADER``;
- ``callback_url``  ``check_callback_url``, ``UnsafeURL``: where a delivery may go.

Inbound (the CRM's signed events) is ``approvals.inbound``; its names are re-exported here. Callers import
this package (``from approvals import webhooks``); the names below are its public surface.
"""

from __future__ import annotations

from approvals.inbound import (
    FOREIGN_EVENT,
    NAMES_ANOTHER,
    NOT_BOUND,
    TOLERANCE,
    BadSignature,
    ForeignEvent,
    InboundKey,
    _parse_timestamp,
    check_bound,
    inbound_key,
    inbound_record,
    verify_inbound,
    zendesk_signature,
)
from approvals.webhooks.callback_url import UnsafeURL, check_callback_url
from approvals.webhooks.delivery import deliver, delivery_redeliver, redispatch
from approvals.webhooks.signing import SIGNATURE_HEADER, secret_for, sign, verify
from approvals.webhooks.staging import EVENTS, stage

__all__ = [
    "EVENTS",
    "FOREIGN_EVENT",
    "NAMES_ANOTHER",
    "NOT_BOUND",
    "SIGNATURE_HEADER",
    "TOLERANCE",
    "BadSignature",
    "ForeignEvent",
    "InboundKey",
    "UnsafeURL",
    "_parse_timestamp",
    "check_bound",
    "check_callback_url",
    "deliver",
    "delivery_redeliver",
    "inbound_key",
    "inbound_record",
    "redispatch",
    "secret_for",
    "sign",
    "stage",
    "verify",
    "verify_inbound",
    "zendesk_signature",
]
