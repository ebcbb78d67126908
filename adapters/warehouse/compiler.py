"""Plan -> parameterized SQL, against the introspected schema.

What reaches the SQL text: constants written here, and identifiers that come from the introspected
allow-list (the request's names are only ever *looked up* there). Every value, the tenant included, is a
bound parameter. ``as`` names never reach the SQL at all: outputs are read back by position.

The output is a list of tokens (``Sql`` constant text, ``Ident`` schema identifier, ``Param`` value)
rendered by ``render`` as ``psycopg.sql.Composed`` on PostgreSQL or as text with safely quoted
identifiers and ``%s`` placeholders on SQLite.

Pagination is keyset: the sort keys are the requested order plus a tie-breaker that makes them unique
(``id`` for rows, the group_by columns for groups), NULLs last in either direction; the next page starts
strictly after the last row's key values, carried in the signed cursor.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from dataclasses import dataclass
from typing import Any

from adapters.warehouse import cursor as cursors
from adapters.warehouse.errors import invalid, shown
from adapters.warehouse.plan import AGGS, Aggregate, Plan
from adapters.warehouse.schema import KEY_COLUMN, TENANT_COLUMN, Column, ColumnType, Dataset, Schema
from adapters.warehouse.values import text, typed


@dataclass(frozen=True)
class Sql:
    text: str


@dataclass(frozen=True)
class Ident:
    name: str


@dataclass(frozen=True)
class Param:
    value: Any


Token = Sql | Ident | Param

ALIAS_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
MAX_IN = 100
NUMERIC = ("int", "decimal", "float")
ORDERED = ("int", "decimal", "float", "text", "datetime", "date")
COMPARISONS = {"=": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(frozen=True)
class Expr:
    tokens: tuple[Token, ...]
    type: ColumnType
    nullable: bool
    aggregate: bool


@dataclass(frozen=True)
class Key:
    expr: Expr
    desc: bool


@dataclass
class Compiled:
    dataset: str
    tokens: list[Token]
    columns: list[str]
    types: list[ColumnType]
    keys: list[Key]
    fingerprint: str
    limit: int


def tenant_predicate(tenant: str) -> list[Token]:
    """The compiler's own tenant filter (PostgreSQL's row-level security is the second, independent one)."""
    return [Ident(TENANT_COLUMN), Sql(" = "), Param(tenant)]


def _column(ds: Dataset, name: str, loc: list[Any]) -> Column:
    col = ds.columns.get(name)
    if col is None:
        raise invalid(
            f"Unknown column {shown(name)} in dataset {ds.name!r}; allowed: {', '.join(sorted(ds.columns))}.",
            loc,
            "unknown_column",
            sorted(ds.columns),
        )
    return col


def _col_expr(col: Column) -> Expr:
    return Expr((Ident(col.name),), col.type, col.nullable, aggregate=False)


def _aggregate(ds: Dataset, item: Aggregate, loc: list[Any]) -> tuple[str, Expr]:
    if item.column is None:
        if item.agg != "count":
            raise invalid(
                f"{item.agg} needs a column.", [*loc, "column"], "missing_column", sorted(ds.columns)
            )
        expr = Expr((Sql("COUNT(*)"),), "int", False, aggregate=True)
        default = "count"
    else:
        col = _column(ds, item.column, [*loc, "column"])
        if item.agg in ("sum", "avg") and col.type not in NUMERIC:
            allowed = sorted(c.name for c in ds.columns.values() if c.type in NUMERIC)
            raise invalid(
                f"{item.agg} needs a numeric column; {col.name!r} is {col.type}.",
                [*loc, "column"],
                "aggregate_type",
                allowed,
            )
        if item.agg in ("min", "max") and col.type not in ORDERED:
            raise invalid(
                f"{item.agg} does not apply to {col.type} column {col.name!r}.",
                [*loc, "column"],
                "aggregate_type",
            )
        kind: ColumnType = {"count": "int", "avg": "float"}.get(item.agg, col.type)  # type: ignore[assignment]
        fn = item.agg.upper()
        expr = Expr((Sql(f"{fn}("), Ident(col.name), Sql(")")), kind, item.agg != "count", aggregate=True)
        default = f"{item.agg}_{col.name}"
    name = item.as_ if item.as_ is not None else default
    if not ALIAS_RE.fullmatch(name):
        raise invalid(
            f"The name {shown(name)} is not allowed: use letters, digits and _, not starting with a "
            "digit, at most 63 characters.",
            [*loc, "as"],
            "invalid_alias",
        )
    if name in ds.columns or name in (TENANT_COLUMN,):
        raise invalid(
            f"The name {name!r} is already a column of {ds.name!r}; choose another `as`.",
            [*loc, "as"],
            "alias_conflict",
        )
    return name, expr


def _condition(ds: Dataset, cond: Any, loc: list[Any]) -> list[Token]:
    col = _column(ds, cond.column, [*loc, "column"])
    e: list[Token] = [Ident(col.name)]
    op, value, vloc = cond.op, cond.value, [*loc, "value"]
    if op == "is_null":
        if value is not None and not isinstance(value, bool):
            raise invalid(
                "is_null takes true (or nothing) for IS NULL, false for IS NOT NULL.", vloc, "value_type"
            )
        return [*e, Sql(" IS NOT NULL" if value is False else " IS NULL")]
    if op in ("<", "<=", ">", ">=", "between") and col.type not in ORDERED:
        raise invalid(
            f"{op} does not apply to {col.type} column {col.name!r}; use = or !=.",
            [*loc, "op"],
            "op_type",
            ["=", "!=", "in", "is_null"],
        )
    if op in COMPARISONS:
        return [*e, Sql(f" {COMPARISONS[op]} "), Param(typed(col, value, vloc))]
    if op == "in":
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_IN:
            raise invalid(f"in takes a list of 1 to {MAX_IN} values.", vloc, "value_type")
        out: list[Token] = [*e, Sql(" IN (")]
        for i, v in enumerate(value):
            out += [*([Sql(", ")] if i else []), Param(typed(col, v, [*vloc, i]))]
        return [*out, Sql(")")]
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise invalid("between takes [low, high].", vloc, "value_type")
        low, high = typed(col, value[0], [*vloc, 0]), typed(col, value[1], [*vloc, 1])
        return [*e, Sql(" BETWEEN "), Param(low), Sql(" AND "), Param(high)]
    if op == "like-prefix":
        if col.type != "text":
            raise invalid(
                f"like-prefix applies to text columns; {col.name!r} is {col.type}.", [*loc, "op"], "op_type"
            )
        prefix = text(col, value, vloc)
        pattern = prefix.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%"
        return [*e, Sql(" LIKE "), Param(pattern), Sql(" ESCAPE '!'")]
    raise invalid(f"Unknown op {shown(op)}.", [*loc, "op"], "unknown_op")  # pragma: no cover (plan refuses)


def _after(keys: list[Key], values: list[Any]) -> list[Token]:
    """Rows strictly after ``values`` in the order of ``keys`` (each ASC/DESC, NULLS LAST)."""
    branches: list[list[Token]] = []
    for i, key in enumerate(keys):
        parts: list[list[Token]] = []
        for prev, v in zip(keys[:i], values[:i], strict=True):
            parts.append(
                [*prev.expr.tokens, Sql(" IS NULL")]
                if v is None
                else [*prev.expr.tokens, Sql(" = "), Param(v)]
            )
        v = values[i]
        if v is None:
            continue  # nothing sorts after NULL (NULLS LAST) on this key
        step = [*key.expr.tokens, Sql(" < " if key.desc else " > "), Param(v)]
        if key.expr.nullable:
            step = [Sql("("), *step, Sql(" OR "), *key.expr.tokens, Sql(" IS NULL)")]
        parts.append(step)
        branch: list[Token] = [Sql("(")]
        for j, p in enumerate(parts):
            branch += [*([Sql(" AND ")] if j else []), *p]
        branches.append([*branch, Sql(")")])
    if not branches:
        return [Sql("1 = 0")]
    out: list[Token] = [Sql("(")]
    for j, b in enumerate(branches):
        out += [*([Sql(" OR ")] if j else []), *b]
    return [*out, Sql(")")]


def compile_plan(plan: Plan, schema: Schema, *, tenant: str, max_limit: int) -> Compiled:
    ds = schema.datasets.get(plan.dataset)
    if ds is None:
        allowed = sorted(schema.datasets)
        raise invalid(
            f"Unknown dataset {shown(plan.dataset)}; allowed: {', '.join(allowed)}.",
            ["dataset"],
            "unknown_dataset",
            allowed,
        )
    if plan.limit > max_limit:
        raise invalid(
            f"limit is at most {max_limit}; page through the rest with next_cursor.",
            ["limit"],
            "limit_too_large",
        )

    group_by: list[Column] = []
    for i, name in enumerate(plan.group_by):
        col = _column(ds, name, ["group_by", i])
        if col in group_by:
            raise invalid(f"{name!r} appears twice in group_by.", ["group_by", i], "duplicate")
        group_by.append(col)

    names: list[str] = []
    outputs: list[Expr] = []
    aliases: dict[str, Expr] = {}
    for i, item in enumerate(plan.select):
        if isinstance(item, str):
            col = _column(ds, item, ["select", i])
            name, expr = col.name, _col_expr(col)
        else:
            name, expr = _aggregate(ds, item, ["select", i])
            aliases[name] = expr
        if name in names:
            raise invalid(
                f"The output {name!r} appears twice in select; give one an `as`.", ["select", i], "duplicate"
            )
        names.append(name)
        outputs.append(expr)
    grouped = bool(group_by) or bool(aliases)
    if grouped:
        for i, item in enumerate(plan.select):
            if isinstance(item, str) and ds.columns[item] not in group_by:
                raise invalid(
                    f"{item!r} must be in group_by or inside an aggregate.",
                    ["select", i],
                    "not_grouped",
                    [c.name for c in group_by],
                )

    where: list[Token] = [Sql(" WHERE "), *tenant_predicate(tenant)]
    for i, cond in enumerate(plan.where):
        where += [Sql(" AND ("), *_condition(ds, cond, ["where", i]), Sql(")")]

    keys: list[Key] = []
    seen: set[str] = set()
    for i, order in enumerate(plan.order_by):
        loc = ["order_by", i, "column"]
        if order.column in seen:
            raise invalid(f"{order.column!r} appears twice in order_by.", loc, "duplicate")
        seen.add(order.column)
        if order.column in aliases:
            keys.append(Key(aliases[order.column], order.desc))
            continue
        if grouped:
            allowed = [c.name for c in group_by] + list(aliases)
            if order.column not in allowed:
                raise invalid(
                    f"Cannot order grouped rows by {shown(order.column)}; allowed: "
                    f"{', '.join(allowed) or 'nothing (no group_by)'}.",
                    loc,
                    "unknown_order",
                    allowed,
                )
        keys.append(Key(_col_expr(_column(ds, order.column, loc)), order.desc))
    if grouped:
        keys += [Key(_col_expr(c), False) for c in group_by if c.name not in seen]
    elif KEY_COLUMN not in seen:
        keys.append(Key(Expr((Ident(KEY_COLUMN),), "int", False, aggregate=False), False))

    fingerprint = cursors.fingerprint(plan.canonical(), tenant)
    if plan.cursor is not None:
        if not keys:
            raise invalid("This query returns a single row; it has no pages.", ["cursor"], "cursor_mismatch")
        after = _after(keys, cursors.decode(plan.cursor, fingerprint=fingerprint, keys=len(keys)))
        if grouped:
            having: list[Token] = [Sql(" HAVING "), *after]
        else:
            where += [Sql(" AND "), *after]
            having = []
    else:
        having = []

    tokens: list[Token] = [Sql("SELECT ")]
    for i, expr in enumerate([*outputs, *(k.expr for k in keys)]):
        tokens += [*([Sql(", ")] if i else []), *expr.tokens]
    tokens += [Sql(" FROM "), Ident(ds.table), *where]
    if group_by:
        tokens.append(Sql(" GROUP BY "))
        for i, col in enumerate(group_by):
            tokens += [*([Sql(", ")] if i else []), Ident(col.name)]
    tokens += having
    if keys:
        tokens.append(Sql(" ORDER BY "))
        for i, key in enumerate(keys):
            tokens += [
                *([Sql(", ")] if i else []),
                *key.expr.tokens,
                Sql(" DESC NULLS LAST" if key.desc else " ASC NULLS LAST"),
            ]
    # One row more than asked: its presence says there is a next page.
    tokens += [Sql(" LIMIT "), Param(plan.limit + 1)]
    return Compiled(
        dataset=ds.name,
        tokens=tokens,
        columns=names,
        types=[o.type for o in outputs],
        keys=keys,
        fingerprint=fingerprint,
        limit=plan.limit,
    )


def _quote(name: str) -> str:
    # Backticks, not double quotes: SQLite reads a double-quoted name it cannot resolve (a column dropped
    # since the schema was read) as a string literal, silently; a backticked one is always an identifier.
    return "`" + name.replace("`", "``") + "`"


def _adapt(value: Any, connection: Any) -> Any:
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, dt.date):
        return connection.ops.adapt_datefield_value(value)
    if isinstance(value, decimal.Decimal) and connection.vendor != "postgresql":
        return float(value)  # SQLite keeps decimals as REAL; a text parameter would compare as text
    return value


def render(tokens: list[Token], connection: Any) -> tuple[Any, list[Any]]:
    params = [_adapt(t.value, connection) for t in tokens if isinstance(t, Param)]
    if connection.vendor == "postgresql":
        from psycopg import sql

        parts: list[sql.Composable] = []
        for t in tokens:
            if isinstance(t, Sql):
                parts.append(sql.SQL(t.text))  # type: ignore[arg-type]  # constants of this module only
            elif isinstance(t, Ident):
                parts.append(sql.Identifier(t.name))
            else:
                parts.append(sql.Placeholder())
        return sql.Composed(parts), params
    return "".join(
        t.text if isinstance(t, Sql) else _quote(t.name) if isinstance(t, Ident) else "%s" for t in tokens
    ), params


__all__ = ["AGGS", "Compiled", "compile_plan", "render", "tenant_predicate"]
