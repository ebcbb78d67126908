"""The bare commit job: a commit's irreducible work with no gateway around it. Imported by plain ``rq worker``
processes (no Django).

One ``POST {crm}/api/v2/tickets.json`` with the body and headers the product sends for ``crm.create_ticket``
(``adapters.crm.tickets.create_body`` of bench/intake.py's args, normalized), then one autocommitted
``INSERT`` of a receipt-like row. No breaker, rate limit, retries, row lock, decision, field history, audit
chain or webhook. One ``requests.Session`` and one psycopg connection per worker process.
"""

from __future__ import annotations

import functools
from typing import Any

import psycopg
import requests
from psycopg.types.json import Jsonb

TOKEN = "sandbox"  # noqa: S105 (the sandbox CRM's token, the product's default CRM_API_TOKEN)
TIMEOUT = 10.0  # the product's ACME_HTTP_TIMEOUT
CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS bench_bare_receipt (
    id bigserial PRIMARY KEY,
    external_id varchar(128) NOT NULL,
    idempotency_key varchar(255) NOT NULL UNIQUE,
    response jsonb NOT NULL,
    committed_at timestamptz NOT NULL
)"""

_session = requests.Session()


@functools.cache
def _connection(database_url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(database_url, autocommit=True)


def create_table(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(CREATE_TABLE)


def ticket_body(subject: str) -> dict[str, Any]:
    """What the product sends for bench/intake.py's ``crm.create_ticket`` args once normalized."""
    return {
        "ticket": {
            "subject": subject,
            "comment": {"body": "Nobody in the Paris office can connect since 9:00."},
            "priority": "high",
            "requester": {"email": "ops@example.com"},
            "tags": ["network", "paris"],
        }
    }


def bare_commit(crm_base_url: str, database_url: str, tag: str, i: int) -> str:
    """Create ticket ``tag``-``i`` in the CRM (its own Idempotency-Key and subject), store its receipt, and
    return the CRM's ticket id."""
    key = f"bench-bare-{tag}-{i}"
    response = _session.post(
        f"{crm_base_url}/api/v2/tickets.json",
        json=ticket_body(f"VPN down for office bare-{tag}-{i}"),
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json", "Idempotency-Key": key},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    if not 200 <= response.status_code < 300:
        raise RuntimeError(f"CRM answered {response.status_code}: {response.text[:300]}")
    answer = response.json()
    external_id = str(answer["ticket"]["id"])
    _connection(database_url).execute(
        "INSERT INTO bench_bare_receipt (external_id, idempotency_key, response, committed_at) "
        "VALUES (%s, %s, %s, now())",
        [external_id, key, Jsonb(answer)],
    )
    return external_id
