"""Bench 6 — agents (issue 18): waiting agents against intake, and the MCP write call against REST.

Both on gunicorn as deployed (``-w 2 --threads 8``, the defaults of deploy/gunicorn.conf.py), PostgreSQL and
Redis, a fresh database, the sandbox CRM.

1. **Intake with agents waiting.** ``POST /api/v1/proposals/`` latency (``BENCH_AGENTS_CLIENTS`` clients, one
   keep-alive connection each, ``BENCH_AGENTS_SECONDS`` s) with nobody waiting, then while
   ``BENCH_AGENTS_WAITERS`` (50) agents each hold ``GET /api/v1/proposals/{id}/?wait=30`` on a pending proposal
   nobody decides, asking again as soon as they are answered (after ``Retry-After`` when the server had no
   room for their wait). Reported: intake p50/p95 and rate both ways, and how the waiters were served
   (waits held to the end, answered at once for want of a slot).
2. **MCP write overhead.** One client, alternating: ``POST /api/v1/proposals/`` and an MCP ``tools/call`` of
   ``crm_create_ticket`` (a JSON-RPC POST to ``/mcp/`` as a Streamable HTTP client sends it), each a new
   ticket; p50 of each and their ratio (target: MCP at most 1.5 times REST).

  python bench/agents.py        (make bench runs it too; BENCH_ONLY=agents for it alone)
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Run, ratio, summary_ms, table, write_results

SECONDS = float(os.environ.get("BENCH_AGENTS_SECONDS", "8"))
CLIENTS = int(os.environ.get("BENCH_AGENTS_CLIENTS", "4"))
WAITERS = int(os.environ.get("BENCH_AGENTS_WAITERS", "50"))
MCP_CALLS = int(os.environ.get("BENCH_AGENTS_MCP_CALLS", "150"))
TARGET_MCP_RATIO = 1.5


class Conn:
    """One keep-alive HTTP connection with the agent's token."""

    def __init__(self, url: str, token: str, timeout: float = 60) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
        self.token = token

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], Any]:
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/json",
            **(headers or {}),
        }
        self.conn.request(method, path, body=data, headers=all_headers)
        response = self.conn.getresponse()
        raw = response.read()
        return response.status, dict(response.getheaders()), json.loads(raw) if raw else None


def ticket(n: int, tag: str) -> dict[str, Any]:
    return {
        # Each number after a letter: digit groups split by spaces would be read as a card number (policy).
        "subject": f"Bench {tag} n{n} id{uuid.uuid4().hex[:12]}",
        "description": "Agents bench.",
        "priority": "high",
        "customer_email": "bench@example.com",
    }


def submit(conn: Conn, n: int, tag: str) -> str:
    status, _, body = conn.request(
        "POST", "/api/v1/proposals/", {"tool": "crm.create_ticket", "args": ticket(n, tag)}
    )
    if status != 201:
        raise RuntimeError(f"intake answered {status}: {body}")
    return str(body["id"])


def intake(url: str, token: str, seconds: float, tag: str) -> dict[str, Any]:
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client(index: int) -> None:
        conn = Conn(url, token)
        n = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            submit(conn, n, f"{tag}-{index}")
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
            n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    return {
        **summary_ms(latencies),
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / took, 1),
    }


def waiters(
    url: str, token: str, ids: list[str], stop: threading.Event, stats: dict[str, int]
) -> list[threading.Thread]:
    lock = threading.Lock()

    def wait_loop(pid: str) -> None:
        conn = Conn(url, token, timeout=90)
        while not stop.is_set():
            started = time.monotonic()
            status, headers, _ = conn.request("GET", f"/api/v1/proposals/{pid}/?wait=30")
            held = time.monotonic() - started
            with lock:
                if status != 200:
                    stats["errors"] += 1
                elif "Retry-After" in headers:
                    stats["no_slot"] += 1
                elif held >= 29:
                    stats["held_30s"] += 1
                else:
                    stats["other"] += 1
            if "Retry-After" in headers:
                stop.wait(float(headers["Retry-After"]))

    threads = [threading.Thread(target=wait_loop, args=(pid,), daemon=True) for pid in ids]
    for t in threads:
        t.start()
    return threads


def mcp_overhead(url: str, token: str) -> dict[str, Any]:
    rest, mcp = Conn(url, token), Conn(url, token)
    accept = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
    rest_ms: list[float] = []
    mcp_ms: list[float] = []
    for n in range(MCP_CALLS):
        started = time.perf_counter()
        submit(rest, n, "rest")
        rest_ms.append(time.perf_counter() - started)
        call = {
            "jsonrpc": "2.0",
            "id": n,
            "method": "tools/call",
            "params": {"name": "crm_create_ticket", "arguments": ticket(n, "mcp")},
        }
        started = time.perf_counter()
        status, _, body = mcp.request("POST", "/mcp/", call, accept)
        mcp_ms.append(time.perf_counter() - started)
        if status != 200 or body["result"]["structuredContent"]["status"] != "pending_approval":
            raise RuntimeError(f"MCP answered {status}: {body}")
    rest_summary, mcp_summary = summary_ms(rest_ms[5:]), summary_ms(mcp_ms[5:])  # after a warm-up
    return {
        "rest": rest_summary,
        "mcp": mcp_summary,
        "ratio_p50": ratio(mcp_summary["p50_ms"], rest_summary["p50_ms"]),
        "target": TARGET_MCP_RATIO,
        "met": mcp_summary["p50_ms"] <= TARGET_MCP_RATIO * rest_summary["p50_ms"],
    }


def main() -> None:
    with Run("agents") as run:
        # The per-agent submission budget is raised for every bench (bench.common.Run).
        run.migrate()
        run.start_sandbox()
        party = run.party()
        token = party["agent"]
        url = run.start_gunicorn(
            "web",
            "acme_integration.wsgi:application",
            settings="acme_integration.settings",
            workers=2,
            threads=8,
            probe="/api/v1/tools/",
        )
        conn = Conn(url, token)
        # Warm-up, and the proposals the waiters wait on (nobody decides them).
        ids = [submit(conn, n, "waited") for n in range(WAITERS)]
        quiet = intake(url, token, SECONDS, "quiet")
        stop = threading.Event()
        stats = {"held_30s": 0, "no_slot": 0, "other": 0, "errors": 0}
        threads = waiters(url, token, ids, stop, stats)
        time.sleep(2)  # every waiter has asked once
        busy = intake(url, token, SECONDS, "busy")
        stop.set()
        for t in threads:
            t.join(35)
        overhead = mcp_overhead(url, token)
        run.check_alive("web")

    figures = {
        "gunicorn": {"workers": 2, "threads": 8, "wait_slots_per_process": 4},
        "clients": CLIENTS,
        "waiters": WAITERS,
        "seconds": SECONDS,
        "intake_no_waiters": quiet,
        "intake_with_waiters": busy,
        "intake_p50_ratio": ratio(busy["p50_ms"], quiet["p50_ms"]),
        "waiters_answers": stats,
        "mcp_write": overhead,
    }
    table(
        f"Intake with {WAITERS} agents waiting (gunicorn -w 2 --threads 8, {CLIENTS} clients)",
        ["", "p50 ms", "p95 ms", "req/s"],
        [
            ["nobody waiting", quiet["p50_ms"], quiet["p95_ms"], quiet["requests_per_s"]],
            [f"{WAITERS} waiting", busy["p50_ms"], busy["p95_ms"], busy["requests_per_s"]],
        ],
    )
    print(f"waiters' answers: {stats}")
    table(
        "MCP write call vs REST submission (one client, alternating)",
        ["", "p50 ms", "p95 ms"],
        [
            ["REST POST /api/v1/proposals/", overhead["rest"]["p50_ms"], overhead["rest"]["p95_ms"]],
            ["MCP tools/call crm_create_ticket", overhead["mcp"]["p50_ms"], overhead["mcp"]["p95_ms"]],
            ["ratio (target <= 1.5)", overhead["ratio_p50"], ""],
        ],
    )
    write_results("agents", figures)


if __name__ == "__main__":
    main()
