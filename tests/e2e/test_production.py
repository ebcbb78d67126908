"""The production recipe, run as the README's "Deploy" section writes it (issue 17, findings 1 and 4).

DEBUG unset, gunicorn (not runserver) with deploy/gunicorn.conf.py, acme_worker, createsuperuser and the
create_* commands on a fresh PostgreSQL database and a Redis db of its own, behind a pretend TLS proxy
(the test sends X-Forwarded-Proto: https, as the proxy would). One proposal goes from submitted to
committed, the sandbox CRM gets exactly one ticket, and no demo account exists at any point."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from tests.e2e.recipe import Command, readme_recipe
from tests.e2e.stack import ROOT, Stack, _claim_redis_db, _redis_db, _with_db, free_port, wait_http

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

PROXY = {"X-Forwarded-Proto": "https"}
LONG_RUNNING = ("gunicorn ", "python manage.py acme_worker")


def argv(command: Command) -> list[str]:
    """The README's words, with this venv's interpreter and gunicorn (`python`/`gunicorn` on a server's PATH)."""
    head, *rest = command.argv
    if head == "python":
        return [sys.executable, *rest]
    if head == "gunicorn":
        return [str(Path(sys.executable).with_name("gunicorn")), *rest]
    raise AssertionError(f"the recipe runs {head!r}; this test knows python and gunicorn")


@contextlib.contextmanager
def production_env(tmp: Path, sandbox_url: str, web_port: int) -> Iterator[dict[str, str]]:
    """The recipe's settings with this test's values: a fresh database, a Redis db of its own; DEBUG unset."""
    base_db, base_redis = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not base_db.startswith("postgres") or not base_redis.startswith("redis://"):
        pytest.skip("needs PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)")
    import psycopg

    name = f"acme_prod_{uuid.uuid4().hex[:10]}"
    admin_url = _with_db(base_db, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    redis_db, release = _claim_redis_db(base_redis)
    public = f"https://127.0.0.1:{web_port}"
    values = {
        "DATABASE_URL": _with_db(base_db, name),
        "REDIS_URL": _redis_db(base_redis, redis_db),
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        "CSRF_TRUSTED_ORIGINS": public,
        "ACME_PUBLIC_URL": public,
        "SECURE_PROXY_SSL_HEADER_NAME": "HTTP_X_FORWARDED_PROTO",
        "ACME_TRUSTED_PROXIES": "127.0.0.1",
        "ACME_SECRETS_KEY": Fernet.generate_key().decode(),
        "CRM_BASE_URL": f"{sandbox_url}/crm",
        "CRM_API_TOKEN": "sandbox",
        "CRM_WEBHOOK_SECRET": secrets.token_urlsafe(32),
        "SLACK_API_URL": f"{sandbox_url}/slack/api",
        "SLACK_BOT_TOKEN": "sandbox",
        "ACME_METRICS_TOKEN": secrets.token_urlsafe(32),
    }
    recipe = readme_recipe()
    assert set(recipe.settings) == set(values), "the README's settings and this test's differ"
    # The machine's environment without the test run's own (DEBUG=1 from pytest-env, pytest's variables,
    # anything the recipe sets), then the recipe's settings. ACME_VAR_DIR and ACME_BIND only keep this run
    # apart from others on the machine (static files, metrics; a free port).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTEST_", "DJANGO_", "PROMETHEUS_", "ACME_"))
        and k != "DEBUG"
        and k not in values
    }
    env.update(values, ACME_VAR_DIR=str(tmp / "var"), ACME_BIND=f"127.0.0.1:{web_port}", PYTHONUNBUFFERED="1")
    try:
        yield env
    finally:
        release()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(command: Command, env: dict[str, str], own: dict[str, str]) -> str:
    assert set(command.env) <= set(own), (
        f"{command.text}: set {sorted(command.env)}; this test knows {sorted(own)}"
    )
    result = subprocess.run(
        argv(command),
        cwd=ROOT,
        env={**env, **{k: own[k] for k in command.env}},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{command.text} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def demo_accounts(stack: Stack) -> str:
    code = "from approvals.demo import demo_accounts; print(len(demo_accounts(active_only=False)))"
    return stack.manage("shell", "-c", code).strip().splitlines()[-1]


def test_the_readme_recipe_runs_a_proposal_to_committed():
    tmp = Path(tempfile.mkdtemp(prefix="acme-prod-"))
    web_port = free_port()
    sandbox_port = free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    with production_env(tmp, sandbox_url, web_port) as env:
        stack = Stack(
            env=env,
            tmp=tmp,
            web_url=f"http://127.0.0.1:{web_port}",
            sandbox_url=sandbox_url,
            api_headers=PROXY,
        )
        try:
            # the sandbox plays the outside CRM (it is not part of the recipe)
            sandbox = stack.spawn(
                "sandbox", sys.executable, "manage.py", "sandbox", "--port", str(sandbox_port)
            )
            wait_http(f"{sandbox_url}/_sandbox/tickets", proc=sandbox)
            own = {
                "DJANGO_SUPERUSER_USERNAME": "operator",
                "DJANGO_SUPERUSER_EMAIL": "ops@example.com",
                "DJANGO_SUPERUSER_PASSWORD": secrets.token_urlsafe(16),
            }
            outputs: dict[str, str] = {}

            # when: every command of the README's recipe, in order (the long-running ones started)
            for command in readme_recipe().commands:
                if command.text.startswith(LONG_RUNNING):
                    name = "web" if command.argv[0] == "gunicorn" else "worker"
                    proc = stack.spawn(name, *argv(command))
                    if name == "web":
                        wait_http(f"{stack.web_url}/api/v1/tools/", proc=proc, timeout=60, headers=PROXY)
                else:
                    outputs[command.argv[2]] = run(command, env, own)
            agent_token = outputs["create_agent"].strip().splitlines()[-1]
            reviewer_token = outputs["create_reviewer"].strip().splitlines()[-1]

            # then: production mode — plain HTTP is sent to HTTPS; through the proxy, HSTS and secure cookies
            plain = requests.get(f"{stack.web_url}/api/v1/tools/", allow_redirects=False, timeout=10)
            assert plain.status_code == 301
            assert plain.headers["Location"].startswith("https://")
            tools = stack.api("GET", "/tools/", agent_token)
            assert tools.status_code == 200, tools.text
            assert tools.headers["Strict-Transport-Security"].startswith("max-age=31536000")
            login = requests.get(f"{stack.web_url}/accounts/login/", headers=PROXY, timeout=10)
            assert login.status_code == 200 and len(login.cookies) > 0, login.status_code
            assert all(c.secure for c in login.cookies), login.cookies

            # and: one proposal, submitted and approved over REST, is committed by the worker
            created = stack.api(
                "POST",
                "/proposals/",
                agent_token,
                headers={"Idempotency-Key": "prod-1"},
                json={
                    "tool": "crm.create_ticket",
                    "args": {
                        "subject": "Printer on fire",
                        "description": "Floor 3 printer is smoking",
                        "priority": "critical",
                        "customer_email": "jane@example.com",
                    },
                    "rationale": "Customer reported a fire hazard in chat.",
                },
            )
            assert created.status_code == 201, created.text
            proposal_id = created.json()["id"]
            approved = stack.api(
                "POST", f"/proposals/{proposal_id}/approve/", reviewer_token, json={"comment": "ok"}
            )
            assert approved.status_code == 202, approved.text
            body = stack.wait_status(proposal_id, agent_token, {"committed", "failed", "stale"}, timeout=90)
            assert body["status"] == "committed", body
            tickets = stack.tickets()
            assert [t["subject"] for t in tickets] == ["Printer on fire"]
            receipt = stack.api("GET", f"/proposals/{proposal_id}/receipt/", agent_token)
            assert receipt.status_code == 200 and str(receipt.json()["external_id"]) == str(tickets[0]["id"])

            # and: no start created a demo account, and seed_demo refuses in production
            assert demo_accounts(stack) == "0"
            refused = subprocess.run(
                [sys.executable, "manage.py", "seed_demo"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert refused.returncode != 0 and "only with DEBUG=1" in refused.stderr, refused.stderr
            assert demo_accounts(stack) == "0"
        except BaseException:
            for name in ("web", "worker", "sandbox"):
                print(f"--- {name} log ---\n{stack.log(name)[-4000:]}")
            raise
        finally:
            stack.stop()
            shutil.rmtree(tmp, ignore_errors=True)


def test_check_deploy_names_a_demo_account_left_active_until_remove_demo(tmp_path):
    """A production database once seeded in development (e.g. an older `make run` on it): check --deploy
    fails naming the demo accounts, and passes once remove_demo has deactivated them."""
    with production_env(tmp_path, "http://127.0.0.1:9", free_port()) as env:
        stack = Stack(env=env, tmp=tmp_path)
        stack.manage("migrate", "--noinput", timeout=300)
        stack.env = {**env, "DEBUG": "1"}
        stack.manage("seed_demo")
        stack.env = env

        failed = subprocess.run(
            [sys.executable, "manage.py", "check", "--deploy"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert failed.returncode != 0
        for account in ("user 'reviewer'", "user 'admin'", "user 'alice'", "agent 'acme/demo-agent'"):
            assert account in failed.stderr, failed.stderr
        assert "manage.py remove_demo" in failed.stderr

        stack.manage("remove_demo")
        stack.manage("check", "--deploy", "--fail-level", "WARNING")
