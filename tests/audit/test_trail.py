"""The audit trail's must-shows: one proposal's whole life, in order, with who / where / result; the hash
chain verified by ``audit_verify``; tampering named at the altered row; append-only on PostgreSQL."""

from __future__ import annotations

import itertools

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from audit.services import event_hash, verify

from .conftest import committed_life


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
        ("proposal.commit_started", "system", "acme", "worker", "ok"),
        ("outbound.call", "system", "acme", "worker", "ok"),
        ("proposal.committed", "system", "acme", "worker", "ok"),
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
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Transactional DDL: rolled back with the test's transaction.
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_event_append_only")
        cursor.execute(sql, [*params, event_id])
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_event_append_only")


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

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [event.pk])

    # The ORM is refused too, not only raw SQL.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(actor_label="mallory")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()
    assert AuditEvent.objects.get(pk=event.pk).hash == event.hash
    call_command("audit_verify")
