"""audit.prepared: a read compiled once answers as the QuerySet it was written as, on both engines."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections
from django.db.models import Q
from django.test.utils import CaptureQueriesContext

from approvals.models import AgentCredential, Proposal, ToolPolicy
from audit.prepared import Param, PreparedRead

pytestmark = pytest.mark.django_db


def _proposal(party: Any, key: str, **fields: Any) -> Proposal:
    """An unsaved pending proposal of ``party``'s agent under idempotency key ``key``."""
    values: dict[str, Any] = {
        "tenant": party.tenant,
        "agent": party.agent,
        "tool": "crm.create_ticket",
        "risk": "low",
        "args": {},
        "idempotency_key": key,
        "expires_at": "2099-01-01T00:00:00Z",
        **fields,
    }
    return Proposal(**values)


def _agent_by_hash() -> PreparedRead:
    return PreparedRead(
        lambda digest: AgentCredential.objects.select_related("tenant").filter(
            token_hash=digest, is_active=True
        )[:1],
        digest=Param.TEXT,
    )


def test_model_rows_with_select_related_equal_the_orm(acme: Any) -> None:
    read = _agent_by_hash()
    agent = acme.agent
    agent.allowed_tools = ["crm.create_ticket", "crm.update_ticket"]
    agent.save(update_fields=["allowed_tools"])
    orm = AgentCredential.objects.select_related("tenant").get(pk=agent.pk)

    found = read.first(digest=agent.token_hash)

    assert isinstance(found, AgentCredential)
    assert found.pk == orm.pk
    assert found.allowed_tools == ["crm.create_ticket", "crm.update_ticket"]  # JSON decoded (converter)
    assert found.created_at == orm.created_at and found.created_at.tzinfo is not None  # datetime converted
    assert found._state.adding is False and found._state.db == "default"
    with CaptureQueriesContext(connection) as queries:
        assert found.tenant.slug == "acme"  # populated by select_related: no query
    assert len(queries) == 0


def test_each_call_runs_with_its_own_values(acme: Any, globex: Any) -> None:
    read = _agent_by_hash()
    assert read.first(digest=acme.agent.token_hash).pk == acme.agent.pk
    assert read.first(digest=globex.agent.token_hash).pk == globex.agent.pk
    assert read.first(digest="0" * 64) is None
    AgentCredential.objects.filter(pk=globex.agent.pk).update(is_active=False)
    assert read.first(digest=globex.agent.token_hash) is None  # the constant part (is_active) still applies


def test_a_hostile_value_is_a_parameter_never_sql(acme: Any) -> None:
    read = _agent_by_hash()
    assert read.first(digest="' OR '1'='1") is None
    assert read.first(digest=acme.agent.token_hash + "' --") is None


def test_values_and_flat_shapes(acme: Any) -> None:
    ToolPolicy.objects.create(tenant=acme.tenant, name="mine", tool="crm.create_ticket", agent=acme.agent)
    ToolPolicy.objects.create(tenant=acme.tenant, name="all", tool="*", allowed_fields=["subject"])
    rules = PreparedRead(
        lambda agent_id, tenant_id: (
            ToolPolicy.objects.filter(
                Q(agent_id=agent_id) | Q(agent__isnull=True), tenant_id=tenant_id, enabled=True
            )
            .order_by("pk")
            .values("name", "allowed_fields")
        ),
        agent_id=Param.INT,
        tenant_id=Param.INT,
    )
    assert rules.rows(agent_id=acme.agent.pk, tenant_id=acme.tenant.pk) == [
        {"name": "mine", "allowed_fields": []},
        {"name": "all", "allowed_fields": ["subject"]},
    ]
    names = PreparedRead(
        lambda tenant_id: (
            ToolPolicy.objects.filter(tenant_id=tenant_id).order_by("pk").values_list("name", flat=True)
        ),
        tenant_id=Param.INT,
    )
    assert names.rows(tenant_id=acme.tenant.pk) == ["mine", "all"]
    assert names.rows(tenant_id=acme.tenant.pk + 1000) == []


def test_a_parameter_that_is_not_one_plain_value_is_refused() -> None:
    twice = PreparedRead(
        lambda key: Proposal.objects.filter(Q(idempotency_key=key) | Q(status_reason=key)), key=Param.TEXT
    )
    with pytest.raises(ImproperlyConfigured, match="'key'"):
        twice.rows(key="x")
    pattern = PreparedRead(lambda key: Proposal.objects.filter(idempotency_key__contains=key), key=Param.TEXT)
    with pytest.raises(ImproperlyConfigured, match="'key'"):
        pattern.rows(key="x")
    with pytest.raises(TypeError):
        _agent_by_hash().rows(other="x")


def test_each_thread_compiles_for_its_own_connection(acme: Any) -> None:
    read = _agent_by_hash()
    assert read.first(digest=acme.agent.token_hash) is not None
    compiled_here = read._local.cache["default"]
    seen: list[Any] = []

    def other() -> None:
        try:
            seen.append(read._compiled("default"))
        finally:
            connections.close_all()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen[0] is not compiled_here and seen[0].sql == compiled_here.sql


def test_a_prepared_insert_stores_what_save_would(acme: Any) -> None:
    from django.utils import timezone

    from audit.models import AuditEvent
    from audit.prepared_writes import PreparedInsert

    insert = PreparedInsert(AuditEvent)
    at = timezone.now()
    saved = AuditEvent(tenant="acme", action="x.saved", data={"k": [1, "two"]}, at=at, hash="a" * 64)
    saved.save(force_insert=True)
    prepared = AuditEvent(tenant="acme", action="x.prepared", data={"k": [1, "two"]}, at=at, hash="b" * 64)
    assert insert.insert(prepared) is prepared
    assert isinstance(prepared.pk, int) and prepared.pk > saved.pk  # the auto id read back and converted
    assert prepared._state.adding is False and prepared._state.db == "default"
    again = AuditEvent.objects.get(pk=prepared.pk)
    assert again.data == {"k": [1, "two"]}
    fields = [
        f.attname for f in AuditEvent._meta.concrete_fields if f.attname not in ("id", "hash", "action")
    ]
    assert [getattr(again, f) for f in fields] == [
        getattr(AuditEvent.objects.get(pk=saved.pk), f) for f in fields
    ]
    second = insert.insert(AuditEvent(tenant="acme", action="x.second", at=timezone.now(), hash="c" * 64))
    assert second.pk == prepared.pk + 1 and AuditEvent.objects.filter(action="x.second").count() == 1


def test_a_prepared_insert_keeps_the_constraints_and_the_receivers(acme: Any) -> None:
    from django.db import IntegrityError, transaction
    from django.db.models.signals import post_save

    from audit.prepared_writes import PreparedInsert

    insert = PreparedInsert(Proposal)
    first = _proposal(acme, "k1")
    first.save()
    with pytest.raises(IntegrityError), transaction.atomic():
        insert.insert(_proposal(acme, "k1"))
    assert Proposal.objects.filter(idempotency_key="k1").count() == 1
    heard: list[Any] = []

    def receiver(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
        heard.append((instance.pk, created))

    post_save.connect(receiver, sender=Proposal)
    try:
        other = insert.insert(_proposal(acme, "k2"))
    finally:
        post_save.disconnect(receiver, sender=Proposal)
    assert heard == [(other.pk, True)] and other.pk != first.pk  # a receiver gets save() itself


def test_a_uuid_parameter_and_a_row_lock(acme: Any) -> None:
    from django.core.exceptions import ValidationError
    from django.db import transaction

    from approvals.services.base import _locked

    proposal = _proposal(acme, "k-lock", args={"subject": "x"})
    proposal.save()
    with transaction.atomic():
        for pk in (proposal.pk, str(proposal.pk), proposal.pk.hex):  # each spelling a UUIDField takes
            locked = _locked(pk)
            assert locked.pk == proposal.pk and locked.args == {"subject": "x"}
            assert locked.tenant.slug == "acme" and locked.agent.pk == acme.agent.pk
        with pytest.raises(Proposal.DoesNotExist):
            _locked("00000000-0000-0000-0000-000000000001")
        with pytest.raises(ValidationError):
            _locked("not-a-uuid")


@pytest.mark.django_db(transaction=True)
def test_a_row_lock_outside_a_transaction_is_refused_as_the_orm_refuses_it() -> None:
    from django.db.transaction import TransactionManagementError

    from approvals.services.base import _locked

    if not connection.features.has_select_for_update:
        pytest.skip("SQLite has no row locks: the ORM leaves FOR UPDATE out there")
    with pytest.raises(TransactionManagementError):
        _locked("00000000-0000-0000-0000-000000000001")


def test_a_prepared_update_saves_the_named_fields_only(acme: Any) -> None:
    from django.db import DatabaseError

    from audit.prepared_writes import PreparedUpdate

    update = PreparedUpdate(Proposal)
    proposal = _proposal(acme, "k-upd", args={"subject": "x"})
    proposal.save()
    before = Proposal.objects.get(pk=proposal.pk).updated_at
    proposal.status_reason = "Working on it"
    proposal.args = {"subject": "not saved"}  # not among the fields named
    update.save(proposal, ["status_reason", "updated_at"])
    stored = Proposal.objects.get(pk=proposal.pk)
    assert stored.status_reason == "Working on it" and stored.args == {"subject": "x"}
    assert stored.updated_at > before  # auto_now ran (pre_save)
    proposal.status_reason = "again"
    update.save(proposal, ["status_reason"])  # another set of fields: its own statement
    assert Proposal.objects.get(pk=proposal.pk).status_reason == "again"
    Proposal.objects.filter(pk=proposal.pk).delete()
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        update.save(proposal, ["status_reason", "updated_at"])


def test_a_prepared_update_writes_a_none_and_then_a_value_again(acme: Any) -> None:
    """A None is NULL in the compiled statement, not a parameter: each pattern of Nones has its own (the
    commit sets ``lease_until`` to None, the claim to a time)."""
    from django.db.models.signals import pre_save
    from django.utils import timezone

    from audit.prepared_writes import PreparedUpdate

    update = PreparedUpdate(Proposal)
    proposal = _proposal(acme, "k-none")
    proposal.save()
    saves: list[Any] = []

    def counting(sender: Any, **kwargs: Any) -> None:
        saves.append(sender)

    for lease_until in (None, timezone.now(), None):
        proposal.lease_until = lease_until
        # No receiver during the call: it is the compiled statement that runs, not save().
        update.save(proposal, ["lease_until", "updated_at"])
        assert Proposal.objects.get(pk=proposal.pk).lease_until == lease_until
    pre_save.connect(counting, sender=Proposal)
    try:
        proposal.lease_until = None
        update.save(proposal, ["lease_until"])
    finally:
        pre_save.disconnect(counting, sender=Proposal)
    assert saves == [Proposal] and Proposal.objects.get(pk=proposal.pk).lease_until is None
    assert all(c is not None for c in update._local.cache.values())  # every pattern compiled, none fell back


def test_a_model_with_a_save_of_its_own_is_saved_by_it(acme: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from django.db.models import Model

    from audit.prepared_writes import PreparedInsert, PreparedUpdate

    calls: list[dict[str, Any]] = []

    def own_save(self: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(kwargs)
        Model.save(self, *args, **kwargs)

    monkeypatch.setattr(Proposal, "save", own_save)
    proposal = PreparedInsert(Proposal).insert(_proposal(acme, "k-own"))
    proposal.status_reason = "edited"
    PreparedUpdate(Proposal).save(proposal, ["status_reason"])

    assert [c.get("force_insert") for c in calls] == [True, None]
    assert calls[1]["update_fields"] == ["status_reason"]
    assert Proposal.objects.get(pk=proposal.pk).status_reason == "edited"
