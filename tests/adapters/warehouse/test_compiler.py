"""The plan and its compiler, without a database: what reaches the SQL text, what becomes a parameter."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.warehouse import cursor as cursors
from adapters.warehouse.compiler import Ident, Param, Sql, compile_plan, render
from adapters.warehouse.errors import InvalidQuery
from adapters.warehouse.plan import AGGS, OPS, parse
from adapters.warehouse.schema import Column, Dataset, Schema

COLUMNS = [
    Column("id", "int", False),
    Column("region", "text", False),
    Column("amount", "decimal", False),
    Column("quantity", "int", False),
    Column("created_at", "datetime", False),
    Column("satisfaction", "int", True),
    Column("paid", "bool", False),
]
SCHEMA = Schema(
    datasets={"orders": Dataset("orders", "warehouse_orders", {c.name: c for c in COLUMNS})}, loaded_at=0.0
)
EVIL = "x'); DROP TABLE warehouse_orders; --"


def compile_(body: dict[str, Any], tenant: str = "acme", max_limit: int = 1000):
    return compile_plan(parse(body), SCHEMA, tenant=tenant, max_limit=max_limit)


def sql_of(compiled) -> str:
    return "".join(
        t.text if isinstance(t, Sql) else f'"{t.name}"' if isinstance(t, Ident) else "?"
        for t in compiled.tokens
    )


def params_of(compiled) -> list[Any]:
    return [t.value for t in compiled.tokens if isinstance(t, Param)]


def refused(body: dict[str, Any], **kwargs: Any) -> InvalidQuery:
    with pytest.raises(InvalidQuery) as info:
        compile_(body, **kwargs)
    return info.value


class TestCompile:
    def test_the_tenant_filter_is_always_the_first_condition_and_a_parameter(self):
        compiled = compile_({"dataset": "orders", "select": ["id"]}, tenant="acme")
        assert ' FROM "warehouse_orders" WHERE "tenant_id" = ?' in sql_of(compiled)
        assert params_of(compiled)[0] == "acme"

    def test_values_are_parameters_never_sql_text(self):
        compiled = compile_(
            {
                "dataset": "orders",
                "select": ["id"],
                "where": [
                    {"column": "region", "op": "=", "value": EVIL},
                    {"column": "region", "op": "in", "value": [EVIL, "emea"]},
                    {"column": "region", "op": "like-prefix", "value": "50%_off!"},
                ],
            }
        )
        text = sql_of(compiled)
        assert "DROP" not in text and "50" not in text
        assert params_of(compiled)[1:5] == [EVIL, EVIL, "emea", "50!%!_off!!%"]
        assert "LIKE ? ESCAPE '!'" in text

    def test_aliases_never_reach_the_sql(self):
        compiled = compile_(
            {
                "dataset": "orders",
                "select": ["region", {"agg": "sum", "column": "amount", "as": "revenue"}],
                "group_by": ["region"],
                "order_by": [{"column": "revenue", "desc": True}],
            }
        )
        assert "revenue" not in sql_of(compiled)
        assert compiled.columns == ["region", "revenue"]
        assert 'ORDER BY SUM("amount") DESC NULLS LAST, "region" ASC NULLS LAST' in sql_of(compiled)

    def test_rows_are_ordered_with_id_as_tie_breaker_and_one_row_more_than_the_limit(self):
        compiled = compile_(
            {"dataset": "orders", "select": ["region"], "order_by": [{"column": "region"}], "limit": 10}
        )
        assert sql_of(compiled).endswith('ORDER BY "region" ASC NULLS LAST, "id" ASC NULLS LAST LIMIT ?')
        assert params_of(compiled)[-1] == 11

    def test_render_for_this_database(self, db):
        from django.db import connection

        query, params = render(compile_({"dataset": "orders", "select": ["id"]}).tokens, connection)
        assert params[0] == "acme"
        text = query if isinstance(query, str) else query.as_string(connection.connection)
        quote = '"' if connection.vendor == "postgresql" else "`"
        assert f"{quote}warehouse_orders{quote}" in text and f"{quote}tenant_id{quote}" in text


class TestRefusals:
    def test_unknown_dataset_names_it_and_lists_the_allowed(self):
        err = refused({"dataset": "users; --", "select": ["id"]})
        assert "'users; --'" in err.detail and err.allowed == ["orders"]

    @pytest.mark.parametrize("name", ["email", "tenant_id", 'region"', "*", "id; DROP", "COUNT(*)"])
    def test_unknown_column_names_it_and_lists_the_allowed(self, name):
        err = refused({"dataset": "orders", "select": [name]})
        assert repr(name) in err.detail
        assert err.allowed == sorted(c.name for c in COLUMNS)

    def test_unknown_op_and_agg_list_the_allowed(self):
        with pytest.raises(InvalidQuery) as info:
            parse(
                {
                    "dataset": "orders",
                    "select": ["id"],
                    "where": [{"column": "id", "op": "OR 1=1", "value": 1}],
                }
            )
        assert "'OR 1=1'" in info.value.detail and info.value.allowed == list(OPS)
        with pytest.raises(InvalidQuery) as info:
            parse({"dataset": "orders", "select": [{"agg": "median", "column": "amount"}]})
        assert "'median'" in info.value.detail and info.value.allowed == list(AGGS)

    @pytest.mark.parametrize("alias", ["a b", 'x"; DROP TABLE t; --', "1abc", "", "a" * 64, "région"])
    def test_aliases_must_be_plain_names(self, alias):
        refused({"dataset": "orders", "select": [{"agg": "count", "as": alias}]})

    def test_an_alias_may_not_shadow_a_column(self):
        assert (
            "already a column"
            in refused(
                {"dataset": "orders", "select": [{"agg": "sum", "column": "amount", "as": "amount"}]}
            ).detail
        )

    @pytest.mark.parametrize(
        ("column", "value"),
        [
            ("quantity", "1 OR 1=1"),
            ("quantity", 1.5),
            ("quantity", True),
            ("quantity", 2**70),
            ("amount", "NaN"),
            ("amount", "1e400"),
            ("amount", {"$gt": 1}),
            ("amount", "1e-999999"),
            ("created_at", "yesterday"),
            ("created_at", "9999-12-31T23:59:59-05:00"),
            ("region", 5),
            ("region", "a\x00b"),
            ("region", "\ud800"),
            ("paid", "true"),
        ],
    )
    def test_values_are_typed_against_the_column(self, column, value):
        err = refused(
            {"dataset": "orders", "select": ["id"], "where": [{"column": column, "op": "=", "value": value}]}
        )
        assert err.errors[0]["type"] == "value_type"

    def test_ops_must_fit_the_column_type(self):
        refused(
            {
                "dataset": "orders",
                "select": ["id"],
                "where": [{"column": "amount", "op": "like-prefix", "value": "1"}],
            }
        )
        refused(
            {"dataset": "orders", "select": ["id"], "where": [{"column": "paid", "op": ">", "value": True}]}
        )
        refused({"dataset": "orders", "select": [{"agg": "sum", "column": "region"}]})

    def test_grouping_rules(self):
        refused({"dataset": "orders", "select": ["region", {"agg": "count"}]})  # region not grouped
        refused(
            {
                "dataset": "orders",
                "select": [{"agg": "count"}],
                "group_by": ["region"],
                "order_by": [{"column": "amount"}],
            }
        )

    def test_limit_has_a_maximum(self):
        err = refused({"dataset": "orders", "select": ["id"], "limit": 1001})
        assert "at most 1000" in err.detail
        with pytest.raises(InvalidQuery):
            parse({"dataset": "orders", "select": ["id"], "limit": 0})

    def test_a_limit_with_no_fraction_is_an_integer_as_json_schema_says(self):
        assert parse({"dataset": "orders", "select": ["id"], "limit": 10.0}).limit == 10
        assert compile_({"dataset": "orders", "select": ["id"], "limit": 10.0}).limit == 10
        for limit in (10.5, True, 1e300):
            with pytest.raises(InvalidQuery):
                parse({"dataset": "orders", "select": ["id"], "limit": limit})

    def test_the_plan_is_closed_and_strict(self):
        for body in (
            {"dataset": "orders", "select": ["id"], "sql": "SELECT 1"},
            {"dataset": "orders", "select": ["id"], "limit": "10"},
            {"dataset": "orders", "select": [{"agg": "count", "raw": "1"}]},
            {"dataset": "orders", "select": []},
            ["orders"],
        ):
            with pytest.raises(InvalidQuery):
                parse(body)


class TestCursor:
    def test_a_cursor_is_bound_to_its_plan_and_tenant(self):
        plan = {"dataset": "orders", "select": ["id"], "limit": 5}
        token = cursors.encode([7], fingerprint=compile_(plan).fingerprint)
        assert compile_({**plan, "cursor": token, "limit": 9}).keys  # same plan, other limit: fine
        refused({**plan, "select": ["id", "region"], "cursor": token})
        refused({**plan, "cursor": token}, tenant="globex")

    @pytest.mark.parametrize(
        "mangle",
        [
            lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
            lambda t: t.replace(t.split(":")[0], t.split(":")[0][::-1]),
            lambda t: "' OR 1=1 --",
            lambda t: "\ud800",
        ],
    )
    def test_a_forged_cursor_is_refused(self, mangle):
        plan = {"dataset": "orders", "select": ["id"]}
        token = cursors.encode([7], fingerprint=compile_(plan).fingerprint)
        err = refused({**plan, "cursor": mangle(token)})
        assert err.errors[0]["loc"] == ["cursor"]
