"""The datasets an agent may query: the real warehouse tables, as introspected, cut to an allow-list.

A dataset is offered when its table exists and has the ``tenant_id`` (isolation) and ``id`` (pagination
tie-breaker) columns; a column when it is on the allow-list *and* in the table with a type the compiler
knows. The result is kept per process for ``ACME_WAREHOUSE_SCHEMA_TTL`` seconds (it is a copy of the
database's catalogue, not shared state) and dropped at once when a query trips over a missing column, so a
column removed from the warehouse stops being offered instead of failing every query.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.db import connections

from adapters.warehouse.router import warehouse_alias

ColumnType = Literal["int", "decimal", "float", "text", "datetime", "date", "bool"]

TENANT_COLUMN = "tenant_id"
KEY_COLUMN = "id"

# dataset -> (table, columns an agent may see). tenant_id is never offered (the filter is implicit);
# customers.email is PII and stays out.
ALLOWLIST: dict[str, tuple[str, tuple[str, ...]]] = {
    "orders": (
        "warehouse_orders",
        ("id", "customer_id", "region", "status", "product", "quantity", "amount", "currency", "created_at"),
    ),
    "customers": (
        "warehouse_customers",
        ("id", "name", "region", "segment", "lifetime_value", "created_at"),
    ),
    "tickets": (
        "warehouse_tickets",
        (
            "id",
            "customer_id",
            "subject",
            "status",
            "priority",
            "channel",
            "satisfaction",
            "created_at",
            "resolved_at",
        ),
    ),
}

# Django's introspection names a column's type as the model field inspectdb would write.
_FIELD_TYPES: dict[str, ColumnType] = {
    "AutoField": "int",
    "BigAutoField": "int",
    "SmallAutoField": "int",
    "IntegerField": "int",
    "BigIntegerField": "int",
    "SmallIntegerField": "int",
    "PositiveIntegerField": "int",
    "PositiveSmallIntegerField": "int",
    "PositiveBigIntegerField": "int",
    "DecimalField": "decimal",
    "FloatField": "float",
    "CharField": "text",
    "TextField": "text",
    "SlugField": "text",
    "EmailField": "text",
    "DateTimeField": "datetime",
    "DateField": "date",
    "BooleanField": "bool",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool


@dataclass(frozen=True)
class Dataset:
    name: str
    table: str
    columns: dict[str, Column]


@dataclass(frozen=True)
class Schema:
    datasets: dict[str, Dataset]
    loaded_at: float

    def describe(self) -> dict[str, dict[str, dict[str, str]]]:
        """``{"orders": {"columns": {"amount": "decimal", ...}}, ...}`` for people and agents."""
        return {
            name: {"columns": {c.name: c.type for c in ds.columns.values()}}
            for name, ds in sorted(self.datasets.items())
        }

    @property
    def signature(self) -> str:
        return repr(
            sorted(
                (d.name, sorted((c.name, c.type) for c in d.columns.values())) for d in self.datasets.values()
            )
        )


def allowlist() -> dict[str, tuple[str, tuple[str, ...]]]:
    return getattr(settings, "ACME_WAREHOUSE_ALLOWLIST", None) or ALLOWLIST


def introspect(alias: str | None = None) -> Schema:
    connection = connections[alias or warehouse_alias()]
    introspection = connection.introspection
    datasets: dict[str, Dataset] = {}
    with connection.cursor() as cursor:
        tables = set(introspection.table_names(cursor))
        for name, (table, allowed) in allowlist().items():
            if table not in tables:
                continue
            found: dict[str, Column] = {}
            for info in introspection.get_table_description(cursor, table):
                field_type = introspection.get_field_type(info.type_code, info)
                if isinstance(field_type, tuple):
                    field_type = field_type[0]
                kind = _FIELD_TYPES.get(str(field_type))
                if kind is not None:
                    found[info.name] = Column(name=info.name, type=kind, nullable=bool(info.null_ok))
            if TENANT_COLUMN not in found or KEY_COLUMN not in found:
                continue
            columns = {c: found[c] for c in allowed if c in found and c != TENANT_COLUMN}
            datasets[name] = Dataset(name=name, table=table, columns=columns)
    return Schema(datasets=datasets, loaded_at=time.monotonic())


_lock = threading.Lock()
_cache: dict[str, Schema] = {}


def current(*, refresh: bool = False) -> Schema:
    alias = warehouse_alias()
    ttl = float(getattr(settings, "ACME_WAREHOUSE_SCHEMA_TTL", 60))
    with _lock:
        cached = _cache.get(alias)
        if not refresh and cached is not None and time.monotonic() - cached.loaded_at < ttl:
            return cached
    fresh = introspect(alias)
    with _lock:
        _cache[alias] = fresh
    return fresh


def invalidate() -> None:
    with _lock:
        _cache.clear()
