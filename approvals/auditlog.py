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

This lives in approvals (not audit) because audit must not import the domain.
"""

from __future__ import annotations

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import Model

NOT_AUDITED = {"OutboxMessage", "WebhookDelivery", "InboundEvent", "SagaStep"}
ALWAYS_EXCLUDED = {"token_hash", "updated_at", "last_used_at", "password", "last_login"}
EXCLUDED_BY_MODEL = {
    "Proposal": {"args", "preview", "lease_until", "next_attempt_at"},
}


def _excluded(model: type[Model]) -> list[str]:
    names = {f.name for f in model._meta.get_fields() if getattr(f, "concrete", False)}
    secret_like = {n for n in names if "secret" in n and not n.endswith("_version")}
    return sorted((ALWAYS_EXCLUDED | EXCLUDED_BY_MODEL.get(model.__name__, set()) | secret_like) & names)


def audited_models() -> list[type[Model]]:
    models = [m for m in apps.get_app_config("approvals").get_models() if m.__name__ not in NOT_AUDITED]
    # Who is staff or superuser is a permission like any other.
    return [*models, get_user_model()]


def register() -> None:
    from auditlog.registry import auditlog

    for model in audited_models():
        if not auditlog.contains(model):
            auditlog.register(model, exclude_fields=_excluded(model))
