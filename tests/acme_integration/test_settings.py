"""Production settings: the deployment checklist passes, and a missing SECRET_KEY stops the app."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS")}
    # A REDIS_URL that is never dialled here: without one, every process would start an embedded server.
    base["REDIS_URL"] = "redis://127.0.0.1:9/0"
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_production_env(tmp_path):
    result = manage("check", "--deploy", "--fail-level", "WARNING", DEBUG="false",
                    SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="gateway.example.com",
                    ACME_VAR_DIR=str(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_refuses_to_start_without_secret_key_when_debug_is_off(tmp_path):
    result = manage("check", DEBUG="false", ALLOWED_HOSTS="gateway.example.com", ACME_VAR_DIR=str(tmp_path))

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_cookies_are_secure(tmp_path):
    code = ("from django.conf import settings as s; "
            "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0)")
    result = manage("shell", "-c", code, DEBUG="false", SECRET_KEY=secrets.token_urlsafe(50),
                    ALLOWED_HOSTS="gateway.example.com", ACME_VAR_DIR=str(tmp_path))

    assert result.stdout.strip().splitlines()[-1] == "True True True True", result.stderr
