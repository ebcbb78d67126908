"""The read path against a real database: pagination, quotas, the schema moving, the cache, isolation.

Tests marked ``postgres`` need PostgreSQL (DATABASE_URL): they check row-level security and EXPLAIN.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import DatabaseError, connection

from adapters.warehouse import compiler, executor, schema, service
from adapters.warehouse.errors import InvalidQuery, QueryTimeout, QueryTooExpensive
from adapters.warehouse.models import Order
from adapters.warehouse.plan import parse
from adapters.warehouse.seed import warehouse_seed
from tests.adapters.warehouse.helpers import ids, seed

pytestmark = pytest.mark.django_db


@pytest.fixture
def seeded(settings: Any) -> None:
    settings.ACME_WAREHOUSE_CACHE_TTL = 0
    seed("acme")
    seed("globex", orders=120, customers=10, tickets=60)


def query(body: dict[str, Any], tenant: str = "acme") -> dict[str, Any]:
    return service.run(parse(body), tenant=tenant)[0]


def walk(body: dict[str, Any], tenant: str = "acme") -> list[list[Any]]:
    rows: list[list[Any]] = []
    cursor = None
    for _ in range(1000):
        page = query({**body, "cursor": cursor}, tenant)
        assert len(page["rows"]) <= body["limit"]
        rows += page["rows"]
        cursor = page["next_cursor"]
        assert page["truncated"] is (cursor is not None)
        if cursor is None:
            return rows
    raise AssertionError("pagination did not end")


class TestPagination:
    def test_walks_every_row_exactly_once_in_id_order(self, seeded):
        rows = walk({"dataset": "orders", "select": ["id"], "limit": 37})
        assert [r[0] for r in rows] == ids("acme")

    def test_walks_every_row_once_with_a_non_unique_descending_key(self, seeded):
        rows = walk(
            {
                "dataset": "orders",
                "select": ["id", "region", "created_at"],
                "order_by": [{"column": "region", "desc": True}, {"column": "created_at"}],
                "limit": 23,
            }
        )
        assert sorted(r[0] for r in rows) == ids("acme")
        keys = [(r[1], r[2], r[0]) for r in rows]
        assert keys == sorted(keys, key=lambda k: (_desc(k[0]), k[1], k[2]))

    def test_walks_every_row_once_ordered_by_a_nullable_column(self, seeded):
        rows = walk(
            {
                "dataset": "tickets",
                "select": ["id", "satisfaction"],
                "order_by": [{"column": "satisfaction", "desc": True}],
                "limit": 11,
            }
        )
        assert sorted(r[0] for r in rows) == ids("acme", "tickets")
        values = [r[1] for r in rows]
        first_null = values.index(None)
        assert all(v is None for v in values[first_null:])  # NULLS LAST
        assert values[:first_null] == sorted(values[:first_null], reverse=True)

    def test_walks_every_group_once_ordered_by_an_aggregate(self, seeded):
        body = {
            "dataset": "orders",
            "select": [
                "customer_id",
                {"agg": "count", "as": "n"},
                {"agg": "sum", "column": "amount", "as": "revenue"},
            ],
            "group_by": ["customer_id"],
            "order_by": [{"column": "n", "desc": True}],
            "limit": 7,
        }
        rows = walk(body)
        everything = query({**body, "limit": 1000})["rows"]
        assert rows == everything
        assert len({r[0] for r in rows}) == len(rows)
        assert sum(r[1] for r in rows) == len(ids("acme"))

    def test_a_single_aggregate_row_has_no_pages(self, seeded):
        page = query({"dataset": "orders", "select": [{"agg": "count"}], "limit": 1})
        assert page == {
            "columns": ["count"],
            "rows": [[len(ids("acme"))]],
            "next_cursor": None,
            "truncated": False,
        }


def _desc(text: str) -> list[int]:
    return [-ord(c) for c in text]


class TestQuotas:
    def test_a_page_is_at_most_the_maximum_limit(self, seeded, settings):
        settings.ACME_WAREHOUSE_MAX_LIMIT = 50
        with pytest.raises(InvalidQuery, match="at most 50"):
            query({"dataset": "orders", "select": ["id"], "limit": 51})
        page = query({"dataset": "orders", "select": ["id"], "limit": 50})
        assert len(page["rows"]) == 50 and page["truncated"]

    def test_a_statement_past_the_timeout_is_stopped(self, settings):
        settings.ACME_WAREHOUSE_STATEMENT_TIMEOUT_MS = 50
        settings.ACME_WAREHOUSE_MAX_SCAN_ROWS = 0
        slow = (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000000) "
            "SELECT count(*) FROM c"
        )
        with pytest.raises(QueryTimeout):
            executor.run(slow, [], tenant="acme", alias="default")
        # The connection is usable afterwards, writable again and back to normal.
        Order.objects.create(
            tenant_id="acme",
            customer_id=1,
            region="emea",
            status="paid",
            product="x",
            quantity=1,
            amount=1,
            currency="EUR",
            created_at="2026-01-01T00:00:00Z",
        )

    @pytest.mark.postgres
    def test_postgres_refuses_a_plan_expected_to_scan_too_many_rows(self, seeded, settings):
        settings.ACME_WAREHOUSE_MAX_SCAN_ROWS = 1
        with pytest.raises(QueryTooExpensive) as info:
            query({"dataset": "orders", "select": ["id"]})
        assert info.value.estimated_rows > 1

    @pytest.mark.postgres
    def test_postgres_runs_read_only_as_the_reader_role(self, seeded):
        from psycopg import sql

        probe = sql.SQL(
            "SELECT current_user, current_setting('transaction_read_only'), current_setting('acme.tenant')"
        )
        rows = executor.run(probe, [], tenant="acme", alias="default")
        assert rows == [(executor.READER_ROLE, "on", "acme")]
        with pytest.raises(DatabaseError):
            executor.run(sql.SQL("DELETE FROM warehouse_orders"), [], tenant="acme", alias="default")
        # Nothing leaked out of the rolled-back transaction.
        with connection.cursor() as cur:
            cur.execute(
                "SELECT current_user <> %s, current_setting('transaction_read_only')", [executor.READER_ROLE]
            )
            assert cur.fetchone() == (True, "off")


class TestIsolation:
    def test_the_compiler_filters_the_tenant(self, seeded):
        assert [r[0] for r in walk({"dataset": "orders", "select": ["id"], "limit": 1000}, "globex")] == ids(
            "globex"
        )

    @pytest.mark.postgres
    def test_row_level_security_holds_without_the_compilers_filter(self, seeded, monkeypatch):
        # given: the compiler's own tenant filter is gone
        monkeypatch.setattr(compiler, "tenant_predicate", lambda tenant: [compiler.Sql("TRUE")])
        compiled = compiler.compile_plan(
            parse({"dataset": "orders", "select": ["id"], "limit": 1000}),
            schema.current(),
            tenant="acme",
            max_limit=1000,
        )
        query_, params = compiler.render(compiled.tokens, connection)
        with connection.cursor() as cur:  # as the (superuser) test connection, RLS bypassed: both tenants
            cur.execute(query_, params)
            assert len(cur.fetchall()) > len(ids("acme"))
        # when: the read path runs it
        rows = walk({"dataset": "orders", "select": ["id"], "limit": 1000}, "acme")
        # then: PostgreSQL's policies alone return acme's rows only, and a missing tenant returns none
        assert [r[0] for r in rows] == ids("acme")
        assert query({"dataset": "orders", "select": [{"agg": "count"}]}, "nobody")["rows"] == [[0]]


class TestSchema:
    def test_offers_the_allow_list_only(self, seeded):
        described = schema.current().describe()
        assert set(described) == {"orders", "customers", "tickets"}
        assert "email" not in described["customers"]["columns"]
        assert all("tenant_id" not in d["columns"] for d in described.values())
        assert described["orders"]["columns"]["amount"] == "decimal"

    def test_a_dropped_column_stops_being_offered_with_a_clear_error(self, seeded):
        assert "product" in schema.current().datasets["orders"].columns  # cached, as at start-up
        with connection.cursor() as cur:
            cur.execute("ALTER TABLE warehouse_orders DROP COLUMN product")
        with pytest.raises(InvalidQuery) as info:
            query({"dataset": "orders", "select": ["id", "product"]})
        assert "'product'" in info.value.detail
        assert info.value.allowed is not None and "product" not in info.value.allowed
        assert query({"dataset": "orders", "select": ["region"], "limit": 1})["rows"]


class TestCache:
    def test_identical_queries_of_a_tenant_are_served_from_redis(self, seeded, settings, monkeypatch):
        settings.ACME_WAREHOUSE_CACHE_TTL = 30
        body = {"dataset": "orders", "select": [{"agg": "count"}]}
        first, cached = service.run(parse(body), tenant="acme")
        assert not cached
        monkeypatch.setattr(executor, "run", lambda *a, **k: pytest.fail("not cached"))
        assert service.run(parse(body), tenant="acme") == (first, True)
        with pytest.raises(pytest.fail.Exception):
            service.run(parse(body), tenant="globex")  # another tenant: its own entry


def test_seeding_is_idempotent_and_scoped(db):
    assert warehouse_seed(tenant="acme", orders=50, customers=5, tickets=20) == 75
    assert warehouse_seed(tenant="acme", orders=50, customers=5, tickets=20) == 0
    assert len(ids("acme")) == 50


def test_the_registry_runs_the_read_tool_and_audits_it(seeded):
    from adapters import registry
    from adapters.registry import Context
    from audit.models import AuditEvent

    page = registry.read(
        "warehouse.query",
        {"dataset": "orders", "select": [{"agg": "count", "as": "n"}]},
        Context(tenant="acme", agent="bot"),
    )
    assert page["columns"] == ["n"] and page["rows"] == [[len(ids("acme"))]]
    event = AuditEvent.objects.get(tenant="acme", action="warehouse.query")
    assert (event.actor_type, event.actor_label, event.data["rows"]) == ("agent", "bot", 1)
