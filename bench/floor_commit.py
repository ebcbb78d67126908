"""The floor commit job: what committing one of the product's approved proposals sends to PostgreSQL, Redis
and the CRM, sent by hand with none of the gateway's Python. Imported by plain ``rq worker`` processes (no
Django).

It runs the statements of ``approvals.services.proposal_commit`` for a ``crm.create_ticket`` proposal, in
the same order, on the product's own tables:

1. the claim, in one transaction: the proposal under ``FOR NO KEY UPDATE OF`` (its tenant and agent
   joined), its approving decision, ``UPDATE … committing``, the tenant's chain lock and head, the
   ``proposal.commit_started`` event;
2. the outside call: the breaker's two Lua scripts (``adapters.breaker``'s own, on keys of its own), and
   ``POST tickets.json`` with the body and headers the product sends;
3. the record, in one transaction: the proposal locked again, the receipt, ``UPDATE … committed``, the
   chain lock and head, the ``outbound.call`` and ``proposal.committed`` events (with the receipt's fields).

No django-auditlog entries: the product keeps none for proposals and receipts (issue 21).

No retries, no error paths, no ORM, no pydantic: whatever the gateway does, a commit cannot cost less than
this on this stack. The statements are written out with their columns (the schema as of the product's
migrations); a migration that adds a required column makes this job fail loudly rather than measure
something else.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import redis
import requests
from psycopg.types.json import Jsonb

from adapters.breaker import _ACQUIRE, _RECORD
from bench.bare_commit import TIMEOUT, TOKEN

_session = requests.Session()
_BREAKER = ["bench-floor:breaker:crm", "bench-floor:breaker:crm:probe", "bench-floor:breaker:trips:crm"]


@functools.cache
def _connection(database_url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(database_url, autocommit=True)


@functools.cache
def _redis(redis_url: str) -> tuple[redis.Redis, Any, Any]:
    client = redis.Redis.from_url(redis_url)
    return client, client.register_script(_ACQUIRE), client.register_script(_RECORD)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _append(
    cur: psycopg.Cursor[Any],
    tenant: str,
    pk: str,
    args_hash: str,
    decision_id: str,
    events: list[tuple[str, dict[str, Any]]],
) -> None:
    """The tenant's chain lock, its head, and the events linked to it (audit.services.append)."""
    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ["audit:" + tenant])
    head = cur.execute(
        "SELECT hash FROM audit_auditevent WHERE tenant = %s ORDER BY id DESC LIMIT 1", [tenant]
    ).fetchone()
    prev = head[0] if head else ""
    rows = []
    for action, data in events:
        at = datetime.now(UTC)
        body = {
            "tenant": tenant,
            "actor": ["system", "", "acme"],
            "action": action,
            "subject": ["proposal", pk],
            "at": at.isoformat(),
            "where": ["worker", "", ""],
            "result": "ok",
            "data": data,
            "decision_id": decision_id,
            "args_hash": args_hash,
            "prev": prev,
        }
        digest = hashlib.sha256(_json(body).encode()).hexdigest()
        rows.append([tenant, action, pk, at, Jsonb(data), decision_id, args_hash, prev, digest])
        prev = digest
    cur.executemany(
        "INSERT INTO audit_auditevent (tenant, actor_type, actor_id, actor_label, action, subject_type, subject_id,"
        " at, channel, ip, user_agent, result, data, decision_id, args_hash, prev_hash, hash) VALUES (%s, 'system',"
        " '', 'acme', %s, 'proposal', %s, %s, 'worker', NULL, '', 'ok', %s, %s, %s, %s, %s)",
        rows,
    )


_LOCK = (
    "SELECT p.id, p.tool, p.args, p.args_hash, p.status, p.status_reason, p.commit_attempts, p.idempotency_key,"
    " t.slug, a.name FROM approvals_proposal p JOIN approvals_tenant t ON p.tenant_id = t.id"
    " JOIN approvals_agentcredential a ON p.agent_id = a.id WHERE p.id = %s FOR NO KEY UPDATE OF p"
)


def floor_commit(crm_base_url: str, database_url: str, redis_url: str, proposal_id: str) -> str:
    """Commit approved proposal ``proposal_id`` (a ``crm.create_ticket``) and return the CRM's ticket id."""
    conn = _connection(database_url)
    with conn.transaction(), conn.cursor() as cur:
        row = cur.execute(_LOCK, [proposal_id]).fetchone()
        if row is None or row[4] != "approved":
            raise RuntimeError(f"proposal {proposal_id} is not approved: {row and row[4]}")
        pk, tool, args, args_hash, _status, _reason, attempts, key, tenant, _agent = row
        decision = cur.execute(
            "SELECT id, args_hash FROM approvals_decision WHERE proposal_id = %s AND verdict = 'approved'"
            " ORDER BY at DESC LIMIT 1",
            [pk],
        ).fetchone()
        if decision is None or decision[1] != args_hash:
            raise RuntimeError(f"proposal {proposal_id}: no approval of these args")
        decision_id = str(decision[0])
        cur.execute(
            "UPDATE approvals_proposal SET status = 'committing', status_reason = 'Working on it…',"
            " lease_until = %s, updated_at = now() WHERE id = %s",
            [datetime.now(UTC) + timedelta(seconds=120), pk],
        )
        _append(
            cur,
            tenant,
            str(pk),
            args_hash,
            decision_id,
            [
                (
                    "proposal.commit_started",
                    {
                        "tool": tool,
                        "status": "committing",
                        "status_reason": "Working on it…",
                        "resumed": False,
                        "earlier_attempts": attempts,
                    },
                )
            ],
        )

    client, acquire, record = _redis(redis_url)
    acquire(keys=_BREAKER[:2], args=[uuid.uuid4().hex, 15000], client=client)
    response = _session.post(
        f"{crm_base_url}/api/v2/tickets.json",
        json={
            "ticket": {
                "subject": args["subject"],
                "comment": {"body": args["description"]},
                "priority": args["priority"],
                "requester": {"email": args["customer_email"]},
                "tags": args["tags"],
            }
        },
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json", "Idempotency-Key": key},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    record(keys=_BREAKER, args=["ok" if response.status_code < 500 else "fail", "", 5, 30000], client=client)
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"CRM answered {response.status_code}: {response.text[:300]}")
    ticket = response.json()["ticket"]
    external_id = str(ticket["id"])
    summary = {k: ticket.get(k) for k in ("id", "status", "priority", "subject")}

    with conn.transaction(), conn.cursor() as cur:
        cur.execute(_LOCK, [proposal_id]).fetchone()
        external_url = f"{crm_base_url}/api/v2/tickets/{external_id}.json"
        cur.execute(
            "INSERT INTO approvals_receipt (proposal_id, system, external_id, external_url, response_summary,"
            " attempts, args_hash, committed_at) VALUES (%s, 'crm', %s, %s, %s, 1, %s, now()) RETURNING id",
            [pk, external_id, external_url, Jsonb(summary), args_hash],
        ).fetchone()
        cur.execute(
            "UPDATE approvals_proposal SET status = 'committed', status_reason = '', commit_attempts = %s,"
            " lease_until = NULL, updated_at = now() WHERE id = %s",
            [attempts + 1, pk],
        )
        _append(
            cur,
            tenant,
            str(pk),
            args_hash,
            decision_id,
            [
                (
                    "outbound.call",
                    {
                        "tool": tool,
                        "status": "committed",
                        "status_reason": "",
                        "system": "crm",
                        "attempts": 1,
                        "external_id": external_id,
                        "reconciled": False,
                    },
                ),
                (
                    "proposal.committed",
                    {
                        "tool": tool,
                        "status": "committed",
                        "status_reason": "",
                        "fields": {"commit_attempts": attempts + 1},
                        "receipt": {
                            "system": "crm",
                            "external_id": external_id,
                            "external_url": external_url,
                            "attempts": 1,
                            "args_hash": args_hash,
                            "response_summary": summary,
                        },
                        "system": "crm",
                        "external_id": external_id,
                    },
                ),
            ],
        )
    return external_id
