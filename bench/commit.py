"""Benches 2 and 3 — the commit path against a bare RQ no-op job, in the same run, on the same Redis; and,
as a reference that is not the issue's target, against a bare commit job.

2. Latency, one at a time on an idle worker: approve (``POST .../approve/``) → committed (the
   ``proposal.committed`` audit event's time; the sandbox CRM answers at once), against a no-op job's
   enqueue → finished (RQ's ``ended_at``), on
     * ``rq worker -w rq.SimpleWorker`` (the class AcmeWorker derives from) — the bare baseline,
     * ``manage.py acme_worker`` itself (the no-op job on the product's worker: its own overhead),
     * ``rq worker -w rq.Worker`` (forking, RQ's default) — for the choice of worker class.
   And at 8 reviewers approving at once (``BENCH_INTAKE_CLIENTS``), each waiting for its approval to be
   committed before its next, on one acme_worker: the absolute target "approve → committed p95 < 100 ms"
   (``latency.product_8_clients``; bench/targets.py).
3. Throughput: N approved proposals drained by 1 and 2 acme_workers, against N no-op jobs drained by 1
   and 2 plain SimpleWorkers (and forking Workers). The jobs are queued first and held aside; the workers
   start, register and block on the queue; then every job id is pushed at once. Rate = N / (last job's
   end - first job's start), from RQ's own job timestamps, the same for both.

Reference (not the issue's target): the bare commit job (bench/bare_commit.py) does a commit's irreducible
work with no gateway around it: the product's ``POST tickets.json`` to the same sandbox CRM, then one
autocommitted ``INSERT`` of a receipt-like row (``bench_bare_receipt``, in this run's database), with one
requests session and one psycopg connection per worker process. Timed like the no-op on a plain
SimpleWorker (enqueue → ``ended_at``) against the product's approved → committed (the ``proposal.approved``
and ``proposal.committed`` audit events: the approve request's response and its client are left out), and
drained like the no-op by 1 and 2 SimpleWorkers against the product's drains. The ratios say how much of
the gap is the outside call and the database write, and how much the gateway's own machinery.

Floor (not a baseline, a bound): the floor commit job (bench/floor_commit.py) sends what the product's own
commit of a ``crm.create_ticket`` proposal sends — its statements on the product's tables, the breaker's two
Lua scripts, the CRM call — by hand, with none of the gateway's Python, on proposals approved through the
API. Timed and drained like the no-op on plain SimpleWorkers. Its ratios to the no-op are the most any
implementation of this commit can reach on this stack; the product's ratio to it is what the gateway's
Python costs.

Every worker listens on two queues (acme_worker's "commits" and "default"), with RQ's scheduler.

  BENCH_LATENCY_N     approvals (and no-op jobs per worker kind, and bare commit jobs) timed one by one (default 60);
                      as many again approved by BENCH_INTAKE_CLIENTS (default 8) reviewers at once
  BENCH_THROUGHPUT_N  jobs per drain (default 300)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import os

from bench.common import (
    REDIS_URL,
    Run,
    peak_memory,
    ratio,
    summary_ms,
    table,
    wait_for,
    wait_workers_idle,
    write_results,
)
from bench.intake import CLIENTS, body

LATENCY_N = int(os.environ.get("BENCH_LATENCY_N", "60"))
THROUGHPUT_N = int(os.environ.get("BENCH_THROUGHPUT_N", "300"))
WARMUP = 5
POLL = 0.002
LATENCY_TARGET = 2.0  # product p50 <= 2x bare
THROUGHPUT_TARGET = 0.5  # product >= 0.5x bare
BARE_QUEUES = ["bench-a", "bench-b"]
SIMPLE, FORKING = "rq.worker.SimpleWorker", "rq.worker.Worker"


def _epoch(value: datetime | None) -> float:
    if value is None:
        return float("nan")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


class Api:
    def __init__(self, url: str, party: dict[str, str]) -> None:
        import requests

        self.url = url
        self.party = party
        self.sessions: dict[str, Any] = {}
        self.requests = requests

    def _session(self, who: str) -> Any:
        import threading

        key = f"{who}-{threading.get_ident()}"
        if key not in self.sessions:
            session = self.requests.Session()
            session.headers["Authorization"] = f"Bearer {self.party[who]}"
            self.sessions[key] = session
        return self.sessions[key]

    def submit(self, i: int, tag: str) -> str:
        r = self._session("agent").post(
            f"{self.url}/api/v1/proposals/",
            data=body(0, i, tag),
            timeout=60,
            headers={"Content-Type": "application/json"},
        )
        if r.status_code != 201:
            raise RuntimeError(f"submit: {r.status_code} {r.text[:300]}")
        return str(r.json()["id"])

    def approve(self, pk: str) -> None:
        r = self._session("reviewer").post(f"{self.url}/api/v1/proposals/{pk}/approve/", json={}, timeout=60)
        if r.status_code != 202:
            raise RuntimeError(f"approve: {r.status_code} {r.text[:300]}")

    def submit_many(self, n: int, tag: str) -> list[str]:
        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(lambda i: self.submit(i, tag), range(n)))

    def approve_many(self, ids: list[str]) -> None:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(self.approve, ids))


# --- 2. latency ---------------------------------------------------------------------------------------------
def _approve_and_wait(api: Api, pg: Any, pk: str) -> tuple[float, ...]:
    """Approve ``pk`` and wait until it is committed: (start, approve → committed, the approve request,
    approved → commit_started, commit_started → committed, approved → committed), in seconds."""
    t0 = time.time()
    api.approve(pk)
    t_http = time.time()

    def committed() -> bool:
        row = pg.execute("SELECT status FROM approvals_proposal WHERE id = %s", [pk]).fetchone()
        if row and row[0] not in ("approved", "committing", "committed"):
            raise RuntimeError(f"proposal {pk} ended {row[0]}")
        return bool(row and row[0] == "committed")

    wait_for(committed, timeout=60, interval=POLL, what=f"commit of {pk}")
    events = dict(
        pg.execute(
            "SELECT action, extract(epoch FROM at)::float8 FROM audit_auditevent WHERE subject_id = %s "
            "AND action IN ('proposal.approved', 'proposal.commit_started', 'proposal.committed')",
            [pk],
        ).fetchall()
    )
    return (
        t0,
        events["proposal.committed"] - t0,
        t_http - t0,
        events["proposal.commit_started"] - events["proposal.approved"],
        events["proposal.committed"] - events["proposal.commit_started"],
        events["proposal.committed"] - events["proposal.approved"],
    )


def _latency_summary(timings: list[tuple[float, ...]]) -> dict[str, Any]:
    """The figures of ``_approve_and_wait``'s timings, in the order they started, after the warm-up."""
    kept = sorted(timings)[WARMUP:]
    return {
        **summary_ms([t[1] for t in kept]),
        "approve_http": summary_ms([t[2] for t in kept]),
        "approved_to_commit_started": summary_ms([t[3] for t in kept]),
        "commit_started_to_committed": summary_ms([t[4] for t in kept]),
        "approved_to_committed": summary_ms([t[5] for t in kept]),
    }


def product_latency(api: Api, pg: Any, ids: list[str]) -> dict[str, Any]:
    """Approve each proposal and wait for it to be committed before the next."""
    return _latency_summary([_approve_and_wait(api, pg, pk) for pk in ids])


def product_latency_clients(api: Api, database_url: str, ids: list[str], clients: int) -> dict[str, Any]:
    """``clients`` reviewers at once, each approving its share of ``ids`` and waiting for each to be
    committed before its next (the issue's "approve → committed p95 at 8 clients"), on the worker(s) that
    run. Each client reads the database on a connection of its own."""
    import psycopg

    def client(share: list[str]) -> list[tuple[float, ...]]:
        with psycopg.connect(database_url, autocommit=True) as pg:
            return [_approve_and_wait(api, pg, pk) for pk in share]

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, [ids[i::clients] for i in range(clients)]))
    return {"clients": clients, **_latency_summary([t for share in results for t in share])}


def _no_args(i: int) -> tuple[Any, ...]:
    return ()


def _finished(job: Any) -> bool:
    status = job.get_status(refresh=True)
    if status == "failed":
        raise RuntimeError(f"job {job.func_name} failed:\n{job.exc_info}")
    return bool(status == "finished")


def job_latency(
    conn: Any,
    queue_name: str,
    n: int,
    func: Callable[..., Any] | None = None,
    args: Callable[[int], tuple[Any, ...]] = _no_args,
) -> dict[str, Any]:
    """Enqueue → ``ended_at`` of ``func(*args(i))`` (the no-op by default), one job at a time."""
    from rq import Queue

    from bench.noop import noop

    queue = Queue(queue_name, connection=conn)
    total = []
    for i in range(n + WARMUP):
        t0 = time.time()
        job = queue.enqueue(func or noop, args=args(i), result_ttl=3600)
        wait_for(
            lambda job=job: _finished(job),
            timeout=60,
            interval=POLL,
            what=f"{job.func_name} job on {queue_name}",
        )
        job.refresh()
        total.append(_epoch(job.ended_at) - t0)
    return summary_ms(total[WARMUP:])


# --- 3. throughput --------------------------------------------------------------------------------------------
def held_drain(
    run: Run,
    conn: Any,
    queue_key: str,
    start_workers: Callable[[], list[str]],
    n: int,
    done: Callable[[], bool],
) -> dict[str, Any]:
    """The ``n`` jobs waiting on ``queue_key`` are set aside, the workers started and left idle, then all the
    ids pushed back at once. Returns the drain's rate from the jobs' own start and end times."""
    from rq.job import Job

    wait_for(lambda: conn.llen(queue_key) >= n, timeout=60, what=f"{n} jobs on {queue_key}")
    job_ids = [j.decode() for j in conn.lrange(queue_key, 0, -1)]
    held = f"bench:held:{queue_key}"
    conn.rename(queue_key, held)
    names = start_workers()
    try:
        wait_workers_idle(conn, names, timeout=90)
        for name in names:
            run.check_alive(name)
        pushed = time.time()
        with conn.pipeline() as pipe:  # one transaction: every blocked worker wakes to a full queue
            pipe.rpush(queue_key, *job_ids)
            pipe.delete(held)
            pipe.execute()
        wait_for(done, timeout=180, interval=0.05, what=f"drain of {n} jobs")
        jobs = [j for j in Job.fetch_many(job_ids, connection=conn) if j is not None]
        starts = [_epoch(j.started_at) for j in jobs]
        ends = [_epoch(j.ended_at) for j in jobs]
        statuses: dict[str, int] = {}
        for j in jobs:
            status = j.get_status(refresh=False)
            key = str(getattr(status, "value", status))
            statuses[key] = statuses.get(key, 0) + 1
        span = max(ends) - min(starts)
        return {
            "jobs": len(job_ids),
            "workers": len(names),
            "span_s": round(span, 3),
            "jobs_per_s": round(len(job_ids) / span, 1) if span > 0 else float("nan"),
            "first_start_after_push_ms": round((min(starts) - pushed) * 1000, 1),
            "job_statuses": statuses,
            "job_time": summary_ms([e - s for s, e in zip(starts, ends, strict=True)]),
        }
    finally:
        for name in names:
            run.stop(name)


def product_drain(run: Run, api: Api, pg: Any, conn: Any, workers: int) -> dict[str, Any]:
    from rq import Queue

    tag = f"thr{workers}"
    started = time.monotonic()
    ids = api.submit_many(THROUGHPUT_N, tag)
    api.approve_many(ids)
    prepare_s = time.monotonic() - started

    def start() -> list[str]:
        names = [f"acme-{tag}-{i}" for i in range(workers)]
        for name in names:
            run.start_acme_worker(name)
        return names

    def done() -> bool:
        row = pg.execute(
            "SELECT count(*) FROM approvals_proposal WHERE id = ANY(%s::uuid[]) AND status IN "
            "('committed', 'failed', 'stale')",
            [ids],
        ).fetchone()
        return bool(row and row[0] >= len(ids))

    result = held_drain(run, conn, Queue("commits", connection=conn).key, start, THROUGHPUT_N, done)
    committed = pg.execute(
        "SELECT count(*) FROM approvals_proposal WHERE id = ANY(%s::uuid[]) AND status = 'committed'", [ids]
    ).fetchone()[0]
    return {**result, "committed": committed, "submit_and_approve_s": round(prepare_s, 1)}


def bare_drain(
    run: Run,
    conn: Any,
    workers: int,
    worker_class: str,
    kind: str = "",
    func: Callable[..., Any] | None = None,
    args: Callable[[int], tuple[Any, ...]] = _no_args,
) -> dict[str, Any]:
    """THROUGHPUT_N jobs ``func(*args(i))`` (the no-op by default) drained by plain rq workers."""
    from rq import Queue
    from rq.registry import FailedJobRegistry, FinishedJobRegistry

    from bench.noop import noop

    kind = kind or ("fork" if worker_class == FORKING else "simple")
    queue = Queue(BARE_QUEUES[0], connection=conn)
    registry, failed = FinishedJobRegistry(queue=queue), FailedJobRegistry(queue=queue)
    before = registry.count + failed.count
    queue.enqueue_many(
        [Queue.prepare_data(func or noop, args=args(i), result_ttl=3600) for i in range(THROUGHPUT_N)]
    )

    def start() -> list[str]:
        names = [f"bare-{kind}-{workers}-{i}" for i in range(workers)]
        for name in names:
            run.start_rq_worker(name, worker_class, BARE_QUEUES)
        return names

    return held_drain(
        run,
        conn,
        queue.key,
        start,
        THROUGHPUT_N,
        lambda: registry.count + failed.count >= before + THROUGHPUT_N,
    )


def approved_for_floor(api: Api, conn: Any, n: int, tag: str) -> list[str]:
    """``n`` proposals submitted and approved through the API while no acme_worker runs, their commit jobs
    then dropped from the product's queue: approved proposals for the floor commit job to commit."""
    from rq import Queue

    ids = api.submit_many(n, tag)
    api.approve_many(ids)
    conn.delete(Queue("commits", connection=conn).key)
    return ids


def main() -> dict[str, Any]:
    import psycopg
    import redis

    from bench.bare_commit import bare_commit, create_table
    from bench.floor_commit import floor_commit

    conn = redis.Redis.from_url(REDIS_URL)
    with Run("commit") as run:
        started = time.monotonic()
        run.migrate()
        party = run.party()
        run.start_sandbox()
        create_table(run.database_url)
        crm, db = run.env["CRM_BASE_URL"], run.database_url

        def commit_args(tag: str) -> Callable[[int], tuple[Any, ...]]:
            return lambda i: (crm, db, tag, i)

        def floor_args(ids: list[str]) -> Callable[[int], tuple[Any, ...]]:
            return lambda i: (crm, db, REDIS_URL, ids[i])

        url = run.start_gunicorn(
            "web", "acme_integration.wsgi", settings="acme_integration.settings", probe="/api/v1/tools/"
        )
        api = Api(url, party)
        with psycopg.connect(run.database_url, autocommit=True) as pg:
            # --- 2. latency
            latency: dict[str, Any] = {}
            run.start_acme_worker("acme-latency")
            wait_workers_idle(conn, ["acme-latency"])
            ids = api.submit_many(LATENCY_N + WARMUP, "lat")
            latency["product"] = product_latency(api, pg, ids)
            # The same at CLIENTS reviewers approving at once (issue 21's absolute target), on one worker, then
            # on one worker per core (the commits of eight approvals at once queue on one worker).
            ids = api.submit_many(LATENCY_N + WARMUP, "lat-clients")
            latency["product_8_clients"] = product_latency_clients(api, run.database_url, ids, CLIENTS)
            per_core = [f"acme-latency-{i}" for i in range(1, os.cpu_count() or 1)]
            for name in per_core:
                run.start_acme_worker(name)
            wait_workers_idle(conn, ["acme-latency", *per_core])
            ids = api.submit_many(LATENCY_N + WARMUP, "lat-clients-cores")
            latency["product_8_clients_per_core"] = {
                "workers": 1 + len(per_core),
                **product_latency_clients(api, run.database_url, ids, CLIENTS),
            }
            for name in per_core:
                run.stop(name)
            latency["noop_on_acme_worker"] = job_latency(conn, "commits", LATENCY_N)
            run.stop("acme-latency")
            for kind, cls in (("bare_simple", SIMPLE), ("bare_forking", FORKING)):
                name = f"lat-{kind}"
                run.start_rq_worker(name, cls, BARE_QUEUES)
                wait_workers_idle(conn, [name])
                latency[kind] = job_latency(conn, BARE_QUEUES[0], LATENCY_N)
                run.stop(name)
            run.start_rq_worker("lat-bare_commit", SIMPLE, BARE_QUEUES)  # reference, not the target
            wait_workers_idle(conn, ["lat-bare_commit"])
            latency["bare_commit_job"] = job_latency(
                conn, BARE_QUEUES[0], LATENCY_N, bare_commit, commit_args("lat")
            )
            run.stop("lat-bare_commit")
            # The floor: the product's own commit, sent by hand (bench/floor_commit.py), on a SimpleWorker.
            floor_ids = approved_for_floor(api, conn, LATENCY_N + WARMUP, "lat-floor")
            run.start_rq_worker("lat-floor_commit", SIMPLE, BARE_QUEUES)
            wait_workers_idle(conn, ["lat-floor_commit"])
            latency["floor_commit_job"] = job_latency(
                conn, BARE_QUEUES[0], LATENCY_N, floor_commit, floor_args(floor_ids)
            )
            run.stop("lat-floor_commit")
            # --- 3. throughput
            throughput: dict[str, Any] = {}
            for workers in (1, 2):
                throughput[f"product_{workers}"] = product_drain(run, api, pg, conn, workers)
                throughput[f"bare_simple_{workers}"] = bare_drain(run, conn, workers, SIMPLE)
                throughput[f"bare_commit_{workers}"] = bare_drain(  # reference, not the target
                    run, conn, workers, SIMPLE, "commit", bare_commit, commit_args(f"thr{workers}")
                )
                floor_ids = approved_for_floor(api, conn, THROUGHPUT_N, f"thr-floor{workers}")
                throughput[f"floor_commit_{workers}"] = bare_drain(
                    run, conn, workers, SIMPLE, "floor", floor_commit, floor_args(floor_ids)
                )
            # How a tenant's commits scale past the cores (issue 21: 1 -> 2 -> 4 workers), product and floor only.
            throughput["product_4"] = product_drain(run, api, pg, conn, 4)
            floor_ids = approved_for_floor(api, conn, THROUGHPUT_N, "thr-floor4")
            throughput["floor_commit_4"] = bare_drain(
                run, conn, 4, SIMPLE, "floor", floor_commit, floor_args(floor_ids)
            )
            throughput["bare_forking_1"] = bare_drain(run, conn, 1, FORKING)
            throughput["bare_forking_2"] = bare_drain(run, conn, 2, FORKING)
        run.stop("web")
        acme_names = [n for n in run.memory if n.startswith("acme-")]
        memory = {
            "acme_worker": peak_memory(run, *acme_names),
            "web": peak_memory(run, "web"),
            "bare_simple_worker": peak_memory(run, *[n for n in run.memory if "simple" in n]),
            "bare_commit_worker": peak_memory(
                run, *[n for n in run.memory if "commit" in n and "floor" not in n]
            ),
        }
        elapsed = time.monotonic() - started

    lat_ratio = ratio(latency["product"]["p50_ms"], latency["bare_simple"]["p50_ms"])
    thr_ratios = {
        w: ratio(throughput[f"product_{w}"]["jobs_per_s"], throughput[f"bare_simple_{w}"]["jobs_per_s"])
        for w in (1, 2)
    }
    reference: dict[str, Any] = {  # not the targets: the product against the bare commit job
        "approved_to_committed_p50": ratio(
            latency["product"]["approved_to_committed"]["p50_ms"], latency["bare_commit_job"]["p50_ms"]
        ),
        "throughput": {
            str(w): ratio(
                throughput[f"product_{w}"]["jobs_per_s"], throughput[f"bare_commit_{w}"]["jobs_per_s"]
            )
            for w in (1, 2)
        },
    }
    # The floors: what the product's own commit costs when sent by hand, against the bare no-op job.
    # Latency: an approval needs at least one HTTP write request (the bare insert, one client, from bench 1
    # when it ran in the same `make bench`) before the floor commit job can even be enqueued.
    floor: dict[str, Any] = {
        "commit_job_p50_ms": latency["floor_commit_job"]["p50_ms"],
        "commit_job_p50_over_noop": ratio(
            latency["floor_commit_job"]["p50_ms"], latency["bare_simple"]["p50_ms"]
        ),
        "throughput": {
            str(w): ratio(
                throughput[f"floor_commit_{w}"]["jobs_per_s"], throughput[f"bare_simple_{w}"]["jobs_per_s"]
            )
            for w in (1, 2)
        },
        "product_over_floor_throughput": {
            str(w): ratio(
                throughput[f"product_{w}"]["jobs_per_s"], throughput[f"floor_commit_{w}"]["jobs_per_s"]
            )
            for w in (1, 2, 4)
        },
        # How each side's drain grows with workers: jobs/s with w workers over jobs/s with one.
        "scaling": {
            side: {
                str(w): ratio(throughput[f"{side}_{w}"]["jobs_per_s"], throughput[f"{side}_1"]["jobs_per_s"])
                for w in (2, 4)
            }
            for side in ("product", "floor_commit")
        },
    }
    table(
        f"Commit latency, one at a time ({LATENCY_N} each, after {WARMUP} warm-up)",
        ["path", "p50 ms", "p95 ms", "p99 ms", "max ms"],
        [
            [
                "approve -> committed (product)",
                *[latency["product"][k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")],
            ],
            [
                "  approve HTTP request",
                *[latency["product"]["approve_http"][k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")],
            ],
            [
                "  approved -> commit started",
                *[
                    latency["product"]["approved_to_commit_started"][k]
                    for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")
                ],
            ],
            [
                "  commit started -> committed",
                *[
                    latency["product"]["commit_started_to_committed"][k]
                    for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")
                ],
            ],
            [
                "no-op job, acme_worker",
                *[latency["noop_on_acme_worker"][k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")],
            ],
            [
                "no-op job, rq SimpleWorker (bare)",
                *[latency["bare_simple"][k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")],
            ],
            [
                "no-op job, rq Worker (forking)",
                *[latency["bare_forking"][k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")],
            ],
            ["reference, not the target:", "", "", "", ""],
            [
                "  approved -> committed (product)",
                *[
                    latency["product"]["approved_to_committed"][k]
                    for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")
                ],
            ],
            [
                "  bare commit job, rq SimpleWorker",
                *[latency["bare_commit_job"][k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")],
            ],
            [
                "floor: the product's commit sent by hand, rq SimpleWorker",
                *[latency["floor_commit_job"][k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")],
            ],
        ],
    )
    table(
        f"Commit throughput, {THROUGHPUT_N} jobs per drain",
        ["drain", "workers", "jobs/s", "span s", "job p50 ms", "done"],
        [
            [
                name.rsplit("_", 1)[0]
                + (
                    " (reference, not the target)"
                    if name.startswith("bare_commit")
                    else " (floor: the product's commit by hand)"
                    if name.startswith("floor")
                    else ""
                ),
                r["workers"],
                r["jobs_per_s"],
                r["span_s"],
                r["job_time"]["p50_ms"],
                r.get("committed", r["job_statuses"].get("finished", 0)),
            ]
            for name, r in throughput.items()
        ],
    )
    table(
        "Commit targets and memory",
        ["figure", "value", "target", "met"],
        [
            [
                "latency p50 product / bare SimpleWorker",
                lat_ratio,
                f"<= {LATENCY_TARGET}",
                lat_ratio <= LATENCY_TARGET,
            ],
            [
                "throughput 1 worker product / bare",
                thr_ratios[1],
                f">= {THROUGHPUT_TARGET}",
                thr_ratios[1] >= THROUGHPUT_TARGET,
            ],
            [
                "throughput 2 workers product / bare",
                thr_ratios[2],
                f">= {THROUGHPUT_TARGET}",
                thr_ratios[2] >= THROUGHPUT_TARGET,
            ],
            [
                "forking / simple no-op p50 latency",
                ratio(latency["bare_forking"]["p50_ms"], latency["bare_simple"]["p50_ms"]),
                "",
                "",
            ],
            [
                "reference, not the target: approved -> committed p50 product / bare commit job",
                reference["approved_to_committed_p50"],
                "",
                "",
            ],
            [
                "reference, not the target: throughput 1 worker product / bare commit job",
                reference["throughput"]["1"],
                "",
                "",
            ],
            [
                "reference, not the target: throughput 2 workers product / bare commit job",
                reference["throughput"]["2"],
                "",
                "",
            ],
            ["floor: commit job p50 / no-op p50 (SimpleWorker)", floor["commit_job_p50_over_noop"], "", ""],
            ["floor: throughput 1 worker floor job / no-op", floor["throughput"]["1"], "", ""],
            ["floor: throughput 2 workers floor job / no-op", floor["throughput"]["2"], "", ""],
            ["throughput 1 worker product / floor job", floor["product_over_floor_throughput"]["1"], "", ""],
            ["throughput 2 workers product / floor job", floor["product_over_floor_throughput"]["2"], "", ""],
            ["throughput 4 workers product / floor job", floor["product_over_floor_throughput"]["4"], "", ""],
            [
                "scaling 1 -> 2 -> 4 workers, product (x the 1-worker rate)",
                f"1 / {floor['scaling']['product']['2']} / {floor['scaling']['product']['4']}",
                "",
                "",
            ],
            [
                "scaling 1 -> 2 -> 4 workers, floor job (x the 1-worker rate)",
                f"1 / {floor['scaling']['floor_commit']['2']} / {floor['scaling']['floor_commit']['4']}",
                "",
                "",
            ],
            ["acme_worker peak RSS MiB", memory["acme_worker"]["leader_peak_rss_mib"], "", ""],
            [
                "acme_worker scheduler (child) peak RSS MiB",
                memory["acme_worker"]["children_peak_rss_mib"],
                "",
                "",
            ],
            ["bare SimpleWorker peak RSS MiB", memory["bare_simple_worker"]["leader_peak_rss_mib"], "", ""],
            [
                "bare commit job SimpleWorker peak RSS MiB",
                memory["bare_commit_worker"]["leader_peak_rss_mib"],
                "",
                "",
            ],
            ["web worker peak RSS MiB (during approvals)", memory["web"]["children_peak_rss_mib"], "", ""],
        ],
    )
    result = {
        "latency": latency,
        "throughput": throughput,
        "latency_ratio_p50": lat_ratio,
        "latency_target": LATENCY_TARGET,
        "latency_met": lat_ratio <= LATENCY_TARGET,
        "throughput_ratio": {str(k): v for k, v in thr_ratios.items()},
        "throughput_target": THROUGHPUT_TARGET,
        "throughput_met": all(v >= THROUGHPUT_TARGET for v in thr_ratios.values()),
        "reference_ratios": reference,
        "floor": floor,
        "memory": memory,
        "latency_n": LATENCY_N,
        "throughput_n": THROUGHPUT_N,
        "elapsed_s": round(elapsed, 1),
    }
    write_results("commit", result)
    return result


if __name__ == "__main__":
    main()
