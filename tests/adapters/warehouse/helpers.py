"""Shared by the warehouse tests and tests/approvals/test_queries.py: small seeds, query helpers."""

from __future__ import annotations

import json
from typing import Any

from django.db import connection

from adapters.warehouse.executor import tenant_scope
from adapters.warehouse.models import Customer, Order, Ticket
from adapters.warehouse.seed import warehouse_seed

SMALL = {"orders": 300, "customers": 40, "tickets": 150}
MODELS: dict[str, type[Order | Customer | Ticket]] = {
    "orders": Order,
    "customers": Customer,
    "tickets": Ticket,
}


def seed(tenant: str, **counts: int) -> None:
    warehouse_seed(tenant=tenant, **{**SMALL, **counts})


def ids(tenant: str, dataset: str = "orders") -> list[int]:
    with tenant_scope(tenant, alias="default"):
        return list(
            MODELS[dataset].objects.filter(tenant_id=tenant).order_by("id").values_list("id", flat=True)
        )


def post(client: Any, body: Any) -> Any:
    """POST a plan as raw JSON (json.dumps escapes lone surrogates, which DRF's test renderer cannot)."""
    return client.post("/api/v1/queries/", data=json.dumps(body), content_type="application/json")


def is_postgres() -> bool:
    return connection.vendor == "postgresql"
