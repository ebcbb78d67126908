"""Production settings: the deployment checklist passes, and a missing SECRET_KEY stops the app."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    # No DATABASE_URL either: a SQLite file under the test's ACME_VAR_DIR, never the machine's database
    # (which check --deploy reads, for demo accounts, and which may not exist outside the test run).
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL")
    }
    # A REDIS_URL that is never dialled here: without one, every process would start an embedded server.
    base["REDIS_URL"] = "redis://127.0.0.1:9/0"
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_production_env(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="gateway.example.com",
        ACME_VAR_DIR=str(tmp_path),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_refuses_to_start_without_secret_key_when_debug_is_off(tmp_path):
    result = manage("check", DEBUG="false", ALLOWED_HOSTS="gateway.example.com", ACME_VAR_DIR=str(tmp_path))

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_cookies_are_secure(tmp_path):
    code = (
        "from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0)"
    )
    result = manage(
        "shell",
        "-c",
        code,
        DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="gateway.example.com",
        ACME_VAR_DIR=str(tmp_path),
    )

    assert result.stdout.strip().splitlines()[-1] == "True True True True", result.stderr


# --- Production mode by default (issue 17, finding 1; contract section 6) ----------------------------------

PRODUCTION_VALUES = (
    "from django.conf import settings as s; "
    "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
    "s.ALLOWED_HOSTS, repr(s.CRM_WEBHOOK_SECRET), s.ACME_WEBHOOK_ALLOW_PRIVATE)"
)


def test_debug_unset_means_production_values(tmp_path):
    # given: the environment of a start where nobody set DEBUG (manage() drops it)
    result = manage(
        "shell", "-c", PRODUCTION_VALUES, SECRET_KEY=secrets.token_urlsafe(50), ACME_VAR_DIR=str(tmp_path)
    )

    # then: debug off, secure cookies, HTTPS redirect and HSTS, no dev hosts or dev secrets
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False True True True 31536000 [] '' False", (
        result.stdout
    )


def test_debug_unset_and_no_secret_key_refuses_to_start(tmp_path):
    result = manage("check", ACME_VAR_DIR=str(tmp_path))

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_debug_is_on_only_when_set(tmp_path):
    for value, expected in (("1", "True"), ("true", "True"), ("0", "False"), ("", "False")):
        result = manage(
            "shell",
            "-c",
            "from django.conf import settings as s; print(s.DEBUG)",
            DEBUG=value,
            SECRET_KEY=secrets.token_urlsafe(50),
            ACME_VAR_DIR=str(tmp_path),
        )
        assert result.stdout.strip().splitlines()[-1] == expected, (value, result.stderr)


def test_the_test_run_itself_is_in_development_mode():
    # The suite's own settings come from pyproject's pytest `env` (DEBUG=1), never from a production default
    # (pytest-django itself turns settings.DEBUG off while tests run; the values derived from it stay).
    from django.conf import settings

    assert os.environ["DEBUG"] == "1"
    assert settings.SECURE_SSL_REDIRECT is False
    assert "testserver" in settings.ALLOWED_HOSTS
