"""System checks of the approvals domain, run by ``manage.py check --deploy``.

``acme.E001``: a demo account (approvals.demo) is still active with DEBUG off. Its password is in the
README, so a production database must not keep one that can sign in or call the API.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, connection

DEMO_ACCOUNT_ACTIVE = (
    "Demo account still active with DEBUG off: {account}. Its password or token is published."
)


@register(Tags.security, deploy=True)
def demo_accounts_check(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    if settings.DEBUG:
        return []
    from approvals import demo

    try:
        # A database not migrated yet has no accounts at all (and a deploy check may run before migrate).
        if "approvals_membership" not in connection.introspection.table_names():
            return []
        active = demo.demo_accounts()
    except DatabaseError as exc:
        return [
            Warning(f"Could not look for active demo accounts: {exc}", hint=demo.REMOVE_HINT, id="acme.W001")
        ]
    return [
        Error(DEMO_ACCOUNT_ACTIVE.format(account=account), hint=demo.REMOVE_HINT, id="acme.E001")
        for account in active
    ]
