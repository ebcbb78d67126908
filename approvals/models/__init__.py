"""The domain's models, one module per concern (``approvals.models.accounts``, ``.proposals``,
``.deliveries``, ``.policies``, ``.rules``); every model and choice is importable from ``approvals.models``
as before, and Django finds them all here (the migrations are unaffected: a model's app and name are
unchanged)."""

from __future__ import annotations

from approvals.models.accounts import (
    REVIEW_ROLES,
    AgentCredential,
    Membership,
    Role,
    Tenant,
    UserToken,
    role_reviews,
)
from approvals.models.deliveries import InboundEvent, OutboxMessage, ReviewerEmail, SlackPost, WebhookDelivery
from approvals.models.policies import ToolPolicy
from approvals.models.proposals import Channel, Decision, Proposal, Receipt, Risk, SagaStep, Status, Verdict
from approvals.models.rules import Approval, ReviewerGroup, ReviewSnooze

__all__ = [
    "REVIEW_ROLES",
    "AgentCredential",
    "Approval",
    "Channel",
    "Decision",
    "InboundEvent",
    "Membership",
    "OutboxMessage",
    "Proposal",
    "Receipt",
    "ReviewSnooze",
    "ReviewerEmail",
    "ReviewerGroup",
    "Risk",
    "Role",
    "SagaStep",
    "SlackPost",
    "Status",
    "Tenant",
    "ToolPolicy",
    "UserToken",
    "Verdict",
    "WebhookDelivery",
    "role_reviews",
]
