"""Bench 1 — intake: proposals/s through ``POST /api/v1/proposals/`` against a bare DRF endpoint that
inserts one row, both under gunicorn (-w 2 --threads 4) on the same fresh PostgreSQL database, with the
same concurrent clients, in the same run. Rounds alternate (bare, product, bare, product) so that noise
from other work on the machine falls on both.

A second, *reference* baseline runs in the same rounds on the same bare server: ``POST /rows/audited/``,
the least a trustworthy intake does (a bearer token looked up by its sha256, then the row and one audit
record in one transaction). It is not the issue's target; it shows how much of the gap is authentication
and an audited, transactional write, and how much is the gateway's own work (policy, preview,
idempotency, field history, the hash chain).

A *floor* runs in the same rounds too: ``POST /rows/floor/`` on the bare server sends the SQL of one of
the product's submissions (token, policy rows, then the proposal, its field history and its chained audit
event in one transaction) on the product's own tables, by hand, with none of the gateway's Python. Its
ratio to the bare insert is the most any intake that writes those rows can reach on this stack.
Then each endpoint is timed with one client (``BENCH_INTAKE_SINGLE_SECONDS``, 3 s): a request's latency
when nothing queues, which bench 2's summary uses.

The client is plain ``http.client`` with one keep-alive connection per thread (cheaper than requests);
its own CPU use is reported, since on two cores it competes with the servers.

  BENCH_INTAKE_SECONDS  measured seconds per target (default 12, split over 2 rounds)
  BENCH_INTAKE_CLIENTS  concurrent clients (default 8)
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bare import BARE_TOKEN
from bench.common import (
    PG_URL,
    PY,
    Run,
    cpu_by_pid,
    cpu_delta,
    peak_memory,
    pg_backend_pids,
    ratio,
    summary_ms,
    table,
    write_results,
)

SECONDS = float(os.environ.get("BENCH_INTAKE_SECONDS", "12"))
CLIENTS = int(os.environ.get("BENCH_INTAKE_CLIENTS", "8"))
ROUNDS = 2
SINGLE_SECONDS = float(os.environ.get("BENCH_INTAKE_SINGLE_SECONDS", "3"))
WARMUP = 1.5
TARGET = 0.5


def body(worker: int, i: int, run_id: str) -> bytes:
    return json.dumps(
        {
            "tool": "crm.create_ticket",
            "args": {
                "subject": f"VPN down for office {run_id}-{worker}-{i}",
                "description": "Nobody in the Paris office can connect since 9:00.",
                "priority": "high",
                "customer_email": "Ops@Example.com",
                "tags": ["network", "paris"],
            },
            "rationale": "user reported an outage",
        }
    ).encode()


def load(
    url: str,
    path: str,
    headers: dict[str, str],
    seconds: float,
    run_id: str,
    *,
    run: Run,
    server: str,
    clients: int = CLIENTS,
) -> dict[str, Any]:
    """``clients`` threads posting as fast as answers come; figures over the requests begun after the warm-up."""
    parts = urlsplit(url)
    host = cast(str, parts.hostname)  # always set: ``url`` is a server this run started
    start = time.perf_counter()
    warm_until = start + WARMUP
    stop_at = warm_until + seconds
    cpu0 = time.process_time()
    lock = threading.Lock()
    latencies: list[float] = []
    codes: Counter[int] = Counter()
    last_end = [warm_until]

    def client(worker: int) -> None:
        conn = http.client.HTTPConnection(host, parts.port, timeout=60)
        mine: list[float] = []
        mine_codes: Counter[int] = Counter()
        end = warm_until
        i = 0
        while (t0 := time.perf_counter()) < stop_at:
            payload = body(worker, i, run_id)
            i += 1
            try:
                conn.request("POST", path, body=payload, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(host, parts.port, timeout=60)
                status = 0
            t1 = time.perf_counter()
            if t0 >= warm_until:
                mine.append(t1 - t0)
                mine_codes[status] += 1
                end = t1
        conn.close()
        with lock:
            latencies.extend(mine)
            codes.update(mine_codes)
            last_end[0] = max(last_end[0], end)

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(client, w) for w in range(clients)]
        # Server-side CPU over the measured window: the web processes, and this database's backends.
        time.sleep(max(warm_until - time.perf_counter(), 0))
        pgid = run.procs[server].pid
        web0 = cpu_by_pid(pgids=[pgid])
        pg0 = cpu_by_pid(pids=pg_backend_pids(PG_URL, run.db_name))
        time.sleep(max(stop_at - time.perf_counter(), 0))
        web1 = cpu_by_pid(pgids=[pgid])
        pg1 = cpu_by_pid(pids=pg_backend_pids(PG_URL, run.db_name))
        for f in futures:
            f.result()
    wall = last_end[0] - warm_until
    cpu = time.process_time() - cpu0
    ok = sum(n for code, n in codes.items() if 200 <= code < 300)
    # Requests begun in the window, a few finishing just after: close enough for CPU per request.
    return {
        "ok": ok,
        "codes": dict(codes),
        "seconds": wall,
        "latencies": latencies,
        "client_cpu_s": cpu,
        "client_wall_s": time.perf_counter() - start,
        "web_cpu_s": cpu_delta(web0, web1),
        "pg_cpu_s": cpu_delta(pg0, pg1),
    }


def merge(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    ok = sum(r["ok"] for r in rounds)
    seconds = sum(r["seconds"] for r in rounds)
    latencies = [x for r in rounds for x in r["latencies"]]
    codes: Counter[int] = Counter()
    for r in rounds:
        codes.update(r["codes"])
    cpu = sum(r["client_cpu_s"] for r in rounds)
    n = max(len(latencies), 1)
    wall = sum(r["client_wall_s"] for r in rounds)
    return {
        "requests_per_s": round(ok / seconds, 1) if seconds else 0.0,
        "ok": ok,
        "codes": {str(k): v for k, v in codes.items()},
        "seconds": round(seconds, 2),
        **summary_ms(latencies),
        "client_cpu_cores": round(cpu / wall, 2) if wall else 0.0,
        "client_cpu_ms_per_request": round(cpu * 1000 / n, 3),
        "web_cpu_ms_per_request": round(sum(r["web_cpu_s"] for r in rounds) * 1000 / n, 2),
        "postgres_cpu_ms_per_request": round(sum(r["pg_cpu_s"] for r in rounds) * 1000 / n, 2),
    }


def queries_per_submission(run: Run, agent_token: str) -> dict[str, Any]:
    """One submission in-process (Django test client) with the queries it runs, for the explanation."""
    os.environ.update(run.env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "acme_integration.settings"
    import django

    django.setup()
    from django.db import connection, connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {agent_token}")
    try:
        with CaptureQueriesContext(connection) as ctx:
            response = client.post(
                "/api/v1/proposals/", body(99, 0, "inproc"), content_type="application/json"
            )
        return {
            "status": response.status_code,
            "queries": len(ctx.captured_queries),
            "sql": [q["sql"][:160] for q in ctx.captured_queries],
        }
    finally:
        connections.close_all()


def main() -> dict[str, Any]:
    with Run("intake") as run:
        started = time.monotonic()
        migrate_s = run.migrate()
        party = run.party()
        subprocess_env = {**run.env, "DJANGO_SETTINGS_MODULE": "bench.bare.settings"}
        import subprocess

        subprocess.run(  # noqa: S603
            [PY, "-m", "bench.bare.create_table"],
            cwd=run.env["PYTHONPATH"],
            env=subprocess_env,
            check=True,
            timeout=120,
        )
        product_url = run.start_gunicorn(
            "web", "acme_integration.wsgi", settings="acme_integration.settings", probe="/api/v1/tools/"
        )
        bare_url = run.start_gunicorn(
            "web-bare", "bench.bare.wsgi", settings="bench.bare.settings", probe="/rows/"
        )
        targets = {
            "bare": (bare_url, "/rows/", {"Content-Type": "application/json"}),
            "bare_audited": (
                bare_url,
                "/rows/audited/",
                {"Content-Type": "application/json", "Authorization": f"Bearer {BARE_TOKEN}"},
            ),
            # The floor: the product's own SQL for a submission, sent by hand (bench/bare/views.FloorView).
            "floor": (
                bare_url,
                "/rows/floor/",
                {"Content-Type": "application/json", "Authorization": f"Bearer {party['agent']}"},
            ),
            "product": (
                product_url,
                "/api/v1/proposals/",
                {"Content-Type": "application/json", "Authorization": f"Bearer {party['agent']}"},
            ),
        }
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
        for round_no in range(ROUNDS):
            for name, (url, path, headers) in targets.items():
                server = "web" if name == "product" else "web-bare"
                run.check_alive(server)
                rounds[name].append(
                    load(url, path, headers, SECONDS / ROUNDS, f"{name}{round_no}", run=run, server=server)
                )
        figures = {name: merge(rs) for name, rs in rounds.items()}
        # One client, one request at a time: what a single request costs when nothing queues (the floor of
        # an approval request in bench 2's reading of the commit-latency target).
        single = {}
        for name in ("bare", "bare_audited", "floor", "product"):
            url, path, headers = targets[name]
            server = "web" if name == "product" else "web-bare"
            single[name] = merge(
                [
                    load(
                        url,
                        path,
                        headers,
                        SINGLE_SECONDS,
                        f"{name}-single",
                        run=run,
                        server=server,
                        clients=1,
                    )
                ]
            )
        run.stop("web")
        run.stop("web-bare")
        memory = {"web": peak_memory(run, "web"), "web_bare": peak_memory(run, "web-bare")}
        inproc = queries_per_submission(run, party["agent"])
        elapsed = time.monotonic() - started

    r = ratio(figures["product"]["requests_per_s"], figures["bare"]["requests_per_s"])
    reference = ratio(figures["product"]["requests_per_s"], figures["bare_audited"]["requests_per_s"])
    floor = ratio(figures["floor"]["requests_per_s"], figures["bare"]["requests_per_s"])
    table(
        f"Intake: POST under gunicorn -w 2 --threads 4, {CLIENTS} keep-alive clients, {SECONDS:.0f} s each "
        f"(alternating rounds)",
        [
            "endpoint",
            "req/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "non-2xx",
            "web CPU ms/req",
            "PG CPU ms/req",
            "client CPU ms/req",
            "client cores",
        ],
        [
            [
                name,
                f["requests_per_s"],
                f["p50_ms"],
                f["p95_ms"],
                f["p99_ms"],
                sum(v for k, v in f["codes"].items() if not k.startswith("2")),
                f["web_cpu_ms_per_request"],
                f["postgres_cpu_ms_per_request"],
                f["client_cpu_ms_per_request"],
                f["client_cpu_cores"],
            ]
            for name, f in figures.items()
        ],
    )
    table(
        "Intake ratio and memory",
        ["figure", "value", "target", "met"],
        [
            ["product / bare req/s", r, f">= {TARGET}", r >= TARGET],
            [
                "product p50 / bare p50",
                ratio(figures["product"]["p50_ms"], figures["bare"]["p50_ms"]),
                "",
                "",
            ],
            ["reference: product / bare_audited req/s (token + row + audit row)", reference, "", ""],
            [
                "reference: bare_audited / bare req/s",
                ratio(figures["bare_audited"]["requests_per_s"], figures["bare"]["requests_per_s"]),
                "",
                "",
            ],
            [
                "floor: the product's SQL sent by hand / bare req/s (the most a submission could reach)",
                floor,
                "",
                "",
            ],
            [
                "product / floor req/s (what the gateway's Python costs)",
                ratio(figures["product"]["requests_per_s"], figures["floor"]["requests_per_s"]),
                "",
                "",
            ],
            ["queries per submission (in-process)", inproc["queries"], "", ""],
            ["web worker peak RSS MiB (product)", memory["web"]["children_peak_rss_mib"], "", ""],
            ["web worker peak RSS MiB (bare)", memory["web_bare"]["children_peak_rss_mib"], "", ""],
        ],
    )
    table(
        f"One client, one request at a time ({SINGLE_SECONDS:.0f} s each)",
        ["endpoint", "requests", "p50 ms", "p95 ms", "web CPU ms/req", "PG CPU ms/req"],
        [
            [
                name,
                f["ok"],
                f["p50_ms"],
                f["p95_ms"],
                f["web_cpu_ms_per_request"],
                f["postgres_cpu_ms_per_request"],
            ]
            for name, f in single.items()
        ],
    )
    result = {
        "clients": CLIENTS,
        "floor": figures["floor"],
        "floor_ratio": floor,
        "single_client": single,
        "seconds_per_target": SECONDS,
        "gunicorn": "-w 2 --threads 4",
        "product": figures["product"],
        "bare": figures["bare"],
        "ratio": r,
        "target": TARGET,
        "bare_audited": figures["bare_audited"],
        "reference_ratio": reference,
        "met": r >= TARGET,
        "queries_per_submission": inproc,
        "memory": memory,
        "migrate_s": round(migrate_s, 1),
        "elapsed_s": round(elapsed, 1),
    }
    write_results("intake", result)
    return result


if __name__ == "__main__":
    main()
