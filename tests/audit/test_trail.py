"""The audit trail's must-shows: one proposal's whole life, in order, with who / where / result; the hash
chain verified by ``audit_verify``; tampering named at the altered row; append-only on PostgreSQL and SQLite."""

from __future__ import annotations

import itertools
import re
from importlib import import_module

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from audit.services import ALTERED, BROKEN_LINK, Actor, Where, event_hash, record, verify, verify_chains

from .conftest import ARGS, committed_life


def _events(proposal):
    return list(AuditEvent.objects.filter(subject_id=str(proposal.pk)).order_by("id"))


@pytest.mark.django_db
def test_one_life_is_recorded_step_by_step_and_the_chain_verifies(acme, capsys):
    # given / when
    proposal = committed_life(acme)

    # then: every step, in order, with the actor, where it came from and the result
    events = _events(proposal)
    assert [(e.action, e.actor_type, e.actor_label, e.channel, e.result) for e in events] == [
        ("proposal.submitted", "agent", "acme-agent", "api", "ok"),
        ("proposal.approved", "user", "acme-reviewer", "web", "ok"),
        # The worker is the gateway's system, not a name a tenant has (the tenant here is "acme" too).
        ("proposal.commit_started", "system", "gateway (system)", "worker", "ok"),
        ("outbound.call", "system", "gateway (system)", "worker", "ok"),
        ("proposal.committed", "system", "gateway (system)", "worker", "ok"),
    ]
    assert [e.ip for e in events[:2]] == ["203.0.113.7", "198.51.100.4"]
    assert events[0].user_agent == "agent-sdk/1.0"
    # What was approved and what was sent can be matched: the same args hash and the same decision.
    decision = proposal.decisions.get()
    assert {e.args_hash for e in events} == {proposal.args_hash}
    assert [e.decision_id for e in events] == ["", *[str(decision.pk)] * 4]
    assert events[3].data["external_id"] == "77" and events[3].data["system"] == "crm"
    # ...times never go backwards, and each event links to the one before it in the tenant's chain
    assert [e.at for e in events] == sorted(e.at for e in events)
    chain = list(AuditEvent.objects.filter(tenant="acme").order_by("id"))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    assert all(event_hash(e) == e.hash for e in chain)

    call_command("audit_verify")
    assert "audit chain intact" in capsys.readouterr().out


def _tamper(event_id: int, sql: str, params: list) -> None:
    """Alter an audit row behind the application's back, as an attacker with database access would."""
    sqlite = import_module("audit.migrations.0003_append_only_trigger_sqlite")
    with connection.cursor() as cursor:
        # Transactional DDL on both: rolled back with the test's transaction.
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        else:
            for drop in sqlite.DROP:
                cursor.execute(drop)
        cursor.execute(sql, [*params, event_id])
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")
        else:
            for create in sqlite.CREATE:
                cursor.execute(create)


@pytest.mark.django_db
def test_tampering_with_one_row_fails_audit_verify_at_that_row(acme, globex):
    committed_life(acme)
    committed_life(globex, ticket_id=78)
    target = AuditEvent.objects.get(tenant="acme", action="proposal.approved")

    # when: someone rewrites who approved it
    _tamper(target.pk, "UPDATE audit_auditevent SET actor_label = %s WHERE id = %s", ["mallory"])

    # then
    with pytest.raises(CommandError) as info:
        call_command("audit_verify")
    assert f"event {target.pk} " in str(info.value)
    assert "altered" in str(info.value)
    broken = verify()
    assert broken is not None
    assert (broken.event_id, broken.tenant) == (target.pk, "acme")
    # The other tenant's chain is intact on its own.
    call_command("audit_verify", "--tenant", "globex")


@pytest.mark.django_db
def test_removing_a_row_breaks_the_link_of_the_next_one(acme):
    committed_life(acme)
    events = list(AuditEvent.objects.filter(tenant="acme").order_by("id"))
    removed, following = events[-3], events[-2]

    _tamper(removed.pk, "DELETE FROM audit_auditevent WHERE id = %s", [])

    with pytest.raises(CommandError, match=f"event {following.pk} .*removed or reordered"):
        call_command("audit_verify")


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET result = 'ok', actor_label = 'mallory' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ],
)
def test_postgres_refuses_update_and_delete_of_audit_rows(acme, sql):
    committed_life(acme)
    event = AuditEvent.objects.filter(tenant="acme").order_by("id").first()
    assert event is not None

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [event.pk])

    # The ORM is refused too, not only raw SQL.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(actor_label="mallory")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).hash == event.hash
    call_command("audit_verify")


# --- every break, every tenant; numbers as stored (issue 23, item 14) -------------------------------------


@pytest.mark.django_db
def test_audit_verify_reports_every_break_of_every_tenant_with_the_events_checked(acme, globex, capsys):
    committed_life(acme)
    committed_life(acme, args={**ARGS, "subject": "Another"}, ticket_id=79)
    committed_life(globex, ticket_id=78)
    acme_events = list(AuditEvent.objects.filter(tenant="acme").order_by("id"))
    altered, removed, following = acme_events[1], acme_events[-3], acme_events[-2]
    globex_events = list(AuditEvent.objects.filter(tenant="globex").order_by("id"))
    other = globex_events[2]

    # when: an early row of acme is altered, a later one removed, and a row of globex altered too
    _tamper(altered.pk, "UPDATE audit_auditevent SET actor_label = %s WHERE id = %s", ["mallory"])
    _tamper(removed.pk, "DELETE FROM audit_auditevent WHERE id = %s", [])
    _tamper(other.pk, "UPDATE audit_auditevent SET result = %s WHERE id = %s", ["denied"])

    # then: all three are named, each chain walked to its end
    with pytest.raises(CommandError, match=f"event {altered.pk} .*altered.*2 more break"):
        call_command("audit_verify")
    output = capsys.readouterr()
    for event_id, reason in [
        (altered.pk, "altered"),
        (following.pk, "removed or reordered"),
        (other.pk, "altered"),
    ]:
        assert re.search(rf"event {event_id} \(tenant '\w+'\): .*{reason}", output.err), output.err
    left = len(acme_events) - 1
    assert f"tenant 'acme': {left} of {left} events checked, 2 broken link(s)" in output.out
    assert (
        f"tenant 'globex': {len(globex_events)} of {len(globex_events)} events checked, 1 broken link(s)"
        in output.out
    )
    reports = {r.tenant: r for r in verify_chains()}
    assert [(b.event_id, b.reason) for b in reports["acme"].breaks] == [
        (altered.pk, ALTERED),
        (following.pk, BROKEN_LINK),
    ]
    assert [b.event_id for b in reports["globex"].breaks] == [other.pk]


@pytest.mark.django_db
def test_an_intact_trail_says_how_many_events_of_how_many_tenants_were_checked(acme, globex, capsys):
    committed_life(acme)
    committed_life(globex, ticket_id=78)

    total = AuditEvent.objects.count()

    call_command("audit_verify")

    assert f"audit chain intact: 2 tenant(s), {total} events checked" in capsys.readouterr().out


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("value", [1e16, 2.5e300, -0.0, 1.0, 1.5e-07, 10**30])
def test_a_plan_value_like_1e16_leaves_the_record_intact(value):
    """jsonb stores the float 1e16 as 10000000000000000: the hash must be over that, not over "1e+16"."""
    plan = {"dataset": "orders", "where": [{"column": "amount", "op": "<", "value": value}]}
    record(
        tenant="acme",
        actor=Actor(type="agent", label="bot"),
        action="warehouse.query",
        where=Where(channel="api"),
        data={"plan": plan},
    )

    stored = AuditEvent.objects.get(tenant="acme", action="warehouse.query")
    assert event_hash(stored) == stored.hash
    assert verify() is None


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec=None), max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@pytest.mark.postgres
@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=JSON, label=st.text(max_size=30))
def test_whatever_json_an_agent_sends_the_stored_event_hashes_to_its_hash(acme, data, label):
    # when: an event carries the value (floats, big integers, NaN, NUL, surrogates, nesting) and is stored
    event = record(
        tenant="hyp",
        actor=Actor(type="agent", label=label),
        action="x",
        where=Where(channel="api"),
        data={"value": data},
    )

    # then: read back from PostgreSQL (jsonb normalizes numbers, reorders keys), it hashes the same
    stored = AuditEvent.objects.get(pk=event.pk)
    assert stored.data == event.data
    assert event_hash(stored) == stored.hash == event.hash
    assert verify("hyp") is None


# --- append-only on SQLite too (issue 23, item 15) -----------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET result = 'ok', actor_label = 'mallory' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ],
)
def test_the_database_refuses_update_and_delete_of_audit_rows_on_sqlite_too(acme, sql):
    committed_life(acme)
    event = AuditEvent.objects.filter(tenant="acme").order_by("id").first()
    assert event is not None

    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [event.pk])
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(actor_label="mallory")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()

    assert AuditEvent.objects.get(pk=event.pk).hash == event.hash
    call_command("audit_verify")
