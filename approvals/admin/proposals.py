"""Proposals (with their decisions inline and the dead-letter actions), decisions and receipts."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from approvals import lifecycle
from approvals.admin.base import ProposalToolFilter, ReadOnlyAdmin, ToolFilter
from approvals.models import Decision, Proposal, Receipt
from audit.admin_tools import choices_filter, input_filter


class DecisionInline(admin.TabularInline):
    model = Decision
    extra = 0
    can_delete = False
    readonly_fields = ["verdict", "reviewer", "reason", "args_hash", "edited_from", "channel", "ip", "at"]
    fields = tuple(readonly_fields)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class DeadLetterFilter(admin.SimpleListFilter):
    """Failed commits waiting for an admin: requeue them or discard them."""

    title = "dead letters"
    parameter_name = "dead_letter"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("waiting", "waiting for an admin"), ("discarded", "discarded")]

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        if self.value() == "waiting":
            return queryset.filter(lifecycle.DEAD_LETTERS)
        if self.value() == "discarded":
            return queryset.filter(discarded_at__isnull=False)
        return queryset


@admin.register(Proposal)
class ProposalAdmin(ReadOnlyAdmin):
    tenant_lookup = "tenant__slug"
    list_display = [
        "short_id",
        "summary",
        "tenant",
        "tool",
        "status",
        "risk",
        "agent",
        "commit_attempts",
        "created_at",
        "review_link",
    ]
    # No date_hierarchy: it scans for distinct years/months; the relative date filter costs no query.
    list_filter = [
        "status",
        ToolFilter,
        "risk",
        "tenant",
        input_filter("agent", "agent__name", "agent (name)"),
        ("created_at", admin.DateFieldListFilter),
    ]
    list_select_related = ["tenant", "agent", "agent__tenant"]
    search_fields = ["=id", "=idempotency_key"]
    inlines = [DecisionInline]
    readonly_fields = [f.name for f in Proposal._meta.fields]
    actions = ["requeue_dead_letters", "discard_dead_letters"]

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return [DeadLetterFilter, *super().get_list_filter(request)]

    # The id's first block is enough to tell rows apart on a page (the whole id wrapped over five lines at
    # 1440 px); search takes the whole id, and the change page shows it.
    @admin.display(description="id", ordering="id")
    def short_id(self, obj: Proposal) -> str:
        return format_html('<code class="acme-id" title="{}">{}…</code>', obj.pk, str(obj.pk)[:8])

    @admin.display(description="summary")
    def summary(self, obj: Proposal) -> str:
        text = str((obj.preview or {}).get("summary") or obj.tool)
        return text if len(text) <= 90 else text[:89] + "…"

    @admin.display(description="review")
    def review_link(self, obj: Proposal) -> str:
        return format_html('<a href="{}">review page</a>', reverse("proposal-review", args=[obj.pk]))

    def has_dead_letter_permission(self, request: HttpRequest) -> bool:
        # Requeue/discard change what happens to an approved write: admins with change rights only (and the
        # action runs on the change list's queryset: the viewer's tenants' proposals only).
        return self.sees_anything(request) and bool(request.user.has_perm("approvals.change_proposal"))

    def _dead_letter_action(self, request: HttpRequest, queryset: Any, service: Any, verb: str) -> None:
        from approvals import errors, services
        from audit.where import where_from

        where = where_from(request, channel="web")
        done, skipped = 0, 0
        for proposal in queryset:
            try:
                getattr(services, service)(proposal=proposal, admin=request.user, where=where)
                done += 1
            except errors.InvalidTransition:
                skipped += 1
        self.message_user(
            request, f"{verb} {done} dead-lettered proposal(s); {skipped} skipped (not failed, or discarded)."
        )

    @admin.action(description="Requeue the selected dead letters (commit again)", permissions=["dead_letter"])
    def requeue_dead_letters(self, request: HttpRequest, queryset: Any) -> None:
        self._dead_letter_action(request, queryset, "proposal_requeue", "Requeued")

    @admin.action(
        description="Discard the selected dead letters (leave them failed)", permissions=["dead_letter"]
    )
    def discard_dead_letters(self, request: HttpRequest, queryset: Any) -> None:
        self._dead_letter_action(request, queryset, "proposal_discard", "Discarded")


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    tenant_lookup = "proposal__tenant__slug"
    list_display = ["proposal", "tenant", "verdict", "reviewer", "channel", "ip", "at"]
    list_filter = [
        "verdict",
        "proposal__tenant",
        ProposalToolFilter,
        input_filter("reviewer", "reviewer__username", "reviewer (username)"),
        "channel",
        ("at", admin.DateFieldListFilter),
    ]
    list_select_related = ["proposal", "proposal__tenant", "reviewer"]
    search_fields = ["=proposal__id", "=reviewer__username"]

    @admin.display(description="tenant", ordering="proposal__tenant__slug")
    def tenant(self, obj: Decision) -> str:
        return obj.proposal.tenant.slug


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyAdmin):
    tenant_lookup = "proposal__tenant__slug"
    list_display = [
        "external_id",
        "system",
        "tenant",
        "tool",
        "proposal_link",
        "outside_link",
        "attempts",
        "committed_at",
    ]
    list_filter = [
        # A fixed vocabulary: list_filter "system" would run SELECT DISTINCT over every receipt.
        choices_filter("system", "system", ["crm", "slack", "workflow"]),
        "proposal__tenant",
        ProposalToolFilter,
        input_filter("agent", "proposal__agent__name", "agent (name)"),
        ("committed_at", admin.DateFieldListFilter),
    ]
    list_select_related = ["proposal", "proposal__tenant"]
    search_fields = ["=external_id", "=proposal__id"]

    @admin.display(description="tenant", ordering="proposal__tenant__slug")
    def tenant(self, obj: Receipt) -> str:
        return obj.proposal.tenant.slug

    @admin.display(description="tool", ordering="proposal__tool")
    def tool(self, obj: Receipt) -> str:
        return obj.proposal.tool

    @admin.display(description="proposal")
    def proposal_link(self, obj: Receipt) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:approvals_proposal_change", args=[obj.proposal_id]),
            obj.proposal_id,
        )

    @admin.display(description="outside object")
    def outside_link(self, obj: Receipt) -> str:
        # Only web links: the URL comes from an outside system's answer.
        if not obj.external_url.startswith(("https://", "http://")):
            return "-"
        return format_html('<a href="{}" rel="noopener">{}</a>', obj.external_url, obj.external_url)
