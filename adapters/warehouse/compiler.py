"""Plan -> parameterized SQL, against the introspected schema.

What reaches the SQL text: constants written here, and identifiers that come from the introspected
allow-list (the request's names are only ever *looked up* there). Every value, the tenant included, is a
bound parameter. ``as`` names never reach the SQL at all: outputs are read back by position.

The output is a list of tokens (``Sql`` constant text, ``Ident`` schema identifier, ``Param`` value)
rendered by ``render`` as ``psycopg.sql.Composed`` on PostgreSQL or as text with safely quoted
identifiers and ``%s`` placeholders on SQLite (``adapters.warehouse.tokens``).

Pagination is keyset: the sort keys are the requested order plus a tie-breaker that makes them unique
(``id`` for rows, the group_by columns for groups), NULLs last in either direction; the next page starts
strictly after the last row's key values, carried in the signed cursor.

This module assembles the statement (``compile_plan``) and owns the tenant filter (``tenant_predicate``);
the checked pieces it is made of (columns, aggregates, conditions, the keyset condition) are
``adapters.warehouse.clauses``.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.warehouse import cursor as cursors
from adapters.warehouse.clauses import Expr, Key, _after, _aggregate, _col_expr, _column, _condition
from adapters.warehouse.errors import invalid, shown
from adapters.warehouse.plan import AGGS, Plan
from adapters.warehouse.schema import KEY_COLUMN, TENANT_COLUMN, Column, ColumnType, Schema
from adapters.warehouse.tokens import Ident, Param, Sql, Token, render


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


# The tokens and their rendering (adapters.warehouse.tokens) and the checked pieces of a query
# (adapters.warehouse.clauses) live apart from the assembly; callers and tests keep reaching them here.
__all__ = [
    "AGGS",
    "Compiled",
    "Expr",
    "Ident",
    "Key",
    "Param",
    "Sql",
    "Token",
    "compile_plan",
    "render",
    "tenant_predicate",
]
