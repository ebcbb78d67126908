"""Sends the warehouse app's tables (and its migrations) to the warehouse database.

``settings.WAREHOUSE_DB_ALIAS`` is ``"warehouse"`` when ``WAREHOUSE_DATABASE_URL`` is set, else ``"default"``
(the app's own database, separate tables). Nothing but the warehouse is migrated onto a separate warehouse.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

APP_LABEL = "warehouse"


def warehouse_alias() -> str:
    return getattr(settings, "WAREHOUSE_DB_ALIAS", "default")


class WarehouseRouter:
    def db_for_read(self, model: Any, **hints: Any) -> str | None:
        return warehouse_alias() if model._meta.app_label == APP_LABEL else None

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return warehouse_alias() if model._meta.app_label == APP_LABEL else None

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        return None

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        alias = warehouse_alias()
        if app_label == APP_LABEL:
            return db == alias
        if db == alias and alias != "default":
            return False
        return None
