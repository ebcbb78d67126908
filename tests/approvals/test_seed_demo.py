"""seed_demo (issue 17, finding 1): development only, never resets a person's password, and a restart
keeps the demo tokens working; the deploy check and remove_demo for demo accounts left in production."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from approvals import demo
from approvals.accounts import person_create, tenant_create
from approvals.checks import demo_accounts_check
from approvals.management.commands.seed_demo import DEFAULT_PASSWORD, REFUSED_WITHOUT_DEBUG
from approvals.models import AgentCredential, Role, Tenant, UserToken

pytestmark = pytest.mark.django_db


@pytest.fixture
def dev(settings: Any, tmp_path: Any) -> Any:
    """DEBUG on (pytest-django turns it off while tests run) and a var/ of the test's own."""
    settings.DEBUG = True
    settings.VAR_DIR = tmp_path
    return settings


def seed() -> dict[str, str]:
    out = io.StringIO()
    call_command("seed_demo", stdout=out, stderr=io.StringIO())
    lines = out.getvalue().strip().splitlines()
    reviewer = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("reviewer API token:"))
    return {"agent": lines[-1].strip(), "reviewer": reviewer, "output": out.getvalue()}


def status(token: str, path: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get(path).status_code


# --- seed_demo ---------------------------------------------------------------------------------------------


def test_refuses_with_debug_off_and_creates_nothing(settings, tmp_path):
    settings.DEBUG = False
    settings.VAR_DIR = tmp_path

    with pytest.raises(CommandError) as raised:
        call_command("seed_demo", stdout=io.StringIO())

    assert str(raised.value) == REFUSED_WITHOUT_DEBUG
    assert get_user_model().objects.count() == 0
    assert (
        not Tenant.objects.exists()
        and not AgentCredential.objects.exists()
        and not UserToken.objects.exists()
    )
    assert not (tmp_path / demo.TOKENS_FILE).exists()


def test_creates_the_demo_accounts_with_the_demo_password(dev):
    tokens = seed()

    users = get_user_model().objects.filter(username__in=demo.DEMO_USERS)
    assert sorted(u.username for u in users) == ["admin", "alice", "reviewer"]
    assert all(u.check_password(DEFAULT_PASSWORD) for u in users)
    assert f"username=reviewer password={DEFAULT_PASSWORD}" in tokens["output"]
    assert status(tokens["agent"], "/api/v1/tools/") == 200
    assert status(tokens["reviewer"], "/api/v1/proposals/") == 200


def test_a_second_run_keeps_a_changed_password(dev):
    # given: the demo seeded, then the operator changed the reviewer's and the admin's passwords
    seed()
    user_model = get_user_model()
    for username in ("reviewer", "admin"):
        user = user_model.objects.get(username=username)
        user.set_password(f"{username}-own-choice-42")
        user.save()

    # when: the next start seeds again
    tokens = seed()

    # then: their passwords are theirs still, and the output does not claim the demo password works
    for username in ("reviewer", "admin"):
        user = user_model.objects.get(username=username)
        assert user.check_password(f"{username}-own-choice-42")
        assert not user.check_password(DEFAULT_PASSWORD)
    assert f"password={DEFAULT_PASSWORD}" not in tokens["output"]
    assert "username=reviewer password=(changed since it was created; not shown)" in tokens["output"]


def test_a_second_run_keeps_the_same_tokens_working(dev):
    first = seed()

    second = seed()

    assert (second["agent"], second["reviewer"]) == (first["agent"], first["reviewer"])
    assert status(first["agent"], "/api/v1/tools/") == 200
    assert status(first["reviewer"], "/api/v1/proposals/") == 200
    assert AgentCredential.objects.filter(name=demo.DEMO_AGENT).count() == 1
    assert UserToken.objects.filter(name=demo.DEMO_TOKEN_NAME, is_active=True).count() == 1


def test_the_kept_tokens_file_is_private(dev):
    seed()

    path = dev.VAR_DIR / demo.TOKENS_FILE
    assert path.stat().st_mode & 0o077 == 0


def test_a_lost_tokens_file_issues_new_tokens_and_retires_the_old(dev):
    first = seed()
    (dev.VAR_DIR / demo.TOKENS_FILE).unlink()

    second = seed()

    assert second["agent"] != first["agent"] and second["reviewer"] != first["reviewer"]
    assert status(second["agent"], "/api/v1/tools/") == 200
    assert status(second["reviewer"], "/api/v1/proposals/") == 200
    assert status(first["agent"], "/api/v1/tools/") == 401
    assert status(first["reviewer"], "/api/v1/proposals/") == 401


def test_deactivated_demo_accounts_stay_deactivated(dev):
    first = seed()
    call_command("remove_demo", stdout=io.StringIO())

    second = seed()

    assert not get_user_model().objects.filter(username__in=demo.DEMO_USERS, is_active=True).exists()
    assert not AgentCredential.objects.get(name=demo.DEMO_AGENT).is_active
    assert status(first["agent"], "/api/v1/tools/") == 401
    assert "(deactivated)" in second["output"]


# --- check --deploy and remove_demo ------------------------------------------------------------------------


def test_deploy_check_names_each_active_demo_account_with_debug_off(dev):
    seed()
    dev.DEBUG = False

    errors = demo_accounts_check()

    assert {e.id for e in errors} == {"acme.E001"}
    named = sorted(
        e.msg.removeprefix("Demo account still active with DEBUG off: ").split(". ")[0] for e in errors
    )
    assert named[:4] == ["agent 'acme/demo-agent'", named[1], "user 'admin'", "user 'alice'"]
    assert named[1].startswith("token 'reviewer/demo (usr_")
    assert named[4:] == ["user 'reviewer'"]
    assert all("manage.py remove_demo" in e.hint for e in errors)


def test_deploy_check_is_clean_after_remove_demo(dev):
    tokens = seed()
    dev.DEBUG = False

    out = io.StringIO()
    call_command("remove_demo", stdout=out)

    assert "5 demo accounts deactivated" in out.getvalue()
    assert demo_accounts_check() == []
    assert status(tokens["agent"], "/api/v1/tools/") == 401
    assert status(tokens["reviewer"], "/api/v1/proposals/") == 401
    assert not get_user_model().objects.get(username="reviewer").has_usable_password()


def test_deploy_check_is_quiet_with_debug_on(dev):
    seed()

    assert demo_accounts_check() == []


def test_deploy_check_ignores_an_operator_named_admin_outside_the_demo_tenant(settings):
    settings.DEBUG = False
    tenant, _ = tenant_create(slug="globex")
    person_create(tenant=tenant, username="admin", role=Role.ADMIN, password="operator-pass-123", staff=True)

    assert demo_accounts_check() == []


def test_deploy_check_is_registered_for_check_deploy_only():
    from django.core.checks import registry

    assert demo_accounts_check in registry.registry.get_checks(include_deployment_checks=True)
    assert demo_accounts_check not in registry.registry.get_checks(include_deployment_checks=False)
