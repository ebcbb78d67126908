"""The pieces of a compiled query, each checked against the introspected schema: columns, aggregates,
``where`` conditions, and the keyset condition that starts a page after the last row's key values.

A name from the plan is only ever *looked up* in the dataset's columns; a refusal (``InvalidQuery``) names
what is allowed. Every value is a bound ``Param``, converted to the column's type (``values.typed``).
An ``Expr`` is the tokens of an output or a sort key with its type and nullability; a ``Key`` is a sort key
and its direction. ``adapters.warehouse.compiler`` assembles them into one statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from adapters.warehouse.errors import invalid, shown
from adapters.warehouse.plan import Aggregate
from adapters.warehouse.schema import TENANT_COLUMN, Column, ColumnType, Dataset
from adapters.warehouse.tokens import Ident, Param, Sql, Token
from adapters.warehouse.values import text, typed

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
