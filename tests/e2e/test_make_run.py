"""`make run` (python -m acme_integration.run) with nothing configured: DEBUG on for its own processes
only, SQLite and the embedded Redis, the demo seeded; a restart shows and accepts the same demo tokens
(issue 17, finding 1)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.e2e.stack import ROOT, free_port

BANNER_END = "Ctrl-C stops everything."
TOKENS = re.compile(r"export TOKEN=(\S+) REVIEWER_TOKEN=(\S+)")


def start_and_stop(var: Path, web_port: int, sandbox_port: int) -> tuple[str, str, dict[str, int]]:
    """One `make run`: wait for its banner, call the API with the tokens it shows, Ctrl-C it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DEBUG",
            "SECRET_KEY",
            "DATABASE_URL",
            "REDIS_URL",
            "PROMETHEUS_MULTIPROC_DIR",
            "ACME_METRICS_DEFAULT_FOR",
            "DJANGO_SETTINGS_MODULE",
        )
        and not k.startswith("PYTEST_")
    }
    env["ACME_VAR_DIR"] = str(var)
    log = var.parent / f"run-{time.monotonic_ns()}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "acme_integration.run",
                "--web",
                f"127.0.0.1:{web_port}",
                "--sandbox-port",
                str(sandbox_port),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 180
        while BANNER_END not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")[-4000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-4000:]
            time.sleep(0.5)
        text = log.read_text(errors="replace")
        match = TOKENS.search(text)
        assert match, text[-4000:]
        agent, reviewer = match.groups()
        base = f"http://127.0.0.1:{web_port}/api/v1"
        codes = {
            "agent": requests.get(
                f"{base}/proposals/", headers={"Authorization": f"Bearer {agent}"}, timeout=30
            ).status_code,
            "reviewer": requests.get(
                f"{base}/proposals/", headers={"Authorization": f"Bearer {reviewer}"}, timeout=30
            ).status_code,
        }
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=60)
    assert code == 0, log.read_text(errors="replace")[-4000:]
    return agent, reviewer, codes


def test_make_run_starts_with_nothing_configured_and_a_restart_keeps_the_demo_tokens(tmp_path):
    var = tmp_path / "var"
    web_port, sandbox_port = free_port(), free_port()

    first = start_and_stop(var, web_port, sandbox_port)
    second = start_and_stop(var, web_port, sandbox_port)

    assert first[2] == {"agent": 200, "reviewer": 200}
    assert second[:2] == first[:2]
    assert second[2] == {"agent": 200, "reviewer": 200}
