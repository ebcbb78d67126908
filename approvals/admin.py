from __future__ import annotations

from typing import Any

from auditlog.admin import LogEntryAdmin
from auditlog.models import LogEntry
from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.urls import URLPattern, reverse
from django.utils.html import format_html
from django_rq.admin import QueueAdmin
from django_rq.models import Dashboard

from adapters import registry
from adapters.forms import ConnectionForm
from adapters.models import Connection
from approvals import lifecycle, webhooks
from approvals.models import (
    AgentCredential,
    Decision,
    InboundEvent,
    Membership,
    OutboxMessage,
    Proposal,
    Receipt,
    ReviewerEmail,
    SlackPost,
    Tenant,
    ToolPolicy,
    UserToken,
    WebhookDelivery,
)
from audit import services as audit
from audit.admin_scope import SuperuserOnlyAdmin, TenantScopedAdmin
from audit.admin_tools import ChoicesFilter, EstimatedCountPaginator, choices_filter, input_filter


class ToolFilter(ChoicesFilter):
    """Tools from the registry: a fixed list, no ``SELECT DISTINCT`` over a large table."""

    title = "tool"
    parameter_name = "tool"
    field = "tool"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [(tool.name, tool.name) for tool in registry.tools()]

    def queryset(self, request: Any, queryset: Any) -> Any:
        # A tool's safe name (crm_create_ticket) filters as its dotted name, under which it is stored.
        if self.value():
            return queryset.filter(**{self.field: registry.canonical(self.value() or "")})
        return queryset


class ProposalToolFilter(ToolFilter):
    field = "proposal__tool"


class PolicyToolFilter(ToolFilter):
    """A rule's tool: every tool, or "*"."""

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [("*", "* (every tool)"), *super().lookups(request, model_admin)]


class LargeTableAdmin(TenantScopedAdmin):
    """Bounded cost per page however large the table: no full COUNT, no facet counts."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER


class ReadOnlyAdmin(LargeTableAdmin):
    """Records of what happened: browsable, never editable."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    tenant_lookup = "slug"
    list_display = ["slug", "name", "created_at"]
    search_fields = ["slug", "name"]

    # Creating or deleting a tenant is the operator's: a tenant admin's new tenant would not be theirs.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.tenant_scope(request) is None and super().has_add_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.tenant_scope(request) is None and super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Tenant | None = None) -> list[str]:
        # A tenant's audit chain and its warehouse rows are keyed by its slug: a renamed tenant would leave
        # them behind, and a new tenant created under the old slug would inherit them. Set once, at creation.
        return ["slug"] if obj is not None else []


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    """Who is in a tenant, in which role. A tenant admin picks among the tenants they administer and the
    people already in them (new people come from ``create_reviewer`` or an operator)."""

    tenant_lookup = "tenant__slug"
    list_display = ["user", "tenant", "role", "slack_user_id"]
    search_fields = ["=slack_user_id"]
    list_filter = ["tenant", "role"]
    list_select_related = ["user", "tenant"]
    autocomplete_fields = ["tenant"]


@admin.register(AgentCredential)
class AgentCredentialAdmin(TenantScopedAdmin):
    tenant_lookup = "tenant__slug"
    list_display = ["name", "tenant", "token_prefix", "is_active", "last_used_at", "created_at"]
    list_filter = ["tenant", "is_active"]
    list_select_related = ["tenant"]
    readonly_fields = ["token_prefix", "last_used_at", "created_at"]
    fields = ["tenant", "name", "allowed_tools", "is_active", "token_prefix", "last_used_at", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tokens are issued by `manage.py create_agent`, which shows the token once

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Unticking "is_active" revokes the agent through the one service that does it: its pending proposals
        # are cancelled in the same transaction (the admin's), audited.
        from approvals import services
        from audit.where import where_from

        revoking = change and "is_active" in form.changed_data and not obj.is_active
        if revoking:
            obj.is_active = True  # the other edits are saved as they are; the service deactivates
        super().save_model(request, obj, form, change)
        if revoking:
            services.agent_deactivate(
                agent=obj,
                by=request.user,  # type: ignore[arg-type]
                where=where_from(request, channel="web"),
            )


@admin.register(UserToken)
class UserTokenAdmin(TenantScopedAdmin):
    # A token opens every tenant its person belongs to: a tenant admin sees the tokens of their tenants'
    # people and may switch off only those of people in none but their tenants, never a staff member's.
    tenant_lookup = "user__memberships__tenant__slug"
    list_display = ["user", "name", "token_prefix", "is_active", "last_used_at"]
    list_filter = ["is_active"]
    list_select_related = ["user"]
    readonly_fields = ["user", "name", "token_prefix", "last_used_at", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.user.is_staff and self.tenant_scope(request) is not None:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.tenant_scope(request) is None and super().has_delete_permission(request, obj)


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


@admin.register(ToolPolicy)
class ToolPolicyAdmin(TenantScopedAdmin):
    """Policy rules as data: an edit applies to the agent's next request (rules are read on every call)."""

    tenant_lookup = "tenant__slug"

    list_display = [
        "name",
        "tenant",
        "agent_or_all",
        "tool",
        "enabled",
        "max_per_hour",
        "max_items",
        "refuse_card_numbers",
        "risk_override",
        "updated_at",
    ]
    list_filter = ["tenant", "enabled", PolicyToolFilter, "refuse_card_numbers"]
    list_editable = ["enabled"]
    list_select_related = ["tenant", "agent"]
    search_fields = ["name", "tool", "description", "agent__name"]
    autocomplete_fields = ["tenant"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (
            None,
            {
                "fields": ["tenant", "agent", "tool", "name", "description", "enabled"],
                "description": "The most specific enabled rule applies, and only that one: this agent + this tool, "
                'then this agent + "*", then every agent + this tool, then every agent + "*".',
            },
        ),
        ("Limits (empty: no limit)", {"fields": ["allowed_fields", "max_items", "max_per_hour"]}),
        ("PII and risk", {"fields": ["refuse_card_numbers", "risk_override", "allow_slack_markup"]}),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="agent", ordering="agent__name")
    def agent_or_all(self, obj: ToolPolicy) -> str:
        return obj.agent.name if obj.agent is not None else "every agent"


@admin.register(Connection)
class ConnectionAdmin(TenantScopedAdmin):
    """A tenant's own CRM or Slack. Tokens and signing secrets are write-only (adapters.forms): no list
    column, form field, history entry (Django's log names changed fields, never values) or export shows
    them, not even encrypted. Saved through ``connections.connection_set`` (validated, encrypted, audited)."""

    tenant_lookup = "tenant"
    form = ConnectionForm
    list_display = [
        "tenant",
        "system",
        "base_url",
        "review_channel",
        "team_id",
        "signing_secret_set",
        "updated_at",
    ]
    list_filter = ["system"]
    search_fields = ["tenant", "base_url"]
    fields = [
        "tenant",
        "system",
        "base_url",
        "review_channel",
        "token",
        "signing_secret",
        "clear_signing_secret",
    ]

    @admin.display(description="signing secret", boolean=True)
    def signing_secret_set(self, obj: Connection) -> bool:
        return obj.has_signing_secret

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        # The slug is free text on the model (adapters knows no Tenant): offer the viewer's tenants only.
        if db_field.name == "tenant":
            tenants = Tenant.objects.order_by("slug").values_list("slug", flat=True)
            scope = self.tenant_scope(request)
            if scope is not None:
                tenants = tenants.filter(slug__in=sorted(scope))
            return forms.ChoiceField(choices=[(slug, slug) for slug in tenants], label="tenant")
        if db_field.name == "base_url":
            kwargs["assume_scheme"] = "https"  # a bare host means https (Django 6's default)
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_form(self, request: HttpRequest, form: Any, change: bool) -> Any:
        return (
            form.instance
        )  # the form's save() writes (connection_set): done in save_model, after the checks

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        from approvals.services import user_actor
        from audit.where import where_from

        self.check_tenant_of_unsaved(request, obj)
        form.actor = user_actor(request.user)  # type: ignore[arg-type]
        form.where = where_from(request, channel="web")
        row = form.save()
        obj.__dict__.update({k: v for k, v in row.__dict__.items() if k != "_state"})
        obj._state.adding = False


# --- Django's and django-auditlog's own admins, under the same scoping --------------------------------------
# Registered by their apps (listed before this one in INSTALLED_APPS); replaced here so that no admin page
# escapes the tenant scope (tests/audit/test_admin_scope.py walks admin.site._registry).

User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)
admin.site.unregister(LogEntry)
if admin.site.is_registered(Dashboard):
    admin.site.unregister(Dashboard)


@admin.register(User)
class ScopedUserAdmin(TenantScopedAdmin, UserAdmin):  # type: ignore[type-arg]
    """People: a tenant admin sees the people of their tenants, read-only. Accounts (passwords, staff and
    superuser flags, groups, permissions) are changed by superusers only, so no tenant admin can raise
    anyone's rights, their own included, or take over the account of a person of another tenant."""

    tenant_lookup = "memberships__tenant__slug"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.tenant_scope(request) is None and super().has_add_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.tenant_scope(request) is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.tenant_scope(request) is None and super().has_delete_permission(request, obj)


@admin.register(Group)
class ScopedGroupAdmin(SuperuserOnlyAdmin, GroupAdmin):
    """Groups carry permissions across every tenant: superusers only."""


@admin.register(LogEntry)
class ScopedLogEntryAdmin(SuperuserOnlyAdmin, LogEntryAdmin):
    """django-auditlog's field history: superusers only. An entry is keyed by content type and primary key,
    with the changed values as text (a tenant's id, an agent's id...): mapping each back to one tenant would
    take a query per model and would miss rows deleted since. The append-only AuditEvent trail, scoped by
    tenant, is what tenant admins read."""


def _operators_only(view: Any) -> Any:
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        user = request.user
        if user.is_authenticated and user.is_staff and not user.is_superuser:
            raise PermissionDenied
        # Others meet django-rq's own check: the admin's login page, or its API token.
        return view(request, *args, **kwargs)

    return wrapped


@admin.register(Dashboard)
class ScopedQueueAdmin(SuperuserOnlyAdmin, QueueAdmin):
    """django-rq's queue pages: every tenant's jobs, with their arguments, and buttons that delete, requeue
    or empty them. Its views ask only for staff (``staff_member_required``), and tenant admins are staff:
    every one of its URLs is wrapped here to refuse anyone logged in who is not a superuser."""

    def get_urls(self) -> list[Any]:
        return [
            URLPattern(p.pattern, _operators_only(p.callback), p.default_args, p.name)
            if isinstance(p, URLPattern)
            else p
            for p in super().get_urls()
        ]

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return super().changelist_view(request, extra_context)
