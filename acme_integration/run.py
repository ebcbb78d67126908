"""`make run`: one command that brings the whole product up on a laptop, and Ctrl-C takes it down.

    python -m acme_integration.run [--web 127.0.0.1:8000] [--sandbox-port 8765]

1. With ``REDIS_URL`` unset, start the embedded Redis (acme_integration.embedded_redis) and hand its URL to
   every child, so all processes share one server. We stop it on exit only if we started it.
2. ``migrate --noinput`` and ``seed_demo`` (its output, with the demo credentials and agent token, is shown
   in the banner).
3. Start the sandbox CRM/Slack, one ``acme_worker`` and the web app, each in its own process group (so a
   terminal's Ctrl-C reaches only us and we stop the children in order, and so a child's own children
   are stopped with it), with their output prefixed and forwarded.
4. Wait. On SIGINT/SIGTERM stop everything and exit 0; if any child exits on its own, stop the rest and
   exit non-zero. A second Ctrl-C while stopping kills what is left at once.

Standard library only (plus the project's settings module for its paths), so it works the same wherever
``make run`` does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_TIMEOUT = 10.0  # seconds a child gets after SIGTERM before SIGKILL
READY_TIMEOUT = 60.0  # seconds to wait for the web app and the sandbox to accept connections

_print_lock = threading.Lock()


def say(line: str = "") -> None:
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


@dataclass
class Child:
    name: str
    argv: list[str]
    proc: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = field(default=None, repr=False)

    def start(self, env: dict[str, str], width: int) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 (our own fixed commands)
            self.argv,
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        prefix = f"[{self.name:<{width}}] "
        self.reader = threading.Thread(target=_forward, args=(self.proc, prefix), daemon=True)
        self.reader.start()

    def signal_group(self, signum: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def _forward(proc: subprocess.Popen[bytes], prefix: str) -> None:
    assert proc.stdout is not None
    for raw in iter(proc.stdout.readline, b""):
        say(prefix + raw.decode("utf-8", errors="replace").rstrip("\n"))
    proc.stdout.close()


def manage(*args: str) -> list[str]:
    return [sys.executable, str(BASE_DIR / "manage.py"), *args]


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return (host or "127.0.0.1"), int(port)


class Supervisor:
    def __init__(self, children: list[Child], env: dict[str, str]) -> None:
        self.children = children
        self.env = env
        self.stop_requested = threading.Event()
        self.signals_seen = 0

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.signals_seen += 1
        if self.signals_seen == 1:
            say(f"\n[run] {signal.Signals(signum).name}: stopping everything (again to kill at once) ...")
            self.stop_requested.set()
        else:
            for child in self.children:
                child.signal_group(signal.SIGKILL)

    def start_all(self) -> None:
        width = max(len(c.name) for c in self.children)
        for child in self.children:
            child.start(self.env, width)

    def first_dead(self) -> Child | None:
        for child in self.children:
            if child.proc is not None and child.proc.poll() is not None:
                return child
        return None

    def wait_until(self, ready: list[tuple[str, int]], timeout: float) -> bool:
        """Wait until every (host, port) accepts connections; False if a child died or we were stopped."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.stop_requested.is_set() or self.first_dead() is not None:
                return False
            if all(port_open(host, port) for host, port in ready):
                return True
            time.sleep(0.2)
        return False

    def stop_all(self) -> None:
        """SIGTERM every child's process group (web first, sandbox last), then SIGKILL after a timeout."""
        for child in reversed(self.children):
            if child.proc is not None and child.proc.poll() is None:
                child.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in reversed(self.children):
            if child.proc is None:
                continue
            try:
                child.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"[run] {child.name} did not stop in {STOP_TIMEOUT:.0f}s; killing it")
            # Kill whatever is left in the group (the child, or grandchildren it left behind).
            child.signal_group(signal.SIGKILL)
            child.proc.wait()
        for child in self.children:
            if child.reader is not None:
                child.reader.join(timeout=2)


def banner(seed_output: str, web: str, sandbox_port: int, redis_url: str) -> str:
    lines = [line for line in seed_output.splitlines() if line.strip()]
    # seed_demo prints the agent token alone on its last line, and a "reviewer API token: ..." line.
    token = lines[-1].strip() if lines else "<agent token>"
    reviewer_token = next(
        (line.split(":", 1)[1].strip() for line in lines if line.lower().startswith("reviewer api token:")),
        "<reviewer token>",
    )
    base = f"http://{web}"
    rule = "=" * 78
    return "\n".join(
        [
            rule,
            " ACME Integration Gateway is running",
            "",
            f"   Reviewer inbox   {base}/",
            f"   Django admin     {base}/admin/",
            f"   API docs         {base}/api/v1/docs/",
            f"   Sandbox CRM      http://127.0.0.1:{sandbox_port}/crm/   Slack: /slack/api/",
            f"   Redis            {redis_url}",
            "",
            " Demo credentials (from `manage.py seed_demo`):",
            *(f"   {line}" for line in lines),
            "",
            " Try it:",
            f"   export TOKEN={token} REVIEWER_TOKEN={reviewer_token}",
            f'   curl -s {base}/api/v1/tools/ -H "Authorization: Bearer $TOKEN"',
            f'   curl -s -X POST {base}/api/v1/proposals/ -H "Authorization: Bearer $TOKEN" \\',
            '        -H "Content-Type: application/json" -H "Idempotency-Key: demo-1" \\',
            '        -d \'{"tool": "crm.create_ticket", "args": {"subject": "Printer on fire",'
            ' "description": "Floor 3 printer is smoking", "priority": "high"}}\'',
            f'   curl -s -X POST {base}/api/v1/proposals/<id>/approve/ -H "Authorization: Bearer $REVIEWER_TOKEN" \\',
            "        -H \"Content-Type: application/json\" -d '{}'",
            f'   curl -s {base}/api/v1/proposals/<id>/receipt/ -H "Authorization: Bearer $TOKEN"',
            "   (or approve it in the inbox, logged in as the reviewer)",
            "",
            " Ctrl-C stops everything.",
            rule,
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m acme_integration.run",
        description="Start the web app, a worker and the sandbox; Ctrl-C stops them all.",
    )
    parser.add_argument(
        "--web", default="127.0.0.1:8000", help="address for the web app (default %(default)s)"
    )
    parser.add_argument("--sandbox-port", type=int, default=8765, help="sandbox CRM/Slack port (%(default)s)")
    args = parser.parse_args(argv)
    web_host, web_port = split_addr(args.web)
    # The web app's host, as a client dials it (0.0.0.0 listens everywhere; dial the loopback).
    dial_host = "127.0.0.1" if web_host in ("0.0.0.0", "") else web_host  # noqa: S104

    os.chdir(BASE_DIR)
    sys.path.insert(0, str(BASE_DIR))
    # `make run` is the development stack: DEBUG is on for it and its children, and for nothing else (the
    # settings default to production mode). Set before the settings are imported below.
    os.environ["DEBUG"] = "1"
    # The settings module only reads the environment; importing it gives us the same paths Django uses.
    from acme_integration import embedded_redis
    from acme_integration import settings as project_settings

    for host, port, what in ((dial_host, web_port, "web app"), ("127.0.0.1", args.sandbox_port, "sandbox")):
        if port_open(host, port):
            say(f"[run] port {port} ({what}) is already in use: is another `make run` going? Stop it first.")
            return 1

    env = dict(os.environ, PYTHONUNBUFFERED="1", DJANGO_SETTINGS_MODULE="acme_integration.settings")
    # Prometheus multiprocess files: every child writes its counters there and /metrics merges them. We own
    # this group of processes, so we start it from an empty directory (no child is running yet).
    metrics_dir = Path(env.get("PROMETHEUS_MULTIPROC_DIR") or Path(project_settings.VAR_DIR) / "prometheus")
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True, exist_ok=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    env.setdefault("CRM_BASE_URL", f"http://127.0.0.1:{args.sandbox_port}/crm")
    env.setdefault("SLACK_API_URL", f"http://127.0.0.1:{args.sandbox_port}/slack/api")

    redis_dir = Path(project_settings.EMBEDDED_REDIS_DIR)
    started_redis = False
    if project_settings.EMBEDDED_REDIS:
        started_redis = not embedded_redis.is_alive(redis_dir)
        say(f"[run] embedded Redis under {redis_dir} ({'starting' if started_redis else 'already running'})")
        env["REDIS_URL"] = embedded_redis.ensure_running(redis_dir)
    redis_url = env["REDIS_URL"]

    children = [
        Child("sandbox", manage("sandbox", "--port", str(args.sandbox_port))),
        Child("worker", manage("acme_worker")),
        Child("web", manage("runserver", args.web, "--noreload")),
    ]
    supervisor = Supervisor(children, env)
    signal.signal(signal.SIGINT, supervisor.on_signal)
    signal.signal(signal.SIGTERM, supervisor.on_signal)

    code = 0
    try:
        say("[run] manage.py migrate --noinput")
        subprocess.run(manage("migrate", "--noinput"), env=env, check=True, stdin=subprocess.DEVNULL)  # noqa: S603
        say("[run] manage.py seed_demo")
        seed = subprocess.run(  # noqa: S603
            manage("seed_demo"),
            env=env,
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
        )
        if supervisor.stop_requested.is_set():
            return 0
        supervisor.start_all()
        ready = supervisor.wait_until(
            [(dial_host, web_port), ("127.0.0.1", args.sandbox_port)], READY_TIMEOUT
        )
        if not ready and not supervisor.stop_requested.is_set() and supervisor.first_dead() is None:
            say(f"[run] web or sandbox not accepting connections after {READY_TIMEOUT:.0f}s; still waiting")
        if supervisor.first_dead() is None and not supervisor.stop_requested.is_set():
            say(banner(seed.stdout, f"{dial_host}:{web_port}", args.sandbox_port, redis_url))
        while not supervisor.stop_requested.is_set():
            dead = supervisor.first_dead()
            if dead is not None:
                assert dead.proc is not None
                say(f"[run] {dead.name} exited with code {dead.proc.returncode}; stopping everything")
                code = 1
                break
            supervisor.stop_requested.wait(0.5)
    except subprocess.CalledProcessError as exc:
        if not supervisor.stop_requested.is_set():  # else it was our Ctrl-C that ended it
            say(f"[run] `manage.py {' '.join(exc.cmd[2:])}` failed with exit code {exc.returncode}")
            code = 1
    finally:
        supervisor.stop_all()
        if started_redis:
            say("[run] stopping the embedded Redis")
            embedded_redis.stop(redis_dir)
        say("[run] stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
