"""Runs a compiled query with the database's own guards.

PostgreSQL, inside one transaction (a savepoint when the caller already holds one) that is always rolled
back, so every SET LOCAL ends with it:
  SET TRANSACTION READ ONLY; statement_timeout and acme.tenant via set_config(..., true);
  SET LOCAL ROLE acme_warehouse_reader (no BYPASSRLS: the tables' policies apply even to a superuser);
  EXPLAIN (FORMAT JSON) first, refusing plans that expect to scan too many rows; then the query.
SQLite (the dev default), on the connection as it is (a transaction would take SQLite's write lock):
  PRAGMA query_only for the statement, and a progress handler that interrupts it past the timeout.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections, transaction

from adapters.warehouse.errors import QueryTimeout, QueryTooExpensive

READER_ROLE = "acme_warehouse_reader"
PG_QUERY_CANCELED = "57014"
PG_UNDEFINED = ("42703", "42P01")  # undefined column, undefined table


def timeout_ms() -> int:
    return int(getattr(settings, "ACME_WAREHOUSE_STATEMENT_TIMEOUT_MS", 5000))


def max_scan_rows() -> int:
    return int(getattr(settings, "ACME_WAREHOUSE_MAX_SCAN_ROWS", 5_000_000))


def sqlstate(exc: BaseException) -> str:
    cause = exc.__cause__ or exc
    return str(getattr(cause, "sqlstate", "") or getattr(cause, "pgcode", "") or "")


def is_missing_object(exc: BaseException) -> bool:
    """The query named a table or column the warehouse no longer has (the schema moved under us)."""
    message = str(exc).lower()
    return sqlstate(exc) in PG_UNDEFINED or "no such column" in message or "no such table" in message


def _timed_out(exc: BaseException) -> QueryTimeout:
    ms = timeout_ms()
    return QueryTimeout(
        detail=f"The query ran longer than {ms} ms and was stopped; narrow it with filters "
        "or a smaller limit.",
        timeout_ms=ms,
    )


@contextmanager
def tenant_scope(tenant: str, *, alias: str) -> Iterator[Any]:
    """A transaction whose row-level security scope is ``tenant`` (PostgreSQL); for seeding and tests."""
    connection = connections[alias]
    with transaction.atomic(using=alias), connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute("SELECT set_config('acme.tenant', %s, true)", [tenant])
        yield cur


def estimated_scan_rows(explain: Any) -> int:
    """Rows the planner expects its scan nodes to produce, from EXPLAIN (FORMAT JSON)."""
    if isinstance(explain, str | bytes):
        explain = json.loads(explain)
    total = 0
    stack = [explain[0]["Plan"]] if isinstance(explain, list) else [explain["Plan"]]
    while stack:
        node = stack.pop()
        if "Scan" in str(node.get("Node Type", "")):
            total += int(node.get("Plan Rows", 0))
        stack.extend(node.get("Plans", []))
    return total


def run(query: Any, params: list[Any], *, tenant: str, alias: str) -> list[tuple[Any, ...]]:
    connection = connections[alias]
    if connection.vendor == "postgresql":
        return _run_postgres(connection, query, params, tenant=tenant, alias=alias)
    return _run_sqlite(connection, query, params)


def _run_postgres(connection: Any, query: Any, params: list[Any], *, tenant: str, alias: str) -> list[tuple]:
    from psycopg import sql

    try:
        with transaction.atomic(using=alias):
            try:
                with connection.cursor() as cur:
                    cur.execute("SET TRANSACTION READ ONLY")
                    cur.execute(
                        "SELECT set_config('statement_timeout', %s, true), set_config('acme.tenant', %s, true)",
                        [str(timeout_ms()), tenant],
                    )
                    cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(READER_ROLE)))
                    _refuse_expensive(cur, query, params)
                    cur.execute(query, params)
                    return list(cur.fetchall())
            finally:
                # Nothing of this transaction survives it: the role, the settings and the read-only mode
                # end with it (also when it is a savepoint inside a caller's transaction).
                transaction.set_rollback(True, using=alias)
    except DatabaseError as exc:
        if sqlstate(exc) == PG_QUERY_CANCELED:
            raise _timed_out(exc) from None
        raise


def _refuse_expensive(cur: Any, query: Any, params: list[Any]) -> None:
    from psycopg import sql

    bound = max_scan_rows()
    if bound <= 0:
        return
    cur.execute(sql.SQL("EXPLAIN (FORMAT JSON) ") + query, params)
    estimate = estimated_scan_rows(cur.fetchone()[0])
    if estimate > bound:
        raise QueryTooExpensive(
            detail=f"The query would scan about {estimate} rows (at most {bound}); add filters (a time range, "
            "a customer) or group less finely.",
            estimated_rows=estimate,
            max_rows=bound,
        )


def _run_sqlite(connection: Any, query: Any, params: list[Any]) -> list[tuple]:
    connection.ensure_connection()
    raw = connection.connection
    deadline = time.monotonic() + timeout_ms() / 1000
    interrupted = False

    def progress() -> int:
        nonlocal interrupted
        interrupted = time.monotonic() > deadline
        return 1 if interrupted else 0

    with connection.cursor() as cur:
        cur.execute("PRAGMA query_only = ON")
        raw.set_progress_handler(progress, 1000)
        try:
            cur.execute(query, params)
            return list(cur.fetchall())
        except DatabaseError as exc:
            if interrupted:
                raise _timed_out(exc) from None
            raise
        finally:
            raw.set_progress_handler(None, 0)
            cur.execute("PRAGMA query_only = OFF")
