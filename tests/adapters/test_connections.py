"""Each tenant's own connections (adapters.connections): secrets encrypted at rest and never shown, key
rotation, ``set_connection``, ``check --deploy``, the admin form, and the Slack client's resolution."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import responses
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from adapters import connections, registry
from adapters.forms import ConnectionForm
from adapters.models import Connection
from audit.models import AuditEvent
from tests.conftest import own_connection

TOKEN = "xoxb-very-secret-token"
SIGNING = "signing-secret-of-acme"


def stored_row(tenant: str, system: str) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM adapters_connection WHERE tenant = %s AND system = %s", [tenant, system]
        )
        columns = [c[0] for c in cursor.description]
        return dict(zip(columns, cursor.fetchone(), strict=True))


def set_cmd(*extra: str, tenant: str = "acme", token: str = TOKEN) -> str:
    out = io.StringIO()
    call_command(
        "set_connection",
        "--tenant",
        tenant,
        "--system",
        "slack",
        "--base-url",
        "https://slack.test/api/",
        "--token",
        token,
        *extra,
        stdout=out,
    )
    return out.getvalue()


@pytest.mark.django_db
class TestSetConnection:
    def test_tokens_and_secrets_are_stored_encrypted_and_never_printed_or_audited(self, acme):
        output = set_cmd("--signing-secret", SIGNING, "--review-channel", "#reviews")

        raw = json.dumps(stored_row("acme", "slack"), default=str)
        assert TOKEN not in raw and SIGNING not in raw
        resolved = connections.resolve("acme", "slack")
        assert (resolved.base_url, resolved.review_channel) == ("https://slack.test/api", "#reviews")
        assert resolved.token() == TOKEN and resolved.signing_secret() == SIGNING
        assert TOKEN not in repr(resolved) and TOKEN not in output and SIGNING not in output
        audited = AuditEvent.objects.get(action="connection.set")
        assert audited.tenant == "acme" and TOKEN not in json.dumps(audited.data)
        assert audited.data["changed"] == ["base_url", "token", "signing_secret", "review_channel"]

    def test_the_same_command_again_changes_nothing(self, acme):
        set_cmd("--signing-secret", SIGNING)
        before = stored_row("acme", "slack")

        output = set_cmd("--signing-secret", SIGNING)

        assert output.startswith("unchanged")
        assert stored_row("acme", "slack")["token_encrypted"] == before["token_encrypted"]
        assert Connection.objects.count() == 1

    def test_an_unknown_tenant_is_refused(self, db):
        with pytest.raises(CommandError, match="no tenant"):
            set_cmd(tenant="nope")

    @pytest.mark.parametrize(
        "url", ["ftp://x.test", "https://user:pw@x.test", "https://x.test/?a=1", "x.test"]
    )
    def test_a_base_url_that_is_not_a_plain_http_url_is_refused(self, acme, url):
        with pytest.raises(CommandError):
            call_command(
                "set_connection", "--tenant", "acme", "--system", "crm", "--base-url", url, "--token", "t"
            )


class TestKeys:
    def test_a_rotated_key_still_decrypts_what_the_old_one_encrypted(self, settings):
        old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
        settings.ACME_SECRETS_KEY = old
        sealed = connections.encrypt(TOKEN)

        settings.ACME_SECRETS_KEY = f"{new},{old}"
        assert connections.decrypt(sealed) == TOKEN
        assert (
            Fernet(new.encode()).decrypt(connections.encrypt("x").encode()) == b"x"
        )  # the first key encrypts

        settings.ACME_SECRETS_KEY = new
        with pytest.raises(ImproperlyConfigured):
            connections.decrypt(sealed)

    def test_without_a_key_debug_off_refuses_and_debug_on_derives_one(self, settings):
        settings.ACME_SECRETS_KEY = ""
        settings.DEBUG = False
        with pytest.raises(ImproperlyConfigured, match="ACME_SECRETS_KEY"):
            connections.encrypt(TOKEN)

        settings.DEBUG = True
        assert connections.decrypt(connections.encrypt(TOKEN)) == TOKEN


@pytest.mark.django_db
class TestDeployCheck:
    def run_check(self) -> str:
        out = io.StringIO()
        try:
            call_command("check", deploy=True, stdout=out, stderr=out)
        except Exception as exc:  # SystemCheckError when an error is found
            return out.getvalue() + str(exc)
        return out.getvalue()

    def test_a_stored_connection_without_a_key_is_an_error_that_says_how_to_make_one(self, acme, settings):
        own_connection("acme", base_url="https://acme-crm.test")
        settings.DEBUG = False
        settings.ACME_SECRETS_KEY = ""

        report = self.run_check()

        assert "adapters.E001" in report and "Fernet.generate_key()" in report

    def test_a_valid_key_passes(self, acme, settings):
        own_connection("acme", base_url="https://acme-crm.test")
        settings.DEBUG = False

        assert "adapters.E001" not in self.run_check()

    def test_an_own_connection_on_the_default_url_is_a_warning_while_tenants_use_the_default(
        self, acme, globex
    ):
        own_connection("acme")  # the environment default's URL

        assert "adapters.W002" in self.run_check()
        own_connection("globex", base_url="https://globex-crm.test")
        assert "adapters.W002" not in self.run_check()

    def test_a_slack_connection_whose_workspace_is_unknown_is_a_warning_and_the_command_says_so(self, acme):
        import responses

        # given: Slack does not answer auth.test when the connection is set
        with responses.RequestsMock() as rsps:
            rsps.add(responses.POST, "https://slack.test/api/auth.test", status=400, json={"ok": False})
            out, err = io.StringIO(), io.StringIO()
            call_command(
                "set_connection", "--tenant", "acme", "--system", "slack", "--base-url", "https://slack.test/api",
                "--token", "xoxb-1", "--signing-secret", "sign-1", stdout=out, stderr=err,
            )  # fmt: skip

        # then: the operator is told where they look, and check --deploy keeps saying it
        assert "auth.test did not answer" in err.getvalue()
        assert "adapters.W003" in self.run_check()
        Connection.objects.filter(tenant="acme", system="slack").update(team_id="T1")
        assert "adapters.W003" not in self.run_check()


@pytest.mark.django_db
class TestAdminForm:
    def test_secrets_are_never_rendered_and_blank_keeps_them(self, acme):
        own_connection(
            "acme", "slack", base_url="https://slack.test/api", token=TOKEN, signing_secret=SIGNING
        )
        row = Connection.objects.get(tenant="acme", system="slack")

        form = ConnectionForm(instance=row)
        html = str(form)
        assert TOKEN not in html and SIGNING not in html and row.token_encrypted not in html

        edit = ConnectionForm(
            data={
                "base_url": "https://slack.test/api",
                "review_channel": "#new",
                "token": "",
                "signing_secret": "",
            },
            instance=row,
        )
        assert edit.is_valid(), edit.errors
        edit.save()
        resolved = connections.resolve("acme", "slack")
        assert (resolved.token(), resolved.signing_secret(), resolved.review_channel) == (
            TOKEN,
            SIGNING,
            "#new",
        )

    def test_a_new_connection_needs_a_token(self, acme):
        form = ConnectionForm(
            data={"tenant": "acme", "system": "crm", "base_url": "https://crm.test", "token": ""}
        )

        assert not form.is_valid() and "token" in form.errors


@pytest.mark.django_db
def test_slack_posts_go_to_the_tenants_own_workspace_with_its_token(acme, settings, fast_retries):
    settings.SLACK_API_URL = "https://default-slack.test/api"
    own_connection("acme", "slack", base_url="https://acme.slack.test/api", token=TOKEN)

    with responses.RequestsMock() as rsps:
        rsps.add(
            responses.POST,
            "https://acme.slack.test/api/chat.postMessage",
            json={"ok": True, "channel": "C1", "ts": "1.0"},
        )
        registry.execute(
            "slack.post_message", {"channel": "#general", "text": "hi"}, idempotency_key="k", tenant="acme"
        )
        assert rsps.calls[0].request.headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.django_db
def test_slack_rate_limits_are_per_workspace(acme, globex, settings, fast_retries):
    """'#general' of acme's own workspace and '#general' of the default workspace are different channels."""
    own_connection("acme", "slack", base_url="https://acme.slack.test/api", token=TOKEN)
    ok = {"ok": True, "channel": "C1", "ts": "1.0"}

    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, "https://acme.slack.test/api/chat.postMessage", json=ok)
        rsps.add(responses.POST, f"{settings.SLACK_API_URL}/chat.postMessage", json=ok)
        registry.execute(
            "slack.post_message", {"channel": "#general", "text": "a"}, idempotency_key="a", tenant="acme"
        )
        registry.execute(
            "slack.post_message", {"channel": "#general", "text": "g"}, idempotency_key="g", tenant="globex"
        )
        assert len(rsps.calls) == 2


@pytest.mark.django_db
def test_seed_demo_gives_the_demo_tenant_its_own_crm_connection(settings):
    """The demo updates sandbox tickets it did not create: acme's own connection makes them its own."""
    settings.DEBUG = True
    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO())  # again: left as it is

    conn = connections.resolve("acme", "crm")
    assert (conn.own, conn.shared, conn.base_url) == (True, False, connections.default_base_url("crm"))
    # One CRM connection however often it runs (the demo gives acme its own Slack connection too).
    assert Connection.objects.filter(tenant="acme", system="crm").count() == 1


@pytest.fixture
def local_server() -> Any:
    """An HTTP server on loopback (an internal service), recording what reaches it."""
    import http.server
    import threading

    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ticket": {"id": 1}}')

        do_POST = do_GET

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.hits = hits  # type: ignore[attr-defined]
    yield server
    server.shutdown()


@pytest.mark.django_db
class TestPrivateAddresses:
    """A tenant admin chooses their connection's URL in the admin: it must not reach into the gateway's own
    network (loopback services, the cloud's metadata address, private ranges), at save or at call time."""

    @pytest.fixture(autouse=True)
    def production(self, settings: Any) -> None:
        settings.DEBUG = False
        settings.ACME_CONNECTIONS_ALLOW_PRIVATE = False
        settings.ACME_SECRETS_KEY = Fernet.generate_key().decode()

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:6379/x",
            "http://169.254.169.254/latest",
            "http://[::1]/",
            "http://10.0.0.5/api",
            "http://localhost:8000/",
        ],
    )
    def test_a_tenant_admin_cannot_point_a_connection_into_the_gateways_network(self, acme, url):
        from django.test import Client

        from approvals.accounts import person_create
        from approvals.models import Role, Tenant

        boss = person_create(tenant=Tenant.objects.get(slug="acme"), username="boss-a", role=Role.ADMIN)
        client = Client()
        client.force_login(boss)

        response = client.post(
            "/admin/adapters/connection/add/",
            {"tenant": "acme", "system": "crm", "base_url": url, "review_channel": "", "token": "t"},
        )

        assert response.status_code == 200 and "public addresses only" in response.content.decode()
        assert not Connection.objects.filter(tenant="acme").exists()
        with pytest.raises(connections.InvalidConnection):
            own_connection("acme", base_url=url, token="t")

    def test_a_stored_connection_that_now_resolves_inside_is_never_opened(
        self, acme, local_server, fast_retries
    ):
        # Stored while its host answered a public address (DNS rebinding), or before this rule: the calls
        # check each connection they open.
        Connection.objects.create(
            tenant="acme",
            system="crm",
            base_url=f"http://127.0.0.1:{local_server.server_port}",
            token_encrypted=connections.encrypt("t"),
        )
        from adapters.crm import client as crm
        from adapters.errors import AdapterError

        with connections.using("acme"), pytest.raises(AdapterError):
            crm.call("GET", "tickets/1.json")
        assert local_server.hits == []

    def test_an_operator_may_allow_private_addresses(self, acme, local_server, settings):
        settings.ACME_CONNECTIONS_ALLOW_PRIVATE = True
        own_connection("acme", base_url=f"http://127.0.0.1:{local_server.server_port}", token="t")
        from adapters.crm import client as crm

        with connections.using("acme"):
            crm.call("GET", "tickets/1.json")
        assert local_server.hits == ["/api/v2/tickets/1.json"]


@pytest.mark.django_db(transaction=True)
def test_a_created_record_is_kept_once_and_not_waited_for_on_disk_in_its_own_transaction(acme):
    """record_created runs after the outside call, in a transaction of its own: on PostgreSQL its COMMIT is
    not waited for on disk (the receipt's later, synchronous COMMIT flushes it), and never so inside a
    caller's transaction, whose durability is the caller's."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from adapters import connections as adapter_connections
    from adapters.models import CreatedRecord

    with adapter_connections.using("acme"), CaptureQueriesContext(connection) as own:
        adapter_connections.record_created("crm", 41)
        adapter_connections.record_created("crm", 41)  # a retry: the unique constraint keeps one
    with adapter_connections.using("acme"), CaptureQueriesContext(connection) as inside:
        with transaction.atomic():
            adapter_connections.record_created("crm", 42)

    assert CreatedRecord.objects.filter(tenant="acme", system="crm", external_id="41").count() == 1
    assert CreatedRecord.objects.filter(tenant="acme", system="crm", external_id="42").count() == 1
    relaxed = [q["sql"] for q in own.captured_queries if "synchronous_commit" in q["sql"]]
    assert len(relaxed) == (2 if connection.vendor == "postgresql" else 0)
    assert not [q for q in inside.captured_queries if "synchronous_commit" in q["sql"]]
