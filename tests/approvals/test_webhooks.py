"""Agent webhooks (signed, retried, from the outbox), inbound CRM events, dead letters and backpressure."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import cast

import pytest
import responses
from django.conf import settings

from adapters import connections
from approvals import outbox, services, webhooks
from approvals.models import InboundEvent, OutboxMessage, Proposal, Status, WebhookDelivery
from audit.models import AuditEvent
from audit.services import SYSTEM, Where

API = Where(channel="api")
HOOK = "https://agent.example/hooks/acme"
TICKETS_URL = f"{settings.CRM_BASE_URL}/api/v2/tickets.json"
ARGS = {"subject": "Refund request", "description": "Order 991 arrived broken.", "priority": "high"}


def ticket(ticket_id):
    return {
        "ticket": {
            "id": ticket_id,
            "subject": "Refund request",
            "priority": "high",
            "status": "new",
            "updated_at": "2026-11-23T10:00:00Z",
        }
    }


def submit(party, **kw):
    return services.proposal_submit(
        agent=party.agent, tool="crm.create_ticket", args=kw.pop("args", ARGS), where=API, **kw
    ).proposal


@pytest.fixture
def hooked(acme):
    acme.agent.webhook_url = HOOK
    acme.agent.save()
    return acme


class TestSignature:
    def test_sign_and_verify_round_trip(self):
        body = b'{"event":"proposal.committed"}'
        header = webhooks.sign("whsec_x", 1_700_000_000, body)

        assert header.startswith("t=1700000000,v1=")
        assert webhooks.verify("whsec_x", header, body, now=1_700_000_010)
        assert not webhooks.verify("whsec_x", header, body + b" ", now=1_700_000_010)
        assert not webhooks.verify("whsec_y", header, body, now=1_700_000_010)
        assert not webhooks.verify("whsec_x", header, body, now=1_700_000_000 + 301)  # replayed too late


@pytest.mark.django_db
class TestOutbound:
    def test_registration_over_the_api_returns_the_secret(self, acme):
        response = acme.agent_client.put("/api/v1/webhook/", {"url": HOOK}, format="json")

        assert response.status_code == 200
        acme.agent.refresh_from_db()
        assert acme.agent.webhook_url == HOOK
        assert response.json()["secret"] == webhooks.secret_for(acme.agent)
        assert acme.reviewer_client.put("/api/v1/webhook/", {"url": HOOK}, format="json").status_code == 403
        assert acme.agent_client.put("/api/v1/webhook/", {"url": "ftp://x"}, format="json").status_code == 400

    def test_private_callback_refused_outside_development(self, acme, settings):
        settings.ACME_WEBHOOK_ALLOW_PRIVATE = False

        response = acme.agent_client.put(
            "/api/v1/webhook/", {"url": "http://127.0.0.1:9/hook"}, format="json"
        )

        assert response.status_code == 400
        assert response.json()["errors"][0]["type"] == "unsafe_url"

    @pytest.mark.parametrize(
        "url",
        [
            "http://100.100.100.200/latest/meta-data/",  # shared address space: Alibaba Cloud's metadata service
            "http://[2002:a9fe:a9fe::]/latest/meta-data/",  # 6to4 around 169.254.169.254
            "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",  # NAT64 around 169.254.169.254
            "http://[fec0::1]/hook",  # IPv6 site-local
        ],
    )
    def test_addresses_that_are_not_global_are_refused_outside_development(self, acme, settings, url):
        settings.ACME_WEBHOOK_ALLOW_PRIVATE = False

        response = acme.agent_client.put("/api/v1/webhook/", {"url": url}, format="json")

        assert response.status_code == 400
        assert response.json()["errors"][0]["type"] == "unsafe_url"
        acme.agent.refresh_from_db()
        assert acme.agent.webhook_url == ""

    @pytest.mark.parametrize("allow_private", [False, True])
    @pytest.mark.parametrize("url", ["http://example.com:99999/hook", "http://example.com:0/hook"])
    def test_a_url_with_an_impossible_port_is_a_400_in_the_error_shape(
        self, acme, settings, allow_private, url
    ):
        settings.ACME_WEBHOOK_ALLOW_PRIVATE = allow_private

        response = acme.agent_client.put("/api/v1/webhook/", {"url": url}, format="json")

        assert response.status_code == 400
        assert response["Content-Type"] == "application/json"
        assert response.json()["error"] == "invalid_request"
        assert response.json()["errors"][0]["loc"] == ["url"]
        acme.agent.refresh_from_db()
        assert acme.agent.webhook_url == ""

    def test_a_host_that_rebinds_to_a_private_address_is_not_reached(self, acme, settings, monkeypatch):
        """DNS rebinding: the host resolves to a public address when the URL is checked, and to 127.0.0.1
        when the delivery connects. The connection's own resolution is checked too: nothing reaches the
        local receiver, and the delivery is a failed attempt, to be retried."""
        import socket
        import threading
        from http.server import BaseHTTPRequestHandler, HTTPServer

        received: list[str] = []

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = HTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        real_getaddrinfo = socket.getaddrinfo
        answers = iter(["93.184.216.34"])  # the check's answer; every later lookup gets the loopback

        def rebinding(host, *args, **kwargs):
            if host != "rebind.example":
                return real_getaddrinfo(host, *args, **kwargs)
            address = next(answers, "127.0.0.1")
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

        settings.ACME_WEBHOOK_ALLOW_PRIVATE = False
        monkeypatch.setattr(socket, "getaddrinfo", rebinding)
        acme.agent.webhook_url = f"http://rebind.example:{port}/hook"
        acme.agent.save()
        proposal = submit(acme)
        services.proposal_reject(proposal=proposal, reviewer=acme.reviewer, reason="no", where=API)
        delivery = WebhookDelivery.objects.get()
        try:
            state = webhooks.deliver(str(delivery.pk))
        finally:
            server.shutdown()
            server.server_close()

        assert received == []
        assert state == WebhookDelivery.State.PENDING
        delivery.refresh_from_db()
        assert (delivery.attempts, delivery.last_error) == (1, "ConnectionError")

    def test_each_event_is_staged_in_the_same_transaction(self, hooked):
        proposal = submit(hooked)
        services.proposal_approve(proposal=proposal, reviewer=hooked.reviewer, where=API)
        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, TICKETS_URL, status=201, json=ticket(5))
            services.proposal_commit(proposal_id=proposal.pk)
        rejected = submit(hooked, args={**ARGS, "subject": "Other"})
        services.proposal_reject(proposal=rejected, reviewer=hooked.reviewer, reason="dup", where=API)

        events = list(
            WebhookDelivery.objects.order_by("created_at").values_list("event", "payload__proposal__status")
        )
        assert events == [
            ("proposal.decided", "approved"),
            ("proposal.committed", "committed"),
            ("proposal.decided", "rejected"),
        ]
        assert OutboxMessage.objects.filter(kind="webhook").count() == 3

    def test_events_carry_the_reason_the_edits_and_the_receipt(self, hooked):
        """An agent learns from the event alone why it was rejected, what the reviewer changed, and the
        receipt of what was committed (issue 24, item 6)."""
        rejected = submit(hooked)
        services.proposal_reject(
            proposal=rejected, reviewer=hooked.reviewer, reason="Refunds go to billing.", where=API
        )
        edited = submit(hooked, args={**ARGS, "subject": "Other"})
        services.proposal_approve(
            proposal=edited,
            reviewer=hooked.reviewer,
            where=API,
            comment="bumped",
            args={**ARGS, "subject": "Other", "priority": "urgent"},
        )
        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, TICKETS_URL, status=201, json=ticket(5))
            services.proposal_commit(proposal_id=edited.pk)

        payloads = [d.payload["proposal"] for d in WebhookDelivery.objects.order_by("created_at")]

        refusal, approval, commit = payloads
        assert refusal["decision"]["verdict"] == "rejected"
        assert refusal["decision"]["reason"] == "Refunds go to billing."
        assert refusal["decision"]["by"] == hooked.reviewer.get_username() and refusal["receipt"] is None
        assert approval["decision"]["reason"] == "bumped"
        assert approval["decision"]["edits"] == [{"field": "priority", "before": "high", "after": "urgent"}]
        assert approval["args"]["priority"] == "urgent"
        assert commit["receipt"]["external_id"] == "5" and commit["receipt"]["system"] == "crm"
        assert commit["receipt"]["external_url"].endswith("/agent/tickets/5")

    def test_no_webhook_url_no_delivery(self, acme):
        proposal = submit(acme)
        services.proposal_reject(proposal=proposal, reviewer=acme.reviewer, reason="no", where=API)

        assert not WebhookDelivery.objects.exists()

    def test_delivery_is_signed_and_marked_delivered(self, hooked):
        proposal = submit(hooked)
        services.proposal_reject(proposal=proposal, reviewer=hooked.reviewer, reason="no", where=API)
        delivery = WebhookDelivery.objects.get()

        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, HOOK, status=204)
            assert webhooks.deliver(str(delivery.pk)) == "delivered"
            sent = rsps.calls[0].request
        sent_body = cast(bytes, sent.body)  # ours: a JSON body, sent as bytes
        assert webhooks.verify(
            webhooks.secret_for(hooked.agent), cast(str, sent.headers["X-Acme-Signature"]), sent_body
        )
        body = json.loads(sent_body)
        assert body["id"] == str(delivery.pk) == sent.headers["X-Acme-Event-Id"]
        assert body["proposal"]["status"] == "rejected"
        # Delivered once: running the job again sends nothing.
        with responses.RequestsMock() as rsps:
            assert webhooks.deliver(str(delivery.pk)) == "noop"

    def test_failed_delivery_is_retried_later_then_given_up(self, hooked, settings):
        settings.ACME_WEBHOOK_MAX_ATTEMPTS = 2
        proposal = submit(hooked)
        services.proposal_reject(proposal=proposal, reviewer=hooked.reviewer, reason="no", where=API)
        delivery = WebhookDelivery.objects.get()

        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, HOOK, status=500)
            rsps.add(responses.POST, HOOK, status=500)
            assert webhooks.deliver(str(delivery.pk)) == "pending"
            retry = OutboxMessage.objects.filter(kind="webhook").order_by("-id").first()
            assert retry is not None
            assert retry.payload == {"delivery_id": str(delivery.pk)}
            assert webhooks.deliver(str(delivery.pk)) == "failed"

        delivery.refresh_from_db()
        assert delivery.attempts == 2 and delivery.last_error == "HTTP 500"


def signed(body: bytes, secret: str = "sandbox", at: datetime | None = None):
    timestamp = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "HTTP_X_ZENDESK_WEBHOOK_SIGNATURE": webhooks.zendesk_signature(secret, timestamp, body),
        "HTTP_X_ZENDESK_WEBHOOK_SIGNATURE_TIMESTAMP": timestamp,
    }


@pytest.mark.django_db
class TestInbound:
    URL = "/api/v1/webhooks/crm/?tenant=acme"
    # acme has no signing secret of its own: it shares CRM_WEBHOOK_SECRET, so its events name it in the body.
    EVENT = json.dumps(
        {
            "id": "evt-1",
            "type": "zen:event-type:ticket.created",
            "tenant": "acme",
            "detail": {"id": "88", "priority": "URGENT"},
        }
    ).encode()

    def test_signed_event_is_recorded_once(self, acme, client):
        first = client.post(self.URL, self.EVENT, content_type="application/json", **signed(self.EVENT))
        again = client.post(self.URL, self.EVENT, content_type="application/json", **signed(self.EVENT))

        assert first.status_code == 202 and first.json()["status"] == "recorded"
        assert again.status_code == 202 and again.json()["status"] == "duplicate"
        assert InboundEvent.objects.count() == 1
        assert AuditEvent.objects.filter(action="inbound.received").count() == 1
        listed = acme.agent_client.get("/api/v1/events/").json()["results"]
        assert [e["event_id"] for e in listed] == ["evt-1"]

    @pytest.mark.parametrize("tamper", ["body", "secret", "old", "missing"])
    def test_bad_signatures_are_refused(self, acme, client, tamper):
        headers = signed(
            self.EVENT,
            secret="wrong" if tamper == "secret" else "sandbox",
            at=datetime.fromtimestamp(time.time() - 3600, UTC) if tamper == "old" else None,
        )
        body = self.EVENT + b" " if tamper == "body" else self.EVENT
        if tamper == "missing":
            headers = {}

        response = client.post(self.URL, body, content_type="application/json", **headers)

        assert response.status_code == 401
        assert response.json()["error"] == "invalid_signature"
        assert not InboundEvent.objects.exists()

    @pytest.mark.parametrize(
        "body",
        [
            b'{"id": "evt-deep", "detail": '
            + b"[" * 5000
            + b"]" * 5000
            + b"}",  # deeper than any parser's stack
            b'{"id": "evt-nul", "detail": {"subject": "a\\u0000b"}}',  # PostgreSQL cannot store a NUL
            b'{"id": "evt-dup", "id": "evt-other"}',  # which id is it?
        ],
        ids=["deep", "nul", "duplicate-key"],
    )
    def test_a_signed_event_the_database_cannot_store_is_a_400(self, acme, client, body):
        """The signature proves who sent the event, not that it can be parsed and stored: never a 500."""
        response = client.post(self.URL, body, content_type="application/json", **signed(body))

        assert response.status_code == 400, response.content
        assert response.json()["error"] == "malformed_request"
        assert not InboundEvent.objects.exists()

    def test_unknown_tenant_is_404(self, acme, client):
        event = json.dumps({"id": "evt-1", "tenant": "nope"}).encode()
        response = client.post(
            "/api/v1/webhooks/crm/?tenant=nope", event, content_type="application/json", **signed(event)
        )

        assert response.status_code == 404


def crm_connection(tenant: str, signing_secret: str | None) -> None:
    connections.connection_set(
        tenant=tenant,
        system="crm",
        base_url=f"https://{tenant}.zendesk.test",
        token="t",
        signing_secret=signing_secret,
        actor=SYSTEM,
        where=Where(channel="cli"),
    )


def post_event(client, tenant: str, body: bytes, **headers):
    return client.post(
        f"/api/v1/webhooks/crm/?tenant={tenant}", body, content_type="application/json", **headers
    )


@pytest.mark.django_db
class TestInboundPerTenant:
    """Issue 17: a secret per tenant, the tenant bound into what is verified, event ids unique across tenants."""

    ACME_EVENT = TestInbound.EVENT  # names acme; signed with the shared CRM_WEBHOOK_SECRET

    def nothing_recorded(self) -> bool:
        return (
            not InboundEvent.objects.exists()
            and not AuditEvent.objects.filter(action="inbound.received").exists()
        )

    def test_an_event_signed_for_one_tenant_is_refused_in_another(self, acme, globex, client):
        # given an event of acme's, signed with the secret the tenants without their own share
        # when it is replayed into globex's URL
        response = post_event(client, "globex", self.ACME_EVENT, **signed(self.ACME_EVENT))

        # then it is refused and recorded nowhere
        assert response.status_code == 401 and response.json()["error"] == "invalid_signature"
        assert self.nothing_recorded()

    def test_on_the_shared_secret_an_event_must_name_its_tenant(self, acme, client):
        unbound = json.dumps({"id": "evt-2", "type": "zen:event-type:ticket.created"}).encode()

        response = post_event(client, "acme", unbound, **signed(unbound))

        assert response.status_code == 401 and response.json()["error"] == "invalid_signature"
        assert self.nothing_recorded()

    def test_a_tenant_with_its_own_signing_secret_verifies_with_it_alone(self, acme, globex, client):
        crm_connection("globex", "globex-signing-secret")
        event = json.dumps({"id": "evt-g1", "type": "zen:event-type:ticket.created"}).encode()

        with_shared = post_event(client, "globex", event, **signed(event))
        with_own = post_event(client, "globex", event, **signed(event, secret="globex-signing-secret"))
        replayed_into_acme = post_event(
            client, "acme", event, **signed(event, secret="globex-signing-secret")
        )

        assert with_shared.status_code == 401
        assert with_own.status_code == 202 and with_own.json()["status"] == "recorded"
        assert replayed_into_acme.status_code == 401
        assert list(InboundEvent.objects.values_list("tenant__slug", "event_id")) == [("globex", "evt-g1")]

    def test_an_own_secret_event_naming_another_tenant_is_refused(self, acme, globex, client):
        crm_connection("globex", "globex-signing-secret")
        event = json.dumps({"id": "evt-g2", "tenant": "acme"}).encode()

        response = post_event(client, "globex", event, **signed(event, secret="globex-signing-secret"))

        assert response.status_code == 401
        assert self.nothing_recorded()

    def test_event_ids_are_recorded_once_across_tenants(self, acme, globex, client):
        crm_connection("globex", "globex-signing-secret")
        first = post_event(client, "acme", self.ACME_EVENT, **signed(self.ACME_EVENT))
        same_id = json.dumps({"id": "evt-1", "type": "zen:event-type:ticket.created"}).encode()

        again_elsewhere = post_event(
            client, "globex", same_id, **signed(same_id, secret="globex-signing-secret")
        )

        assert first.status_code == 202
        assert again_elsewhere.status_code == 409 and again_elsewhere.json()["error"] == "duplicate_event"
        assert list(InboundEvent.objects.values_list("tenant__slug", flat=True)) == ["acme"]
        assert AuditEvent.objects.filter(action="inbound.received").count() == 1
        assert not AuditEvent.objects.filter(tenant="globex", action="inbound.received").exists()

    @pytest.mark.parametrize("timestamp", ["nan", "NaN", "inf", "1e9", "-5", " 17", "2026-01-01T00:00:00"])
    def test_a_timestamp_that_is_not_unix_seconds_or_a_dated_iso_time_is_refused(
        self, acme, client, timestamp
    ):
        """ "nan" passed the window check (every comparison with NaN is false): a signature that never expired."""
        headers = {
            "HTTP_X_ZENDESK_WEBHOOK_SIGNATURE": webhooks.zendesk_signature(
                "sandbox", timestamp, self.ACME_EVENT
            ),
            "HTTP_X_ZENDESK_WEBHOOK_SIGNATURE_TIMESTAMP": timestamp,
        }

        response = post_event(client, "acme", self.ACME_EVENT, **headers)

        assert response.status_code == 401 and response.json()["error"] == "invalid_signature"
        assert self.nothing_recorded()

    def test_unix_seconds_are_a_timestamp(self, acme, client):
        timestamp = str(int(time.time()))
        headers = {
            "HTTP_X_ZENDESK_WEBHOOK_SIGNATURE": webhooks.zendesk_signature(
                "sandbox", timestamp, self.ACME_EVENT
            ),
            "HTTP_X_ZENDESK_WEBHOOK_SIGNATURE_TIMESTAMP": timestamp,
        }

        assert post_event(client, "acme", self.ACME_EVENT, **headers).status_code == 202

    def test_no_two_tenants_may_have_the_same_signing_secret(self, acme, globex):
        crm_connection("globex", "globex-signing-secret")

        with pytest.raises(connections.InvalidConnection):
            crm_connection("acme", "globex-signing-secret")
        with pytest.raises(connections.InvalidConnection):
            crm_connection("acme", "sandbox")  # CRM_WEBHOOK_SECRET, which the other tenants share


@pytest.mark.django_db
class TestDeadLetters:
    def failed(self, party):
        proposal = submit(party)
        services.proposal_approve(proposal=proposal, reviewer=party.reviewer, where=API)
        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, TICKETS_URL, status=422, json={"error": "RecordInvalid"})
            services.proposal_commit(proposal_id=proposal.pk)
        proposal.refresh_from_db()
        assert proposal.status == Status.FAILED
        return proposal

    def test_requeue_commits_with_the_same_key(self, acme):
        proposal = self.failed(acme)

        services.proposal_requeue(proposal=proposal, admin=acme.reviewer, where=Where(channel="web"))
        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, TICKETS_URL, status=201, json=ticket(6))
            assert services.proposal_commit(proposal_id=proposal.pk).outcome == "committed"
            assert rsps.calls[0].request.headers["Idempotency-Key"] == f"acme-proposal-{proposal.pk}"
        assert (
            AuditEvent.objects.filter(action="proposal.requeued", actor_label=acme.reviewer.username).count()
            == 1
        )

    def test_discard_keeps_it_failed_and_blocks_requeue(self, acme):
        from approvals import errors

        proposal = self.failed(acme)

        services.proposal_discard(proposal=proposal, admin=acme.reviewer, where=Where(channel="web"))

        proposal.refresh_from_db()
        assert proposal.status == Status.FAILED and proposal.discarded_at is not None
        with pytest.raises(errors.InvalidTransition):
            services.proposal_requeue(proposal=proposal, admin=acme.reviewer, where=Where(channel="web"))
        assert AuditEvent.objects.filter(action="proposal.discarded").count() == 1


@pytest.mark.django_db
class TestBackpressure:
    def test_low_priority_tools_get_429_when_the_queue_is_deep(self, acme, settings):
        settings.ACME_BACKPRESSURE_DEPTH = 2
        for i in range(3):
            outbox.stage_commit(f"00000000-0000-0000-0000-00000000000{i}")

        slack = acme.agent_client.post(
            "/api/v1/proposals/",
            {"tool": "slack.post_message", "args": {"channel": "#ops", "text": "hi"}},
            format="json",
        )
        ticket = acme.agent_client.post(
            "/api/v1/proposals/", {"tool": "crm.create_ticket", "args": ARGS}, format="json"
        )

        assert slack.status_code == 429
        assert slack["Retry-After"] == str(settings.ACME_BACKPRESSURE_RETRY_AFTER)
        assert slack.json()["error"] == "backpressure"
        assert ticket.status_code == 201  # normal-priority intake continues
        assert Proposal.objects.count() == 1


@pytest.mark.django_db
def test_admin_requeues_and_discards_dead_letters(acme, client):
    from django.contrib.auth import get_user_model

    dead = TestDeadLetters().failed(acme)
    admin_user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-12345678")
    client.force_login(admin_user)

    listed = client.get("/admin/approvals/proposal/?dead_letter=waiting")
    assert listed.status_code == 200 and str(dead.pk) in listed.content.decode()

    response = client.post(
        "/admin/approvals/proposal/", {"action": "requeue_dead_letters", "_selected_action": [dead.pk]}
    )

    assert response.status_code == 302
    dead.refresh_from_db()
    assert dead.status == Status.APPROVED
    event = AuditEvent.objects.get(action="proposal.requeued")
    assert event.actor_label == "root" and event.channel == "web"


@pytest.mark.django_db
def test_a_pending_delivery_whose_job_was_lost_is_staged_again(hooked):
    from datetime import timedelta

    from django.utils import timezone

    proposal = submit(hooked)
    services.proposal_reject(proposal=proposal, reviewer=hooked.reviewer, reason="no", where=API)
    delivery = WebhookDelivery.objects.get()
    staged_before = OutboxMessage.objects.filter(kind="webhook").count()

    assert webhooks.redispatch() == 0  # just staged: not lost
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        next_attempt_at=timezone.now() - timedelta(minutes=5)
    )
    assert webhooks.redispatch() == 1

    assert OutboxMessage.objects.filter(kind="webhook").count() == staged_before + 1
    delivery.refresh_from_db()
    assert delivery.next_attempt_at > timezone.now() - timedelta(seconds=5)
