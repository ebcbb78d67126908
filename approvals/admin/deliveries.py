"""What the gateway sends and receives, read-only: reviewers' emails, agents' webhook deliveries (with the
redeliver action), Slack review posts, inbound CRM events and the outbox."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from approvals import webhooks
from approvals.admin.base import ReadOnlyAdmin
from approvals.models import InboundEvent, OutboxMessage, ReviewerEmail, SlackPost, WebhookDelivery
from audit import services as audit
from audit.admin_tools import choices_filter, input_filter


@admin.register(ReviewerEmail)
class ReviewerEmailAdmin(ReadOnlyAdmin):
    """Reviewers' notification emails (approvals.notifications): what each listed and its delivery state
    (open: collecting or waiting for a retry; sending; sent; failed, with the last error)."""

    tenant_lookup = "tenant__slug"
    list_display = [
        "kind",
        "recipient",
        "tenant",
        "state",
        "attempts",
        "last_error",
        "send_after",
        "sent_at",
        "listed",
    ]
    list_filter = ["state", "kind", "tenant", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["tenant", "user"]
    readonly_fields = [f.name for f in ReviewerEmail._meta.fields]

    @admin.display(description="to", ordering="user__username")
    def recipient(self, obj: ReviewerEmail) -> str:
        return f"{obj.user.get_username()} <{obj.user.email}>"

    @admin.display(description="proposals")
    def listed(self, obj: ReviewerEmail) -> int:
        return len(obj.proposal_ids or [])


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """Agent webhook deliveries: state, attempts, last error; redeliver a given-up (or lost) one."""

    tenant_lookup = "agent__tenant__slug"
    list_display = [
        "event",
        "agent",
        "tenant",
        "state",
        "attempts",
        "last_error",
        "created_at",
        "delivered_at",
        "next_attempt_at",
        "proposal_link",
    ]
    list_filter = [
        "state",
        choices_filter("event", "event", list(webhooks.EVENTS)),
        "agent__tenant",
        input_filter("agent", "agent__name", "agent (name)"),
        ("created_at", admin.DateFieldListFilter),
    ]
    list_select_related = ["agent", "agent__tenant"]
    search_fields = ["=id"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["redeliver"]

    @admin.display(description="tenant", ordering="agent__tenant__slug")
    def tenant(self, obj: WebhookDelivery) -> str:
        return obj.agent.tenant.slug

    @admin.display(description="proposal")
    def proposal_link(self, obj: WebhookDelivery) -> str:
        proposal_id = (obj.payload or {}).get("proposal", {}).get("id")
        if not proposal_id:
            return "-"
        return format_html('<a href="{}">review page</a>', reverse("proposal-review", args=[proposal_id]))

    def has_redeliver_permission(self, request: HttpRequest) -> bool:
        return self.sees_anything(request) and bool(request.user.has_perm("approvals.change_webhookdelivery"))

    @admin.action(
        description="Redeliver the selected deliveries (same event id, a fresh attempt budget)",
        permissions=["redeliver"],
    )
    def redeliver(self, request: HttpRequest, queryset: Any) -> None:
        from audit.where import where_from

        where = where_from(request, channel="web")
        actor = audit.Actor(type="user", id=str(request.user.pk), label=request.user.get_username())
        # The action runs on the change list's queryset: the viewer's tenants' deliveries only.
        done = sum(webhooks.delivery_redeliver(delivery=d, actor=actor, where=where) for d in queryset)
        self.message_user(
            request,
            f"Redelivering {done} deliver{'y' if done == 1 else 'ies'}; "
            f"{queryset.count() - done} skipped (still pending: retries are scheduled).",
        )


@admin.register(SlackPost)
class SlackPostAdmin(ReadOnlyAdmin):
    """Each proposal's message in its tenant's Slack review channel: posted or not, attempts, last error."""

    tenant_lookup = "proposal__tenant__slug"
    list_display = [
        "proposal_link",
        "tenant",
        "channel",
        "ts",
        "state",
        "shown",
        "attempts",
        "last_error",
        "updated_at",
    ]
    list_filter = ["state", "proposal__tenant", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["proposal", "proposal__tenant"]
    search_fields = ["=ts"]
    readonly_fields = [f.name for f in SlackPost._meta.fields]

    @admin.display(description="tenant", ordering="proposal__tenant__slug")
    def tenant(self, obj: SlackPost) -> str:
        return obj.proposal.tenant.slug

    @admin.display(description="proposal")
    def proposal_link(self, obj: SlackPost) -> str:
        return format_html('<a href="{}">review page</a>', reverse("proposal-review", args=[obj.proposal_id]))


@admin.register(InboundEvent)
class InboundEventAdmin(ReadOnlyAdmin):
    """Signed events received from the CRM (what agents read at /api/v1/events/)."""

    tenant_lookup = "tenant__slug"
    list_display = ["event_id", "source", "type", "tenant", "received_at"]
    list_filter = ["source", "tenant", ("received_at", admin.DateFieldListFilter)]
    list_select_related = ["tenant"]
    search_fields = ["=event_id"]
    readonly_fields = [f.name for f in InboundEvent._meta.fields]


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    # The queue of every tenant's commits and webhooks; a payload names no tenant: operators only.
    tenant_lookup = None
    list_display = ["id", "kind", "payload", "available_at", "dispatched_at", "attempts"]
    list_filter = ["kind"]
