"""django-auditlog on the domain and policy models: field-level changes with the acting person.

``audit.AuditEvent`` records *what the product did* (state changes, outside calls) in the services'
transactions. django-auditlog adds *who changed which field* of configuration and domain rows, including
edits made in the admin (AuditlogMiddleware supplies the logged-in user as actor), so "who gave this agent
that tool?" or "who relaxed this policy?" has an answer.

Registered: every model of this app except the operational queues and logs, which churn on every
commit and carry nothing a person decided (``NOT_AUDITED``). So a new domain or policy model is covered
the day it is added. Never logged, on any model: token hashes and secrets, ``updated_at`` and
``last_used_at`` noise, and a proposal's ``args``/``preview`` (they can hold customers' PII; their
``args_hash`` is logged, and the exact args are on the proposal and in the decision's ``edited_from``).
Reverse relations (a proposal's ``decisions``, ``receipt``…) are not fields of the row: each related row
has its own history, and reading them to diff cost a query per save.

A proposal changes only in the services, on a row they have just read under ``SELECT … FOR UPDATE``
(``remember_locked``). django-auditlog's update receiver reads the row again to diff against it; for a
proposal saved from such a locked read we diff against the copy taken at the read instead (the same
values: nobody else can change a locked row), which saves one query per state change on the hot paths.
django-auditlog has no public hook for "the old instance is known", hence its private
``_create_log_entry`` (pinned: django-auditlog>=3.4,<4; tests/audit/test_auditlog.py covers both paths).

This lives in approvals (not audit) because audit must not import the domain.
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Model

NOT_AUDITED = {"OutboxMessage", "WebhookDelivery", "InboundEvent", "SagaStep"}
ALWAYS_EXCLUDED = {"token_hash", "updated_at", "last_used_at", "password", "last_login"}
EXCLUDED_BY_MODEL = {
    "Proposal": {"args", "preview", "lease_until", "next_attempt_at"},
}


_BEFORE = "_auditlog_before"
_M = TypeVar("_M", bound=Model)


def _excluded(model: type[Model]) -> list[str]:
    fields = model._meta.get_fields()
    names = {f.name for f in fields if getattr(f, "concrete", False)}
    reverse = {f.name for f in fields if not getattr(f, "concrete", False)}
    secret_like = {n for n in names if "secret" in n and not n.endswith("_version")}
    return sorted(
        ((ALWAYS_EXCLUDED | EXCLUDED_BY_MODEL.get(model.__name__, set()) | secret_like) & names) | reverse
    )


def remember_locked(instance: _M) -> _M:
    """Keep a copy of a row read under a row lock: its next save is diffed against it, not re-read."""
    setattr(instance, _BEFORE, copy.copy(instance))
    return instance


def _log_update(sender: type[Model], instance: Model, **kwargs: Any) -> None:
    from auditlog.models import LogEntry
    from auditlog.receivers import _create_log_entry, log_update

    before = instance.__dict__.pop(_BEFORE, None)
    if before is None or instance._state.adding or instance.pk is None:
        log_update(sender, instance, **kwargs)  # django-auditlog's own: reads the old row
        return
    _create_log_entry(
        action=LogEntry.Action.UPDATE,
        instance=instance,
        sender=sender,
        diff_old=before,
        diff_new=instance,
        fields_to_check=kwargs.get("update_fields"),
        # Defaulted on our settings at import by auditlog.conf; django-stubs only sees our settings module.
        use_json_for_changes=settings.AUDITLOG_STORE_JSON_CHANGES,  # type: ignore[misc]
    )


def audited_models() -> list[type[Model]]:
    models = [m for m in apps.get_app_config("approvals").get_models() if m.__name__ not in NOT_AUDITED]
    # Who is staff or superuser is a permission like any other.
    return [*models, get_user_model()]


def register() -> None:
    from auditlog.receivers import check_disable, log_update
    from auditlog.registry import auditlog
    from django.db.models.signals import pre_save

    from approvals.models import Proposal

    for model in audited_models():
        if not auditlog.contains(model):
            auditlog.register(model, exclude_fields=_excluded(model))
    # A proposal's updates: diffed against the locked read when there is one (see the module's doc).
    uid = "approvals.auditlog.proposal_update"
    if pre_save.disconnect(sender=Proposal, dispatch_uid=auditlog._dispatch_uid(pre_save, log_update)):
        pre_save.connect(check_disable(_log_update), sender=Proposal, dispatch_uid=uid, weak=False)
