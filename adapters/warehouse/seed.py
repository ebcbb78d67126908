"""Demo rows for a tenant's warehouse: enough (tens of thousands) that limits and pagination matter.

Deterministic per tenant (the same slug gives the same rows), idempotent (a tenant that already has
orders is left alone), and fast: ``bulk_create`` in batches inside one transaction per tenant, whose
``acme.tenant`` setting satisfies the row-level security policies on PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from adapters.warehouse.executor import tenant_scope
from adapters.warehouse.models import Customer, Order, Ticket
from adapters.warehouse.router import warehouse_alias

REGIONS = ["emea", "amer", "apac", "latam"]
SEGMENTS = ["enterprise", "mid-market", "smb"]
PRODUCTS = ["gateway", "connector", "support-plan", "training", "sandbox", "analytics"]
ORDER_STATUSES = ["paid", "paid", "paid", "pending", "refunded", "cancelled"]
TICKET_STATUSES = ["new", "open", "pending", "solved", "solved", "closed"]
PRIORITIES = ["low", "normal", "normal", "high", "urgent"]
CHANNELS = ["email", "chat", "phone", "web"]
SUBJECTS = [
    "Login fails",
    "Invoice question",
    "Webhook retries",
    "Slow dashboard",
    "API 429s",
    "Export stuck",
    "SSO setup",
    "Refund request",
]
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
SPAN_SECONDS = 540 * 24 * 3600  # about 18 months of history
BATCH = 2000


def warehouse_seed(
    *, tenant: str, orders: int = 20_000, customers: int = 2_000, tickets: int = 10_000
) -> int:
    """Seed ``tenant``'s warehouse rows unless it has some; returns how many rows were created."""
    alias = warehouse_alias()
    rng = random.Random(f"acme-warehouse:{tenant}")  # demo data, not security

    def when() -> dt.datetime:
        return START + dt.timedelta(seconds=rng.randrange(SPAN_SECONDS))

    with tenant_scope(tenant, alias=alias):
        if Order.objects.using(alias).filter(tenant_id=tenant).exists():
            return 0
        people = [
            Customer(
                tenant_id=tenant,
                name=f"{tenant} customer {i:05d}",
                email=f"customer{i}@{tenant}.example",
                region=rng.choice(REGIONS),
                segment=rng.choice(SEGMENTS),
                lifetime_value=Decimal(rng.randrange(0, 5_000_000)) / 100,
                created_at=when(),
            )
            for i in range(max(customers, 1))
        ]
        created = Customer.objects.using(alias).bulk_create(people, batch_size=BATCH)
        ids = [c.pk for c in created if c.pk is not None] or list(range(1, len(people) + 1))
        Order.objects.using(alias).bulk_create(
            (
                Order(
                    tenant_id=tenant,
                    customer_id=rng.choice(ids),
                    region=rng.choice(REGIONS),
                    status=rng.choice(ORDER_STATUSES),
                    product=rng.choice(PRODUCTS),
                    quantity=rng.randint(1, 20),
                    amount=Decimal(rng.randrange(500, 200_000)) / 100,
                    currency="EUR",
                    created_at=when(),
                )
                for _ in range(orders)
            ),
            batch_size=BATCH,
        )
        rows = []
        for _ in range(tickets):
            opened = when()
            solved = rng.random() < 0.6
            rows.append(
                Ticket(
                    tenant_id=tenant,
                    customer_id=rng.choice(ids),
                    subject=rng.choice(SUBJECTS),
                    status=rng.choice(TICKET_STATUSES),
                    priority=rng.choice(PRIORITIES),
                    channel=rng.choice(CHANNELS),
                    satisfaction=rng.randint(1, 5) if solved and rng.random() < 0.7 else None,
                    created_at=opened,
                    resolved_at=opened + dt.timedelta(minutes=rng.randrange(5, 60 * 24 * 10))
                    if solved
                    else None,
                )
            )
        Ticket.objects.using(alias).bulk_create(rows, batch_size=BATCH)
    return len(people) + orders + tickets
