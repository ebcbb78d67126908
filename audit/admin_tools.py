"""Admin building blocks for tables with millions of rows (used by the audit and approvals admins).

Django's defaults run queries that grow with the table on every changelist view: ``COUNT(*)`` for the
paginator, ``SELECT DISTINCT`` for a list filter on a plain column, ``DISTINCT year/month`` for
``date_hierarchy``. These replacements keep each page's cost bounded:

* ``EstimatedCountPaginator`` — unfiltered on PostgreSQL: the planner's estimate (``pg_class.reltuples``);
  otherwise a count capped at ``COUNT_CAP`` rows (``SELECT COUNT(*) FROM (... LIMIT cap+1)``).
* ``InputFilter`` — a text box instead of a list of values (tenant, actor, tool, id...).
* ``ChoicesFilter`` — a fixed vocabulary: no query at all.
* ``IndexedValuesFilter`` — the distinct values of an *indexed* column, read on PostgreSQL with a
  skip scan (one index probe per distinct value, not a scan of the table).
* ``streaming_export`` — CSV or JSON streamed from a server-side cursor, never materialized.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Model, QuerySet
from django.http import StreamingHttpResponse
from django.utils.functional import cached_property

COUNT_CAP = 10_000
# Below this estimate an exact (capped) count is cheap and more honest than the planner's guess.
ESTIMATE_ABOVE = 100_000
EXPORT_CHUNK = 2_000


class EstimatedCountPaginator(Paginator):
    cap = COUNT_CAP

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        if not isinstance(qs, QuerySet):
            return super().count
        connection = connections[qs.db]
        if connection.vendor == "postgresql" and not qs.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [qs.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] >= ESTIMATE_ABOVE:
                return int(row[0])
        # Counting a LIMITed subquery stops at cap+1 rows, however large the table.
        return qs.order_by()[: self.cap + 1].count()


class InputFilter(admin.SimpleListFilter):
    """A free-text filter: ``lookup`` is the ORM lookup the typed value is matched with."""

    template = "admin/audit/input_filter.html"
    lookup = ""
    placeholder = ""

    def lookups(self, request: Any, model_admin: Any) -> Iterable[tuple[Any, str]]:
        return (("", ""),)  # one dummy entry, so the filter is shown

    def queryset(self, request: Any, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = (self.value() or "").strip()
        if not value:
            return queryset
        return queryset.filter(**{self.lookup: value})

    def choices(self, changelist: Any) -> Iterator[Any]:
        others = [
            (key, value)
            for key, values in changelist.params.items()
            if key != self.parameter_name
            for value in (values if isinstance(values, list) else [values])
        ]
        yield {
            "selected": self.value() is None,
            "query_string": changelist.get_query_string(remove=[self.parameter_name]),
            "display": "All",
            "query_parts": others,
            "value": self.value() or "",
            "placeholder": self.placeholder,
        }


def input_filter(parameter: str, lookup: str, title: str, placeholder: str = "") -> type[InputFilter]:
    return type(
        f"{parameter.title().replace('_', '')}InputFilter",
        (InputFilter,),
        {"parameter_name": parameter, "lookup": lookup, "title": title, "placeholder": placeholder},
    )


class ChoicesFilter(admin.SimpleListFilter):
    field = ""
    options: Sequence[tuple[str, str]] = ()

    def lookups(self, request: Any, model_admin: Any) -> Iterable[tuple[Any, str]]:
        return self.options

    def queryset(self, request: Any, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value():
            return queryset.filter(**{self.field: self.value()})
        return queryset


def choices_filter(
    field: str, title: str, options: Sequence[str | tuple[str, str]], parameter: str | None = None
) -> type[ChoicesFilter]:
    pairs = [o if isinstance(o, tuple) else (o, o) for o in options]
    return type(
        f"{(parameter or field).title().replace('_', '')}ChoicesFilter",
        (ChoicesFilter,),
        {
            "parameter_name": parameter or field.replace("__", "_"),
            "field": field,
            "title": title,
            "options": pairs,
        },
    )


def distinct_indexed_values(model: type[Model], column: str, limit: int = 200) -> list[str]:
    """Distinct values of a column that leads an index, cheaply (a loose index scan on PostgreSQL)."""
    table = model._meta.db_table
    connection = connections["default"]
    qn = connection.ops.quote_name
    if connection.vendor == "postgresql":
        sql = (
            f"WITH RECURSIVE t(v) AS ("  # noqa: S608 (identifiers from model metadata, quoted)
            f"(SELECT {qn(column)} FROM {qn(table)} ORDER BY 1 LIMIT 1) UNION ALL "
            f"SELECT (SELECT {qn(column)} FROM {qn(table)} WHERE {qn(column)} > t.v ORDER BY 1 LIMIT 1) "
            f"FROM t WHERE t.v IS NOT NULL) SELECT v FROM t WHERE v IS NOT NULL LIMIT %s"
        )
    else:
        sql = f"SELECT DISTINCT {qn(column)} FROM {qn(table)} ORDER BY 1 LIMIT %s"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


class IndexedValuesFilter(admin.SimpleListFilter):
    field = ""

    def lookups(self, request: Any, model_admin: Any) -> Iterable[tuple[Any, str]]:
        return [(v, v or "(none)") for v in distinct_indexed_values(model_admin.model, self.field)]

    def queryset(self, request: Any, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() is not None:
            return queryset.filter(**{self.field: self.value()})
        return queryset


def indexed_values_filter(field: str, title: str) -> type[IndexedValuesFilter]:
    return type(
        f"{field.title()}IndexedValuesFilter",
        (IndexedValuesFilter,),
        {"parameter_name": field, "field": field, "title": title},
    )


# --- export --------------------------------------------------------------------------------------------


class _Echo:
    def write(self, value: str) -> str:
        return value


def _cell(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value


# A cell starting with = + - @ (or a tab or CR before one) is a formula to a spreadsheet (CSV injection).
# Such a character at the start of the value, or after a separator a spreadsheet may split on (`,` `;` tab
# `|`, or a line break; locales that use `;` split "agent/1.0;=1+1" into a formula cell whatever the
# quoting), gets a `'` before it, which makes the cell text. OWASP's advice; hand-written because no
# maintained library does this for a streamed csv.writer.
_FORMULA = re.compile(r"""(^|[,;\t|\r\n]["' ]{0,8})(?=[=+\-@\t\r])""")


def _csv_safe(value: Any) -> Any:
    if isinstance(value, str):
        return _FORMULA.sub(r"\1'", value)
    return value


def _rows(queryset: QuerySet[Any], fields: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    yield from queryset.values_list(*fields).iterator(chunk_size=EXPORT_CHUNK)


def streaming_export(
    queryset: QuerySet[Any], fields: Sequence[str], fmt: str, filename: str
) -> StreamingHttpResponse:
    """Stream ``fields`` of every row of ``queryset`` as CSV or a JSON array."""
    if fmt == "csv":
        # Every field quoted: a reader that splits on another separator still sees one cell per field.
        writer = csv.writer(_Echo(), quoting=csv.QUOTE_ALL)

        def csv_lines() -> Iterator[str]:
            yield writer.writerow(fields)
            for row in _rows(queryset, fields):
                yield writer.writerow([_csv_safe(_cell(v)) for v in row])

        response = StreamingHttpResponse(csv_lines(), content_type="text/csv; charset=utf-8")
    elif fmt == "json":

        def json_chunks() -> Iterator[str]:
            yield "["
            for n, row in enumerate(_rows(queryset, fields)):
                # Times as ISO 8601, as in the CSV (json's default=str wrote "2026-11-29 15:23:58+00:00").
                record = {
                    f: v.isoformat() if isinstance(v, datetime | date) else v
                    for f, v in zip(fields, row, strict=True)
                }
                yield ("," if n else "") + "\n" + json.dumps(record, default=str, sort_keys=False)
            yield "\n]\n"

        response = StreamingHttpResponse(json_chunks(), content_type="application/json")
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    response["Content-Disposition"] = f'attachment; filename="{filename}.{fmt}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
