"""Real processes: the whole stack (``stack``), or the sandbox CRM/Slack alone (``sandbox``) for the
integration layer's tests against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from tests.e2e.stack import ROOT, running_stack


@pytest.fixture(scope="session")
def stack():
    """One set of real processes for the session; each test makes its own tenant."""
    with running_stack(workers=1) as running:
        yield running


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@dataclass
class Sandbox:
    """A running ``manage.py sandbox`` process and helpers for its ``/_sandbox/`` controls."""

    url: str
    process: subprocess.Popen[str] = field(repr=False)

    def control(self, method: str, path: str, json: Any = None) -> Any:
        response = requests.request(method, f"{self.url}/_sandbox/{path}", json=json, timeout=5)
        response.raise_for_status()
        return response.json()

    def fault(self, mode: str, *, target: str = "crm", count: int = 1, **extra: Any) -> None:
        self.control("POST", "faults", {"target": target, "mode": mode, "count": count, **extra})

    def requests(self, target: str | None = None) -> list[dict[str, Any]]:
        logged = self.control("GET", "requests")["requests"]
        return [r for r in logged if target is None or r["target"] == target]

    def tickets(self) -> list[dict[str, Any]]:
        return self.control("GET", "tickets")["tickets"]


@pytest.fixture(scope="session")
def sandbox_process() -> Iterator[Sandbox]:
    process = subprocess.Popen(
        [sys.executable, "manage.py", "sandbox", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "CRM_API_TOKEN": "sandbox", "SLACK_BOT_TOKEN": "sandbox"},
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()  # "sandbox listening on http://127.0.0.1:PORT"
        if not first.startswith("sandbox listening on "):
            process.kill()
            raise RuntimeError(
                f"sandbox did not start: {first!r} {process.stderr.read() if process.stderr else ''}"
            )
        url = first.removeprefix("sandbox listening on ")
        deadline = time.monotonic() + 10
        while True:
            try:
                requests.get(f"{url}/_sandbox/health", timeout=1).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield Sandbox(url=url, process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def sandbox(sandbox_process: Sandbox, settings: Any, fast_retries: None) -> Sandbox:
    """The shared sandbox process, emptied, with the settings pointing at it."""
    sandbox_process.control("POST", "reset")
    settings.CRM_BASE_URL = f"{sandbox_process.url}/crm"
    settings.SLACK_API_URL = f"{sandbox_process.url}/slack/api"
    settings.CRM_API_TOKEN = "sandbox"
    settings.SLACK_BOT_TOKEN = "sandbox"
    return sandbox_process
