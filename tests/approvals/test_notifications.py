"""Reviewers' email (issue 19 parts 2, 3 and 6; contract 8), against a local SMTP server (aiosmtpd, on a free
port): a new proposal's email and its signed link, batching, retries without doubles, reminders once across a
restart, escalation to the tenant's admins."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.message import Message
from io import StringIO
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db.models import F
from django.test import Client
from django.utils import timezone

from approvals import jobs, notifications, outbox, queues
from approvals.accounts import person_create
from approvals.management.commands import acme_worker
from approvals.management.commands.acme_worker import housekeeping_pass
from approvals.models import OutboxMessage, Proposal, ReviewerEmail, Role
from tests.approvals.test_views import submit

PUBLIC = "http://gateway.test"


class Inbox:
    """aiosmtpd's handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for rcpt, m in self.messages if address in rcpt]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp(settings: Any) -> Iterator[Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_TIMEOUT = 5
    settings.ACME_EMAIL_ENABLED = True
    settings.ACME_PUBLIC_URL = PUBLIC
    settings.DEFAULT_FROM_EMAIL = "gateway@acme.test"
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def handed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The email hand-offs the outbox made (Redis stands aside: the test runs each job itself)."""
    ids: list[int] = []

    def enqueue_email(email_id: int) -> bool:
        ids.append(int(email_id))
        return True

    monkeypatch.setattr(queues, "enqueue_email", enqueue_email)
    return ids


def a_minute_passes() -> None:
    earlier = timedelta(seconds=61)
    for email in ReviewerEmail.objects.filter(state=ReviewerEmail.State.OPEN):
        ReviewerEmail.objects.filter(pk=email.pk).update(send_after=email.send_after - earlier)
    for message in OutboxMessage.objects.filter(kind=OutboxMessage.Kind.EMAIL, dispatched_at__isnull=True):
        OutboxMessage.objects.filter(pk=message.pk).update(available_at=message.available_at - earlier)
    ReviewerEmail.objects.filter(sent_at__isnull=False).update(sent_at=F("sent_at") - earlier)


def run_worker(handed: list[int]) -> list[str]:
    """One drain of the outbox and the jobs it handed off, as a worker would run them."""
    outbox.drain()
    results = [jobs.send_reviewer_email(str(i)) for i in handed]
    handed.clear()
    return results


def body(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


@pytest.fixture
def mailed(acme: Any) -> Any:
    acme.reviewer.email = "rev@acme.test"
    acme.reviewer.save()
    return acme


@pytest.mark.django_db
class TestNewProposals:
    def test_a_new_proposal_is_emailed_with_a_link_that_leads_through_the_login_to_its_review_page(
        self, mailed, smtp, handed
    ):
        proposal = submit(mailed)
        assert run_worker(handed) == []  # collecting for a minute
        a_minute_passes()

        assert run_worker(handed) == ["sent"]

        [message] = smtp.to("rev@acme.test")
        assert message["Subject"] == "1 proposal waiting for your review"
        assert message["From"] == "gateway@acme.test"
        text = body(message)
        link = re.search(r"Review: (\S+)", text).group(1)  # type: ignore[union-attr]
        assert link.startswith(f"{PUBLIC}/proposals/{proposal.pk}/open/?t=")
        path = urlsplit(link).path + "?" + urlsplit(link).query
        # anonymous: the link leads to the login page, then the review page (it logs nobody in)
        anonymous = Client().get(path, follow=True)
        assert anonymous.redirect_chain[0][0] == f"/proposals/{proposal.pk}/"
        assert anonymous.redirect_chain[-1][0].startswith("/accounts/login/?next=")
        assert f"/proposals/{proposal.pk}/" in anonymous.redirect_chain[-1][0]
        client = Client()
        client.force_login(mailed.reviewer)
        page = client.get(path, follow=True)
        assert page.status_code == 200 and proposal.tool in page.content.decode()
        email = ReviewerEmail.objects.get()
        assert (email.state, email.attempts, email.proposal_ids) == ("sent", 1, [str(proposal.pk)])

    def test_an_altered_or_misdirected_link_goes_nowhere(self, mailed, smtp):
        proposal, other = submit(mailed, 1), submit(mailed, 2)
        link = notifications.link_for(proposal.pk, mailed.reviewer)
        token = link.split("?t=")[1]

        assert Client().get(f"/proposals/{proposal.pk}/open/?t={token}x").status_code == 404
        assert Client().get(f"/proposals/{other.pk}/open/?t={token}").status_code == 404
        assert Client().get(f"/proposals/{proposal.pk}/open/").status_code == 404
        assert Client().get(f"/proposals/{proposal.pk}/open/?t={token}").status_code == 302

    def test_two_proposals_within_a_minute_make_one_email_listing_both(self, mailed, smtp, handed):
        first, second = submit(mailed, 1), submit(mailed, 2)
        a_minute_passes()

        assert run_worker(handed) == ["sent"]

        [message] = smtp.to("rev@acme.test")
        assert message["Subject"] == "2 proposals waiting for your review"
        text = body(message)
        assert f"/proposals/{first.pk}/open/" in text and f"/proposals/{second.pk}/open/" in text
        # the next one waits a minute after the last email, however early it comes
        third = submit(mailed, 3)
        batch = ReviewerEmail.objects.get(proposal_ids=[str(third.pk)])
        sent = ReviewerEmail.objects.get(state="sent")
        assert sent.sent_at is not None and batch.send_after >= sent.sent_at + timedelta(seconds=60)

    def test_the_requester_and_people_without_an_email_get_none(self, mailed, smtp, handed):
        other = person_create(tenant=mailed.tenant, username="no-mail", role=Role.REVIEWER)
        assert other.email == ""

        submit(mailed, on_behalf_of=mailed.reviewer)

        assert not ReviewerEmail.objects.exists()

    def test_with_email_off_nothing_is_staged(self, mailed, smtp, settings):
        settings.ACME_EMAIL_ENABLED = False

        submit(mailed)

        assert not ReviewerEmail.objects.exists()
        assert not OutboxMessage.objects.filter(kind=OutboxMessage.Kind.EMAIL).exists()


@pytest.mark.django_db
class TestDelivery:
    def test_a_mail_server_outage_is_retried_with_backoff_and_the_email_is_sent_once(
        self, mailed, smtp, handed, settings
    ):
        submit(mailed)
        a_minute_passes()
        live_port = settings.EMAIL_PORT
        settings.EMAIL_PORT = free_port()  # nothing listens there

        assert run_worker(handed) == ["retry"]

        email = ReviewerEmail.objects.get()
        assert (email.state, email.attempts) == ("open", 1)
        assert "ConnectionRefused" in email.last_error
        assert email.send_after > timezone.now() + timedelta(seconds=20)
        assert run_worker(handed) == []  # not due yet
        settings.EMAIL_PORT = live_port
        a_minute_passes()
        assert run_worker(handed) == ["sent"]
        # a repeated hand-off (a drain racing the immediate one, a lost mark) sends nothing more
        assert jobs.send_reviewer_email(str(email.pk)) == "skipped"
        assert len(smtp.to("rev@acme.test")) == 1


@pytest.mark.django_db
class TestRemindersAndEscalation:
    def test_a_reminder_is_sent_once_across_a_worker_restart(
        self, mailed, smtp, handed, settings, monkeypatch
    ):
        settings.ACME_REMIND_AFTER = 3600
        # the pass's own connection hygiene would close the test's transaction
        monkeypatch.setattr(acme_worker, "close_old_connections", lambda: None)
        proposal = submit(mailed)
        a_minute_passes()
        assert run_worker(handed) == ["sent"]  # the new-proposal email
        Proposal.objects.filter(pk=proposal.pk).update(created_at=timezone.now() - timedelta(hours=2))

        housekeeping_pass()  # the worker's schedule claims the reminder...
        housekeeping_pass()  # ...and a restarted worker's next pass finds it claimed
        assert notifications.remind_due() == 0

        run_worker(handed)
        reminders = [m for m in smtp.to("rev@acme.test") if m["Subject"].startswith("Reminder")]
        assert len(reminders) == 1 and f"/proposals/{proposal.pk}/open/" in body(reminders[0])
        assert Proposal.objects.get(pk=proposal.pk).reminded_at is not None
        assert ReviewerEmail.objects.filter(kind="reminder").count() == 1

    def test_a_decided_proposal_is_not_reminded(self, mailed, smtp, handed):
        proposal = submit(mailed)
        Proposal.objects.filter(pk=proposal.pk).update(
            created_at=timezone.now() - timedelta(hours=2), status="rejected"
        )

        assert notifications.remind_due() == 0

    def test_one_pending_near_expiry_is_escalated_to_the_tenants_admins_only(self, mailed, smtp, handed):
        boss = person_create(tenant=mailed.tenant, username="boss", role=Role.ADMIN)
        boss.email = "boss@acme.test"
        boss.save()
        proposal = submit(mailed)
        Proposal.objects.filter(pk=proposal.pk).update(expires_at=timezone.now() + timedelta(minutes=30))

        assert notifications.escalate_due() == 1
        assert notifications.escalate_due() == 0
        run_worker(handed)

        [escalation] = smtp.to("boss@acme.test")
        assert escalation["Subject"].startswith("Escalation")
        assert not [m for m in smtp.to("rev@acme.test") if m["Subject"].startswith("Escalation")]


@pytest.mark.django_db
def test_create_reviewer_takes_an_email(acme):
    out = StringIO()
    call_command(
        "create_reviewer", "--tenant", "acme", "--username", "mia", "--email", "mia@acme.test", stdout=out
    )

    assert User.objects.get(username="mia").email == "mia@acme.test"
    with pytest.raises(CommandError):
        call_command("create_reviewer", "--tenant", "acme", "--username", "max", "--email", "not-an-address")


EMAIL_SETTINGS = (
    "from django.conf import settings as s; "
    "print(s.ACME_EMAIL_ENABLED, s.EMAIL_BACKEND.rsplit('.', 2)[-2], getattr(s, 'EMAIL_PORT', ''))"
)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"EMAIL_URL": "smtp://127.0.0.1:1025"}, "True smtp 1025"),
        ({"DEBUG": "1"}, "True console 25"),  # make run: the console
        ({}, "False console 25"),  # production without EMAIL_URL: none
    ],
)
def test_email_url_picks_the_backend(tmp_path, env, expected):
    from tests.acme_integration.test_settings import manage

    result = manage("shell", "-c", EMAIL_SETTINGS, SECRET_KEY="k" * 50, ACME_VAR_DIR=str(tmp_path), **env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == expected


@pytest.mark.django_db
def test_with_email_off_it_is_logged_once(mailed, settings, monkeypatch, caplog):
    settings.ACME_EMAIL_ENABLED = False
    monkeypatch.setattr(notifications, "_disabled_logged", False)

    with caplog.at_level("WARNING", logger="approvals.notifications"):
        submit(mailed, 1)
        submit(mailed, 2)

    assert [r.getMessage() for r in caplog.records if r.name == "approvals.notifications"] == [
        notifications.DISABLED
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_submissions_at_once_share_one_batch(acme: Any, settings: Any) -> None:
    """Two transactions staging a reviewer's first email at the same moment open one batch, not two (the
    second waits for the first's lock on the reviewer, then finds its batch): one email a minute, never two."""
    import threading

    from django.db import connection, transaction

    settings.ACME_EMAIL_ENABLED = True
    acme.reviewer.email = "rev@acme.test"
    acme.reviewer.save()
    first, second = submit(acme, 1), submit(acme, 2)
    ReviewerEmail.objects.all().delete()
    OutboxMessage.objects.filter(kind="email").delete()
    added, errors = threading.Event(), []

    def stage(proposal: Proposal, hold: bool) -> None:
        try:
            with transaction.atomic():
                notifications._add(acme.reviewer, proposal, ReviewerEmail.Kind.NEW)
                if hold:
                    added.set()
                    threading.Event().wait(0.8)  # still open while the other one stages
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    a = threading.Thread(target=stage, args=(first, True))
    a.start()
    assert added.wait(10)
    b = threading.Thread(target=stage, args=(second, False))
    b.start()
    a.join(10)
    b.join(10)

    assert errors == []
    [batch] = ReviewerEmail.objects.filter(user=acme.reviewer, kind=ReviewerEmail.Kind.NEW)
    assert sorted(batch.proposal_ids) == sorted([str(first.pk), str(second.pk)])
