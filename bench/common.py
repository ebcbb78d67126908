"""What every benchmark needs: a fresh PostgreSQL database and a flushed Redis db of its own, processes
(gunicorn, acme_worker, plain rq workers, the sandbox) that are always stopped, statistics, tables, JSON.

Borrows the ideas of tests/e2e/stack.py (processes in their own session, killed by process group; a
database created per run and dropped with FORCE) but not its code: the benches need other knobs (two
WSGI apps, plain rq workers, memory readings) and must not break when the test harness changes.

Environment:
  BENCH_PG_URL     PostgreSQL server to create the per-run database on (default postgres@127.0.0.1:5432)
  BENCH_REDIS_URL  Redis server (default redis://127.0.0.1:6379); BENCH_REDIS_DB its db number (default 5: CI uses 9,
                   tests/e2e uses 10-15). The db is flushed at the start and at the end, never FLUSHALL.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
RESULTS = ROOT / "bench" / "results"
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379").rstrip("/")
REDIS_DB = int(os.environ.get("BENCH_REDIS_DB", "5"))
REDIS_URL = f"{REDIS_BASE}/{REDIS_DB}"
SECRET = "bench-only-secret-key-not-for-production-0123456789"  # noqa: S105 (a throwaway database)


# --- signals: a SIGTERM to a bench runs its finally blocks ---------------------------------------------
def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def install_signal_handlers() -> None:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)


# --- small helpers ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Any, *, timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout:.0f}s")


def with_db(url: str, db: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, parts.fragment))


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation; nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 50), 2),
        "p95_ms": round(pct(ms, 95), 2),
        "p99_ms": round(pct(ms, 99), 2),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
        "max_ms": round(max(ms), 2) if ms else float("nan"),
    }


def ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else float("nan")


def table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [
        title,
        "  ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in cells[1:]
    ]
    text = "\n".join(lines)
    print(text + "\n", flush=True)
    return text


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return str(value)


def write_results(name: str, figures: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    figures = {"bench": name, "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(), **figures}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print(f"figures written to {path.relative_to(ROOT)}", flush=True)
    return path


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().splitlines()[0].split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "loadavg_at_write": os.getloadavg(),
    }


# --- memory: VmHWM (peak RSS) of every process of a process group ---------------------------------------
def group_memory(pgid: int) -> list[dict[str, Any]]:
    """Every live process of the group: pid, command, peak and current RSS in MiB."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) != pgid:  # field 5 of stat, after pid, comm, state, ppid
                continue
            status = {
                k: v.strip()
                for k, v in (
                    line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line
                )
            }
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, ValueError, IndexError):
            continue
        found.append(
            {
                "pid": int(entry.name),
                "cmd": cmd[:120],
                "peak_rss_mib": round(int(status.get("VmHWM", "0 kB").split()[0]) / 1024, 1),
                "rss_mib": round(int(status.get("VmRSS", "0 kB").split()[0]) / 1024, 1),
            }
        )
    return sorted(found, key=lambda p: p["pid"])


# --- CPU: seconds of user+system time of a process group, or of one database's PostgreSQL backends ---------
_TICK = os.sysconf("SC_CLK_TCK")


def _proc_cpu(pid: int) -> tuple[int, float] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[2]), (int(fields[11]) + int(fields[12])) / _TICK  # pgrp, utime + stime


def cpu_by_pid(pgids: Iterable[int] = (), pids: Iterable[int] = ()) -> dict[int, float]:
    """CPU seconds so far of every process in the groups ``pgids``, and of the processes ``pids``."""
    groups, wanted = set(pgids), set(pids)
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if not groups and pid not in wanted:
            continue
        got = _proc_cpu(pid)
        if got and (got[0] in groups or pid in wanted):
            found[pid] = got[1]
    return found


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings (a process born in between counts from zero)."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def pg_backend_pids(database_url: str, db_name: str) -> list[int]:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [db_name]
        ).fetchall()
    return [int(r[0]) for r in rows]


# --- the run's database, Redis and processes --------------------------------------------------------------
@dataclass
class Run:
    """One bench's world. Use as a context manager: everything it started is stopped, its database dropped."""

    name: str
    tmp: Path = field(init=False)
    db_name: str = field(init=False)
    env: dict[str, str] = field(init=False)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    memory: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _logs: list[Any] = field(default_factory=list)

    def __enter__(self) -> Run:
        import psycopg
        import redis

        install_signal_handlers()
        self.tmp = Path(tempfile.mkdtemp(prefix=f"acme-bench-{self.name}-"))
        self.db_name = f"acme_bench_{self.name}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        redis.Redis.from_url(REDIS_URL).flushdb()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_SETTINGS"))},
            "DATABASE_URL": self.database_url,
            "REDIS_URL": REDIS_URL,
            # Production-like: DEBUG off (no query log, no debug pages).
            "DEBUG": "false",
            "SECRET_KEY": SECRET,
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            # Plain HTTP on the loopback, as behind a TLS-terminating proxy.
            "SECURE_SSL_REDIRECT": "false",
            "ACME_VAR_DIR": str(self.tmp / "var"),
            # One agent submits for the whole bench: its submission budget (100 at once, then 10 a second)
            # would answer 429 after the first hundred. The bucket's Redis script still runs on every call.
            "ACME_SUBMIT_RATE": "100000",
            "ACME_SUBMIT_BURST": "100000",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": str(ROOT),
        }
        return self

    @property
    def database_url(self) -> str:
        return with_db(PG_URL, self.db_name)

    def __exit__(self, *exc: Any) -> None:
        self.stop_all()
        import psycopg
        import redis

        with contextlib.suppress(Exception):
            redis.Redis.from_url(REDIS_URL).flushdb()
        try:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        except Exception as err:  # never hide the bench's own error behind this one
            print(f"warning: could not drop database {self.db_name}: {err}", file=sys.stderr)
        for close in self._logs:
            with contextlib.suppress(Exception):
                close()
        if os.environ.get("BENCH_KEEP_LOGS"):
            print(f"logs kept in {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- processes ---------------------------------------------------------------------------------------
    def manage(self, *args: str, timeout: float = 300, settings: str = "acme_integration.settings") -> str:
        result = subprocess.run(  # noqa: S603
            [PY, "manage.py", *args],
            cwd=ROOT,
            env={**self.env, "DJANGO_SETTINGS_MODULE": settings},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def spawn(self, name: str, *cmd: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "ab")
        self._logs.append(log.close)
        proc = subprocess.Popen(  # noqa: S603
            list(cmd),
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def log(self, name: str, tail: int = 3000) -> str:
        path = self.tmp / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def check_alive(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{self.log(name)}")

    def stop(self, name: str) -> None:
        """SIGTERM the process group (after reading its peak memory), SIGKILL it if it lingers."""
        proc = self.procs.pop(name, None)
        if proc is None:
            return
        if proc.poll() is None:
            self.memory.setdefault(name, []).extend(
                {**p, "leader": p["pid"] == proc.pid} for p in group_memory(proc.pid)
            )
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        # Children that outlived their leader (a gunicorn worker, an rq scheduler): same group, same fate.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for name in list(self.procs):
            with contextlib.suppress(Exception):
                self.stop(name)

    # --- the pieces --------------------------------------------------------------------------------------
    def migrate(self) -> float:
        started = time.monotonic()
        self.manage("migrate", "--noinput")
        return time.monotonic() - started

    def start_sandbox(self) -> str:
        port = free_port()
        proc = self.spawn("sandbox", PY, "manage.py", "sandbox", "--port", str(port))
        url = f"http://127.0.0.1:{port}"
        self.env["CRM_BASE_URL"] = f"{url}/crm"
        self.env["SLACK_API_URL"] = f"{url}/slack/api"
        wait_http(f"{url}/_sandbox/health", proc)
        return url

    def start_gunicorn(
        self, name: str, app: str, *, settings: str, workers: int = 2, threads: int = 4, probe: str = "/"
    ) -> str:
        port = free_port()
        proc = self.spawn(
            name,
            PY,
            "-m",
            "gunicorn",
            app,
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "--threads",
            str(threads),
            "--timeout",
            "120",
            "--keep-alive",
            "30",
            # gunicorn 27's control socket has one default path for every instance on the machine.
            "--no-control-socket",
            env={"DJANGO_SETTINGS_MODULE": settings, "ACME_PUBLIC_URL": f"http://127.0.0.1:{port}"},
        )
        url = f"http://127.0.0.1:{port}"
        wait_http(url + probe, proc)
        return url

    def start_acme_worker(self, name: str) -> subprocess.Popen:
        return self.spawn(
            name,
            PY,
            "manage.py",
            "acme_worker",
            "--name",
            name,
            env={"DJANGO_SETTINGS_MODULE": "acme_integration.settings"},
        )

    def start_rq_worker(self, name: str, worker_class: str, queues: Sequence[str]) -> subprocess.Popen:
        """A plain ``rq worker`` (no Django) with the scheduler, as acme_worker runs it."""
        rq = str(Path(PY).parent / "rq")
        return self.spawn(
            name,
            rq,
            "worker",
            "-w",
            worker_class,
            "-u",
            REDIS_URL,
            "-n",
            name,
            "--with-scheduler",
            "--logging_level",
            "WARNING",
            *queues,
        )

    def party(self, slug: str = "acme") -> dict[str, str]:
        """A tenant with an agent (every tool) and a reviewer, through the management commands."""
        self.manage("create_tenant", slug, "--name", slug.upper())
        agent = self.manage("create_agent", "--tenant", slug, "--name", "bench-bot", "--tools", "*")
        reviewer = self.manage(
            "create_reviewer",
            "--tenant",
            slug,
            "--username",
            f"{slug}-reviewer",
            "--password",
            "bench-pass-123",
        )
        return {
            "tenant": slug,
            "agent": agent.strip().splitlines()[-1],
            "reviewer": reviewer.strip().splitlines()[-1],
            "reviewer_username": f"{slug}-reviewer",
        }


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            requests.get(url, timeout=2, allow_redirects=False)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def wait_workers_idle(connection: Any, names: Sequence[str], timeout: float = 60) -> None:
    """Until every named rq worker is registered and blocked waiting for a job."""
    from rq import Worker

    def idle() -> bool:
        states = {w.name: w.get_state() for w in Worker.all(connection=connection)}
        return all(states.get(n) == "idle" for n in names)

    wait_for(idle, timeout=timeout, what=f"workers {', '.join(names)} idle")
    time.sleep(0.3)  # from "idle" to inside BLPOP/BLMOVE


def peak_memory(run: Run, *names: str) -> dict[str, float]:
    """The highest peak RSS (VmHWM, read just before the process was stopped) among the named processes'
    groups, in MiB, split into the group leaders (gunicorn's arbiter, the worker) and their children
    (gunicorn's workers, rq's scheduler or work horse)."""
    leader = child = 0.0
    for name, procs in run.memory.items():
        if name not in names:
            continue
        for p in procs:
            if p["leader"]:
                leader = max(leader, p["peak_rss_mib"])
            else:
                child = max(child, p["peak_rss_mib"])
    return {"leader_peak_rss_mib": leader, "children_peak_rss_mib": child}
