"""The compiler's output: SQL as tokens, and their rendering for the database at hand.

A query is a list of tokens: ``Sql`` (constant text written in ``adapters.warehouse`` itself), ``Ident`` (a
schema identifier from the introspected allow-list) and ``Param`` (a value, always bound). ``render`` turns
them into ``psycopg.sql.Composed`` on PostgreSQL (``sql.SQL``, ``sql.Identifier``, ``sql.Placeholder``), or
on SQLite into text with backtick-quoted identifiers and ``%s`` placeholders, with the parameters adapted
(dates, decimals) as Django's connection would. Nothing an agent sends becomes ``Sql``.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass
from typing import Any


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
