from django.apps import AppConfig


class WarehouseConfig(AppConfig):
    """The demo warehouse's tables (``warehouse_orders``, ``warehouse_customers``, ``warehouse_tickets``).

    A Django app of its own (label ``warehouse``) so its migrations, which a router can send to a separate
    database (``WAREHOUSE_DATABASE_URL``), never interleave with the rest of ``adapters``.
    """

    name = "adapters.warehouse"
    label = "warehouse"
    default_auto_field = "django.db.models.BigAutoField"
