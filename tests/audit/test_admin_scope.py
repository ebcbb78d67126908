"""Tenant admins (contract section 6): a staff user who is an admin of some tenants sees and changes, in the
Django admin, its exports and /ops/, only those tenants' records; superusers see all.

The matrix walks ``admin.site._registry`` — every registered ModelAdmin, Django's and django-auditlog's
included — so a new admin cannot escape it: each must be classified below (visible to tenant admins, or
superusers only) and derive from ``audit.admin_scope.TenantScopedAdmin``.

Two tenants, ``quokka`` and ``wombat`` (names that appear nowhere else in a page), each with a committed
proposal, its decision and receipt, audit events, a policy, a person's token. Viewers: the admin of quokka,
the admin of wombat, a superuser, and a staff user holding the tenant admins' permissions but administering
no tenant.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.test import Client, RequestFactory
from django.urls import reverse

from adapters import connections
from approvals.accounts import TENANT_ADMINS_GROUP, person_create, tenant_admin_group_sync
from approvals.models import (
    InboundEvent,
    Membership,
    Proposal,
    ReviewerEmail,
    ReviewerGroup,
    Role,
    SlackPost,
    Status,
    Tenant,
    ToolPolicy,
    WebhookDelivery,
)
from audit import services as audit
from audit.admin_scope import TenantScopedAdmin
from audit.models import AuditEvent
from tests.conftest import Party, make_party

from .conftest import committed_life

# What a tenant admin may open (their tenants' rows), and what only superusers may.
TENANT_ADMIN_MODELS = {
    "approvals.tenant",
    "approvals.membership",
    "approvals.agentcredential",
    "approvals.usertoken",
    "approvals.proposal",
    "approvals.decision",
    "approvals.receipt",
    "approvals.toolpolicy",
    "approvals.reviewergroup",
    "audit.auditevent",
    "auth.user",
    "adapters.connection",
    "approvals.webhookdelivery",
    "approvals.inboundevent",
    "approvals.revieweremail",
    "approvals.slackpost",
}
SUPERUSER_ONLY_MODELS = {"approvals.outboxmessage", "auth.group", "auditlog.logentry", "django_rq.dashboard"}
VIEWERS = ["admin_q", "admin_w", "root", "loner"]
SECRET = "do-not-show-7f3a"  # in every connection's token and signing secret
OTHER = {"admin_q": "wombat", "admin_w": "quokka"}
OWN = {"admin_q": "quokka", "admin_w": "wombat"}


def label(model: Any) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


REGISTRY = sorted(admin.site._registry.items(), key=lambda item: label(item[0]))


@dataclass
class World:
    parties: dict[str, Party]
    users: dict[str, Any]
    objects: dict[str, dict[str, Any]]  # tenant slug -> model label -> one of its rows

    def client(self, viewer: str) -> Client:
        client = Client()
        client.force_login(self.users[viewer])
        return client


def _objects(party: Party) -> dict[str, Any]:
    proposal = committed_life(
        party, args={"subject": f"{party.tenant.slug} ticket", "description": "d", "priority": "high"}
    )
    policy = ToolPolicy.objects.create(tenant=party.tenant, name=f"{party.tenant.slug}-limits", tool="*")
    group = ReviewerGroup.objects.create(tenant=party.tenant, name=f"{party.tenant.slug}-finance")
    group.members.add(party.reviewer)
    connection, _ = connections.connection_set(
        tenant=party.tenant.slug,
        system="crm",
        base_url=f"https://{party.tenant.slug}.zendesk.example",
        token=f"{party.tenant.slug}-token-{SECRET}",
        signing_secret=f"{party.tenant.slug}-signing-{SECRET}",
        actor=audit.SYSTEM,
        where=audit.Where(channel="cli"),
    )
    delivery = WebhookDelivery.objects.create(
        agent=party.agent,
        event="proposal.decided",
        url="https://agent.example/hook",
        payload={"proposal": {"id": str(proposal.pk)}},
        state=WebhookDelivery.State.FAILED,
        attempts=8,
        last_error="HTTP 500",
    )
    inbound = InboundEvent.objects.create(
        tenant=party.tenant,
        source="crm",
        event_id=f"{party.tenant.slug}-evt-1",
        type="ticket.created",
        payload={"id": f"{party.tenant.slug}-evt-1"},
    )
    slack_post = SlackPost.objects.create(
        proposal=proposal, channel="C0REVIEW", ts="1.1", state=SlackPost.State.POSTED, shown="committed"
    )
    reviewer_email = ReviewerEmail.objects.create(
        tenant=party.tenant,
        user=party.reviewer,
        kind=ReviewerEmail.Kind.NEW,
        proposal_ids=[str(proposal.pk)],
        state=ReviewerEmail.State.FAILED,
        last_error="SMTPServerDisconnected",
    )
    return {
        "approvals.revieweremail": reviewer_email,
        "approvals.slackpost": slack_post,
        "approvals.webhookdelivery": delivery,
        "approvals.inboundevent": inbound,
        "approvals.tenant": party.tenant,
        "approvals.membership": Membership.objects.get(user=party.reviewer, tenant=party.tenant),
        "approvals.agentcredential": party.agent,
        "approvals.usertoken": party.reviewer.api_tokens.get(),
        "approvals.proposal": proposal,
        "approvals.decision": proposal.decisions.get(),
        "approvals.receipt": proposal.receipt,
        "approvals.toolpolicy": policy,
        "approvals.reviewergroup": group,
        "audit.auditevent": AuditEvent.objects.filter(tenant=party.tenant.slug).first(),
        "auth.user": party.reviewer,
        "adapters.connection": connection,
    }


@pytest.fixture
def world(db: Any) -> World:
    parties = {slug: make_party(slug) for slug in ("quokka", "wombat")}
    users = {
        "admin_q": person_create(tenant=parties["quokka"].tenant, username="boss-q", role=Role.ADMIN),
        "admin_w": person_create(tenant=parties["wombat"].tenant, username="boss-w", role=Role.ADMIN),
        "root": get_user_model().objects.create_superuser("root", "root@example.com", "pw-12345678"),
        # Staff, with every permission a tenant admin holds, but administering no tenant.
        "loner": get_user_model().objects.create_user("loner", password="pw-12345678", is_staff=True),
    }
    users["loner"].groups.add(tenant_admin_group_sync())
    objects = {slug: _objects(party) for slug, party in parties.items()}
    return World(parties=parties, users=users, objects=objects)


def _url(model: Any, view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _page(response: Any) -> str:
    return response.content.decode().lower()


# --- the shape: every admin is scoped and classified -------------------------------------------------------


@pytest.mark.parametrize(("model", "model_admin"), REGISTRY, ids=[label(m) for m, _ in REGISTRY])
def test_every_admin_is_tenant_scoped_and_classified(model: Any, model_admin: Any) -> None:
    assert isinstance(model_admin, TenantScopedAdmin), label(model)
    assert label(model) in TENANT_ADMIN_MODELS | SUPERUSER_ONLY_MODELS, (
        f"classify {label(model)} in this test"
    )
    assert (model_admin.tenant_lookup is None) == (label(model) in SUPERUSER_ONLY_MODELS)


# --- the matrix: every admin x every viewer ----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("viewer", VIEWERS)
@pytest.mark.parametrize(("model", "model_admin"), REGISTRY, ids=[label(m) for m, _ in REGISTRY])
def test_changelist_shows_only_the_viewers_tenants(
    world: World, model: Any, model_admin: Any, viewer: str
) -> None:
    client = world.client(viewer)
    response = client.get(_url(model, "changelist"))

    if viewer == "root":
        assert response.status_code == 200
        return
    if viewer == "loner" or label(model) in SUPERUSER_ONLY_MODELS:
        assert response.status_code == 403
        return
    assert response.status_code == 200
    page = _page(response)
    # Rows, filters' choices, links: nothing of the other tenant; the own tenant's row is listed.
    assert OTHER[viewer] not in page
    assert OWN[viewer] in page
    own = world.objects[OWN[viewer]][label(model)]
    assert own.pk in {row.pk for row in response.context["cl"].result_list}
    for spec in response.context["cl"].filter_specs:
        shown = " ".join(str(choice.get("display", "")) for choice in spec.choices(response.context["cl"]))
        assert OTHER[viewer] not in shown.lower(), spec.title


@pytest.mark.django_db
@pytest.mark.parametrize("viewer", VIEWERS)
@pytest.mark.parametrize(("model", "model_admin"), REGISTRY, ids=[label(m) for m, _ in REGISTRY])
def test_the_other_tenants_row_cannot_be_opened(
    world: World, model: Any, model_admin: Any, viewer: str
) -> None:
    if not model._meta.managed:
        pytest.skip(f"{label(model)} has no rows (its pages: test_the_queue_pages_are_operators_only)")
    if label(model) in SUPERUSER_ONLY_MODELS:
        target = model._default_manager.first()
        if target is None:
            pytest.skip(f"no {label(model)} row in this world")
    else:
        target = world.objects[OTHER.get(viewer, "wombat")][label(model)]
    client = world.client(viewer)

    for view in ("change", "history", "delete"):
        response = client.get(_url(model, view, target.pk))
        if viewer == "root":
            assert response.status_code in (200, 403), view  # 403: read-only records have no delete page
            if view != "delete":
                assert response.status_code == 200, view
            continue
        # Unknown to them: sent to the admin's index (Django's answer to a missing object), or refused.
        assert response.status_code in (302, 403, 404), (view, response.status_code)
        if response.status_code == 302:
            assert response["Location"] == reverse("admin:index")


@pytest.mark.django_db
@pytest.mark.parametrize("viewer", ["admin_q", "admin_w"])
@pytest.mark.parametrize(("model", "model_admin"), REGISTRY, ids=[label(m) for m, _ in REGISTRY])
def test_forms_offer_only_the_viewers_tenants(
    world: World, model: Any, model_admin: Any, viewer: str
) -> None:
    """Foreign-key choices (tenant, agent, user...) in the add form and the own row's change form."""
    client = world.client(viewer)
    pages = [client.get(_url(model, "add"))]
    if label(model) in TENANT_ADMIN_MODELS:
        pages.append(client.get(_url(model, "change", world.objects[OWN[viewer]][label(model)].pk)))
    for response in pages:
        assert response.status_code in (200, 403)
        assert OTHER[viewer] not in _page(response)


@pytest.mark.django_db
@pytest.mark.parametrize(("model_name", "field"), [("membership", "tenant"), ("toolpolicy", "tenant")])
def test_autocomplete_offers_only_the_viewers_tenants(world: World, model_name: str, field: str) -> None:
    response = world.client("admin_q").get(
        reverse("admin:autocomplete"),
        {"app_label": "approvals", "model_name": model_name, "field_name": field},
    )

    assert response.status_code == 200
    assert [r["text"] for r in response.json()["results"]] == ["quokka"]


# --- crafted POSTs: a row in the other tenant is never created nor moved there ---------------------------------


def _membership_post(world: World, attacker: str, tenant: Tenant) -> dict[str, Any]:
    return {"user": world.users[attacker].pk, "tenant": tenant.pk, "role": "admin"}


def _policy_post(world: World, attacker: str, tenant: Tenant) -> dict[str, Any]:
    return {
        "tenant": tenant.pk,
        "agent": "",
        "tool": "crm.create_ticket",
        "name": "pause-tickets",
        "description": "",
        "enabled": "on",
        "allowed_fields": "[]",
        "max_items": "",
        "max_per_hour": "0",
        "refuse_card_numbers": "on",
        "risk_override": "",
        "risk": "",
        "approvals_required": "1",
        "review_group": "",
    }


def _group_post(world: World, attacker: str, tenant: Tenant) -> dict[str, Any]:
    return {"tenant": tenant.pk, "name": "loot", "members": []}


def _connection_post(world: World, attacker: str, tenant: Tenant) -> dict[str, Any]:
    return {
        "tenant": tenant.slug,
        "system": "slack",
        "base_url": "https://attacker.example/api",
        "review_channel": "#loot",
        "token": "xoxb-attacker",
        "signing_secret": "",
    }


# Every admin a tenant admin may add rows with has a crafted POST here (checked below).
CRAFTED = {
    "approvals.membership": _membership_post,
    "approvals.toolpolicy": _policy_post,
    "approvals.reviewergroup": _group_post,
    "adapters.connection": _connection_post,
}


def _rows_in(model: Any, tenant: Tenant) -> int:
    if label(model) == "adapters.connection":  # keyed by slug: adapters knows no Tenant
        return int(model._default_manager.filter(tenant=tenant.slug).count())
    return int(model._default_manager.filter(tenant=tenant).count())


@pytest.mark.django_db
def test_every_admin_a_tenant_admin_adds_with_is_attacked_below(world: World) -> None:
    request = RequestFactory().get("/admin/")
    request.user = world.users["admin_q"]
    addable = {label(m) for m, ma in admin.site._registry.items() if ma.has_add_permission(request)}
    assert addable == set(CRAFTED)


@pytest.mark.django_db
@pytest.mark.parametrize("model_label", sorted(CRAFTED))
def test_a_crafted_add_for_the_other_tenant_is_refused(world: World, model_label: str) -> None:
    model = next(m for m in admin.site._registry if label(m) == model_label)
    wombat = world.parties["wombat"].tenant
    before = _rows_in(model, wombat)

    response = world.client("admin_q").post(
        _url(model, "add"), CRAFTED[model_label](world, "admin_q", wombat)
    )

    assert response.status_code in (200, 403)  # the form again, with an error; or refused
    assert _rows_in(model, wombat) == before
    # The same POST by a superuser creates the row: the refusal above is the scope, not a malformed form.
    root_response = world.client("root").post(
        _url(model, "add"), CRAFTED[model_label](world, "admin_q", wombat)
    )
    assert root_response.status_code == 302, root_response.context["adminform"].form.errors
    assert _rows_in(model, wombat) == before + 1


@pytest.mark.django_db
def test_a_tenant_admin_cannot_make_themselves_admin_of_another_tenant(world: World) -> None:
    wombat = world.parties["wombat"].tenant

    world.client("admin_q").post(_url(Membership, "add"), _membership_post(world, "admin_q", wombat))

    assert not Membership.objects.filter(user=world.users["admin_q"], tenant=wombat).exists()


@pytest.mark.django_db
def test_an_own_policy_cannot_be_moved_to_the_other_tenant(world: World) -> None:
    policy = world.objects["quokka"]["approvals.toolpolicy"]
    data = {**_policy_post(world, "admin_q", world.parties["wombat"].tenant), "name": policy.name}

    response = world.client("admin_q").post(_url(ToolPolicy, "change", policy.pk), data)

    assert response.status_code in (200, 403)
    policy.refresh_from_db()
    assert policy.tenant.slug == "quokka"
    assert not ToolPolicy.objects.filter(tenant=world.parties["wombat"].tenant, name=policy.name).exists()


@pytest.mark.django_db
def test_save_model_refuses_a_row_of_another_tenant(world: World) -> None:
    """Behind the form's scoped choices: the admin itself refuses to save a row outside the viewer's tenants."""
    request = RequestFactory().post("/admin/")
    request.user = world.users["admin_q"]
    model_admin = admin.site.get_model_admin(ToolPolicy)
    policy = ToolPolicy(
        tenant=world.parties["wombat"].tenant, name="pause-everything", tool="*", max_per_hour=0
    )

    with pytest.raises(PermissionDenied):
        model_admin.save_model(request, policy, form=None, change=False)
    assert not ToolPolicy.objects.filter(name="pause-everything").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("viewer", ["admin_q", "root"])
def test_a_connections_secrets_are_never_shown(world: World, viewer: str) -> None:
    """Not in the list, the form, the history, nor the audit export: neither in clear nor encrypted."""
    from adapters.models import Connection

    own = world.objects["quokka"]["adapters.connection"]
    client = world.client(viewer)
    edited = client.post(
        _url(Connection, "change", own.pk),
        {
            "base_url": "https://quokka.zendesk.example",
            "review_channel": "#reviews",
            "token": f"new-token-{SECRET}",
            "signing_secret": f"new-signing-{SECRET}",
        },
    )
    assert edited.status_code == 302
    own.refresh_from_db()
    assert own.review_channel == "#reviews"
    assert connections.decrypt(own.token_encrypted) == f"new-token-{SECRET}"
    pages = [
        client.get(_url(Connection, "changelist")),
        client.get(_url(Connection, "change", own.pk)),
        client.get(_url(Connection, "history", own.pk)),
        client.get(reverse("admin:audit_auditevent_export", args=["csv"]) + "?tenant=quokka"),
    ]

    texts = [p.content.decode() if not p.streaming else _body(p) for p in pages]
    assert [p.status_code for p in pages] == [200, 200, 200, 200]
    for text in texts:
        assert SECRET not in text
        assert own.token_encrypted not in text and own.signing_secret_encrypted not in text
    assert "quokka.zendesk.example" in texts[0]


# --- people: no privilege escalation through users, groups or memberships --------------------------------------


@pytest.mark.django_db
def test_a_tenant_admin_cannot_raise_anyones_rights(world: World) -> None:
    """Even holding Django's permissions to add and change users and groups (given by mistake), a tenant
    admin changes no account: not their own flags, not a reviewer's password; and creates none."""
    from django.contrib.auth.models import Permission

    me = world.users["admin_q"]
    me.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="auth",
            codename__in=["add_user", "change_user", "view_group", "change_group"],
        )
    )
    me = get_user_model().objects.get(pk=me.pk)  # no cached permissions
    reviewer = world.parties["quokka"].reviewer
    client = Client()
    client.force_login(me)
    User = get_user_model()

    attempts = [
        client.post(
            _url(User, "change", me.pk),
            {
                "username": me.username,
                "is_superuser": "on",
                "is_staff": "on",
                "is_active": "on",
                "date_joined_0": "2026-01-01",
                "date_joined_1": "00:00:00",
            },
        ),
        client.post(
            _url(User, "password_change", reviewer.pk),
            {"password1": "pw-takeover-1", "password2": "pw-takeover-1"},
        ),
        client.post(
            _url(User, "add"),
            {
                "username": "mole",
                "password1": "pw-12345678",
                "password2": "pw-12345678",
                "usable_password": "true",
            },
        ),
        client.get(_url(get_user_model().groups.field.related_model, "changelist")),
    ]

    assert [r.status_code for r in attempts] == [403, 403, 403, 403]
    me.refresh_from_db()
    reviewer.refresh_from_db()
    assert not me.is_superuser
    assert not reviewer.check_password("pw-takeover-1")
    assert not User.objects.filter(username="mole").exists()


@pytest.mark.django_db
def test_people_of_other_tenants_are_not_listed_nor_offered(world: World) -> None:
    client = world.client("admin_q")

    users = client.get(_url(get_user_model(), "changelist"))
    membership_form = client.get(_url(Membership, "add"))

    listed = {u.username for u in users.context["cl"].result_list}
    assert listed == {"boss-q", "quokka-reviewer", "quokka-requester"}  # not root, loner, nor wombat's
    options = {
        str(pk) for pk, _ in membership_form.context["adminform"].form.fields["user"].choices if pk != ""
    }
    assert options == {str(get_user_model().objects.get(username=u).pk) for u in listed}


@pytest.mark.django_db
def test_a_tenant_admin_is_made_by_person_create(world: World) -> None:
    boss = world.users["admin_q"]

    assert boss.is_staff and not boss.is_superuser
    assert boss.groups.filter(name=TENANT_ADMINS_GROUP).exists()
    assert boss.has_perm("approvals.change_toolpolicy") and not boss.has_perm("auth.change_user")


# --- actions and exports --------------------------------------------------------------------------------------


def _fail(proposal: Proposal) -> None:
    Proposal.objects.filter(pk=proposal.pk).update(status=Status.FAILED)


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["requeue_dead_letters", "discard_dead_letters"])
def test_dead_letter_actions_leave_the_other_tenants_proposals_alone(world: World, action: str) -> None:
    theirs = world.objects["wombat"]["approvals.proposal"]
    mine = world.objects["quokka"]["approvals.proposal"]
    _fail(theirs)
    _fail(mine)

    world.client("admin_q").post(
        _url(Proposal, "changelist"), {"action": action, "_selected_action": [str(theirs.pk), str(mine.pk)]}
    )

    theirs.refresh_from_db()
    mine.refresh_from_db()
    assert (theirs.status, theirs.discarded_at) == (Status.FAILED, None)
    assert (mine.status != Status.FAILED) or (mine.discarded_at is not None)


@pytest.mark.django_db
def test_redeliver_leaves_the_other_tenants_deliveries_alone_and_sends_the_own_again(world: World) -> None:
    theirs = world.objects["wombat"]["approvals.webhookdelivery"]
    mine = world.objects["quokka"]["approvals.webhookdelivery"]

    response = world.client("admin_q").post(
        _url(WebhookDelivery, "changelist"),
        {"action": "redeliver", "_selected_action": [str(theirs.pk), str(mine.pk)]},
    )

    assert response.status_code == 302
    theirs.refresh_from_db()
    mine.refresh_from_db()
    assert (theirs.state, theirs.attempts) == (WebhookDelivery.State.FAILED, 8)
    assert (mine.state, mine.attempts) == (WebhookDelivery.State.PENDING, 0)
    from approvals.models import OutboxMessage

    assert OutboxMessage.objects.filter(kind="webhook", payload__delivery_id=str(mine.pk)).exists()
    assert not OutboxMessage.objects.filter(kind="webhook", payload__delivery_id=str(theirs.pk)).exists()
    assert AuditEvent.objects.filter(
        tenant="quokka", action="webhook.redelivered", subject_id=str(mine.pk)
    ).exists()


def _body(response: Any) -> str:
    return b"".join(cast(Iterator[bytes], response.streaming_content)).decode()


@pytest.mark.django_db
@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("viewer", VIEWERS)
def test_audit_exports_hold_only_the_viewers_tenants(world: World, fmt: str, viewer: str) -> None:
    url = reverse("admin:audit_auditevent_export", args=[fmt])
    client = world.client(viewer)

    for query in ("", "?tenant=wombat", "?tenant=quokka"):
        response = client.get(url + query)
        if viewer == "loner":
            assert response.status_code == 403
            continue
        assert response.status_code == 200
        body = _body(response)
        rows = list(csv.DictReader(io.StringIO(body))) if fmt == "csv" else json.loads(body)
        tenants = {r["tenant"] for r in rows}
        if viewer == "root":
            assert tenants == ({"quokka", "wombat"} if not query else {query.split("=")[1]})
        else:
            assert tenants <= {OWN[viewer]}
            assert tenants == ({OWN[viewer]} if query in ("", f"?tenant={OWN[viewer]}") else set())


@pytest.mark.django_db
def test_the_export_action_ignores_the_other_tenants_selected_events(world: World) -> None:
    theirs = list(AuditEvent.objects.filter(tenant="wombat").values_list("pk", flat=True))
    mine = list(AuditEvent.objects.filter(tenant="quokka").values_list("pk", flat=True))

    response = world.client("admin_q").post(
        _url(AuditEvent, "changelist"),
        {"action": "export_csv", "_selected_action": [str(i) for i in theirs + mine]},
    )

    rows = list(csv.DictReader(io.StringIO(_body(response))))
    assert sorted(int(r["id"]) for r in rows) == sorted(mine)


@pytest.mark.django_db
@pytest.mark.parametrize("viewer", VIEWERS)
def test_the_queue_pages_are_operators_only(world: World, viewer: str) -> None:
    """django-rq's pages show every tenant's jobs and can delete or requeue them; its views ask only for staff."""
    client = world.client(viewer)
    pages = [
        reverse("admin:django_rq_dashboard_changelist"),
        reverse("admin:django_rq_home"),
        reverse("admin:django_rq_jobs", args=[0]),
        reverse("admin:django_rq_failed_jobs", args=[0]),
    ]

    statuses = [client.get(page).status_code for page in pages]
    emptied = client.post(reverse("admin:django_rq_clear", args=[0]), {"post": "yes"}).status_code

    assert statuses == [200] * 4 if viewer == "root" else [403] * 4
    if viewer != "root":
        assert emptied == 403


# --- /ops/ and /metrics -----------------------------------------------------------------------------------------


def _pending(party: Party, n: int) -> None:
    from approvals import services

    from .conftest import API

    for i in range(n):
        services.proposal_submit(
            agent=party.agent,
            tool="crm.create_ticket",
            where=API,
            args={"subject": f"pending {i}", "description": "d", "priority": "low"},
        )


@pytest.mark.django_db
@pytest.mark.parametrize("viewer", VIEWERS)
def test_ops_shows_only_the_viewers_tenants(world: World, viewer: str) -> None:
    _pending(world.parties["quokka"], 1)
    _pending(world.parties["wombat"], 2)

    response = world.client(viewer).get("/ops/")

    if viewer == "loner":
        assert response.status_code == 403
        assert "<svg" not in response.content.decode()
        return
    assert response.status_code == 200
    context = response.context
    expected = {"admin_q": 1, "admin_w": 2, "root": 3}[viewer]
    assert context["pending_total"] == expected
    # One approval per tenant in this hour (committed_life): the tenant admin's chart counts theirs only.
    approvals = str(context["charts"]["approvals"])
    assert ("2</title></rect></svg>" if viewer == "root" else "1</title></rect></svg>") in approvals
    page = response.content.decode()
    if viewer == "root":
        assert "data-breaker=" in page
    else:
        # Breakers and queues are shared by every tenant: operators only.
        assert "data-breaker=" not in page and context["queues"] is None
        assert OTHER[viewer] not in page.lower()


@pytest.mark.django_db
def test_ops_dead_letters_count_the_viewers_tenants_only(world: World) -> None:
    _fail(world.objects["wombat"]["approvals.proposal"])

    mine = world.client("admin_q").get("/ops/").context
    everyone = world.client("root").get("/ops/").context

    assert (mine["dead_letter_total"], everyone["dead_letter_total"]) == (0, 1)


@pytest.mark.django_db
def test_metrics_count_every_tenant_so_only_operators_read_them(world: World, settings: Any) -> None:
    settings.DEBUG = False
    settings.ACME_METRICS_TOKEN = ""

    assert world.client("admin_q").get("/metrics").status_code == 403
    assert world.client("root").get("/metrics").status_code == 200


@pytest.mark.django_db
def test_a_tenant_admin_without_the_group_sees_no_admin_page(world: World) -> None:
    """The rows come from the admin memberships; the pages from the group's Django permissions."""
    boss = world.users["admin_q"]
    with transaction.atomic():
        boss.groups.clear()
    client = Client()
    client.force_login(get_user_model().objects.get(pk=boss.pk))

    assert client.get(_url(ToolPolicy, "changelist")).status_code == 403
