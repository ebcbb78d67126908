"""django-auditlog where field history is the point: who changed which field of configuration rows.

``audit.AuditEvent`` records *what the product did* (state changes, outside calls) in the services'
transactions, hash-chained. django-auditlog adds *who changed which field* of configuration rows, including
edits made in the admin (AuditlogMiddleware supplies the logged-in user as actor), so "who gave this agent
that tool?", "who relaxed this policy?" or "who added this person to that reviewer group?" has an answer.

Registered: every model of this app except the operational queues and logs, which churn on every commit
and carry nothing a person decided, and a proposal's own rows (``NOT_AUDITED``); the tenants' outside
connections (``adapters.Connection``); the users. A proposal, its decision, its receipt and its approvals
and snoozes change only in the services, and every change is an audit event with who, what, when and where (``approvals.lifecycle``:
the status and ``status_reason``, the fields the change saved, the decision's verdict, the receipt's
fields), so a second, per-field history of them would cost a write per state change for nothing. A
reviewer group's members are tracked as a many-to-many field. So a new configuration model is covered the
day it is added. Never logged, on any model: token hashes, secrets and encrypted values, ``updated_at``
and ``last_used_at`` noise. Reverse relations are not fields of the row: each related row has its own
history, and reading them to diff cost a query per save.

This lives in approvals (not audit) because audit must not import the domain.
"""

from __future__ import annotations

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import Model

# Operational queues and logs, and a proposal's own rows (their history is the audit trail).
NOT_AUDITED = {
    "OutboxMessage",
    "WebhookDelivery",
    "InboundEvent",
    "SagaStep",
    "Proposal",
    "Decision",
    "Receipt",
    # Also a proposal's: its approvals (each is ``proposal.approval_recorded`` or the decision's event), its
    # snoozes (``proposal.snoozed``), and what was sent about it (its Slack message, its reviewers' emails).
    "Approval",
    "ReviewSnooze",
    "SlackPost",
    "ReviewerEmail",
}
ALWAYS_EXCLUDED = {"token_hash", "updated_at", "last_used_at", "password", "last_login"}
EXCLUDED_BY_MODEL: dict[str, set[str]] = {}
# Many-to-many fields whose changes are logged (who was added to or removed from what).
M2M_BY_MODEL = {"ReviewerGroup": {"members"}}


def _excluded(model: type[Model]) -> list[str]:
    fields = model._meta.get_fields()
    names = {f.name for f in fields if getattr(f, "concrete", False)}
    reverse = {f.name for f in fields if not getattr(f, "concrete", False)}
    secret_like = {
        n for n in names if ("secret" in n and not n.endswith("_version")) or n.endswith("_encrypted")
    }
    return sorted(
        ((ALWAYS_EXCLUDED | EXCLUDED_BY_MODEL.get(model.__name__, set()) | secret_like) & names) | reverse
    )


def audited_models() -> list[type[Model]]:
    models = [m for m in apps.get_app_config("approvals").get_models() if m.__name__ not in NOT_AUDITED]
    # A tenant's connections (where its calls go, with which token) and who is staff or superuser (a
    # permission like any other).
    return [*models, apps.get_model("adapters", "Connection"), get_user_model()]


def register() -> None:
    from auditlog.registry import auditlog

    for model in audited_models():
        if not auditlog.contains(model):
            auditlog.register(
                model, exclude_fields=_excluded(model), m2m_fields=M2M_BY_MODEL.get(model.__name__, set())
            )
