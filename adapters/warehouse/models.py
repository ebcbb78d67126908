"""The demo warehouse: three fact/dimension tables, each row owned by one tenant (``tenant_id`` = slug).

The query path never uses these models: it introspects the real tables (``schema.py``) and compiles plans
to SQL. The models exist to create the tables (migrations) and to seed them (``seed.py``).
"""

from __future__ import annotations

from django.db import models


class Customer(models.Model):
    tenant_id = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    email = models.EmailField()  # PII: present in the table, left out of the query allow-list
    region = models.CharField(max_length=32)
    segment = models.CharField(max_length=32)
    lifetime_value = models.DecimalField(max_digits=12, decimal_places=2)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "warehouse_customers"
        indexes = [
            models.Index(fields=["tenant_id", "id"], name="wh_customers_tenant_id"),
            models.Index(fields=["tenant_id", "created_at"], name="wh_customers_tenant_created"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}/{self.name}"


class Order(models.Model):
    tenant_id = models.CharField(max_length=64)
    customer_id = models.BigIntegerField()
    region = models.CharField(max_length=32)
    status = models.CharField(max_length=16)
    product = models.CharField(max_length=64)
    quantity = models.IntegerField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField()

    class Meta:
        db_table = "warehouse_orders"
        indexes = [
            models.Index(fields=["tenant_id", "id"], name="wh_orders_tenant_id"),
            models.Index(fields=["tenant_id", "created_at"], name="wh_orders_tenant_created"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}/order {self.pk}"


class Ticket(models.Model):
    tenant_id = models.CharField(max_length=64)
    customer_id = models.BigIntegerField()
    subject = models.CharField(max_length=200)
    status = models.CharField(max_length=16)
    priority = models.CharField(max_length=16)
    channel = models.CharField(max_length=16)
    satisfaction = models.SmallIntegerField(null=True)
    created_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True)

    class Meta:
        db_table = "warehouse_tickets"
        indexes = [
            models.Index(fields=["tenant_id", "id"], name="wh_tickets_tenant_id"),
            models.Index(fields=["tenant_id", "created_at"], name="wh_tickets_tenant_created"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant_id}/ticket {self.pk}"
