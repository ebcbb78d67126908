"""The embedded Redis (issue 24, item 11): only the processes that use Redis start one, and ``make test``
(``python -m acme_integration.embedded_redis --dir DIR -- COMMAND``) stops the one its command started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from acme_integration import embedded_redis

ROOT = Path(__file__).resolve().parents[2]


def _env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    return {**env, "ACME_VAR_DIR": str(var_dir), "DEBUG": "1"}


@pytest.mark.parametrize(
    "command",
    [
        ["check"],
        ["makemigrations", "--check", "--dry-run"],
        ["migrate", "--noinput"],
        ["shell", "-c", "print(1)"],
    ],
)
def test_commands_that_do_not_use_redis_start_none(tmp_path: Path, command: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", *command],
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert not embedded_redis.is_alive(tmp_path / "redis")
    assert not (tmp_path / "redis" / "redis.pid").exists()


@pytest.mark.parametrize(
    ("argv", "needed"),
    [
        (["manage.py", "check"], False),
        (["manage.py", "migrate", "--noinput"], False),
        (["manage.py", "shell"], False),
        (["manage.py"], False),
        (["manage.py", "acme_worker"], True),
        (["manage.py", "runserver"], True),
        (["manage.py", "seed_demo"], True),
        (["gunicorn", "acme_integration.wsgi"], True),
        (["pytest"], True),
        ([".venv/bin/mypy", "."], False),
        ([".venv/lib/python3.11/site-packages/mypy/__main__.py", "."], False),
    ],
)
def test_which_processes_need_redis(argv: list[str], needed: bool) -> None:
    assert embedded_redis.needs_redis(argv) is needed


def test_the_test_runner_wrapper_stops_the_server_its_command_started(tmp_path: Path) -> None:
    directory = tmp_path / "redis"
    start = f"from acme_integration import embedded_redis as e; e.ensure_running({str(directory)!r})"

    status = embedded_redis.main(["--dir", str(directory), "--", sys.executable, "-c", start])

    assert status == 0
    assert not embedded_redis.is_alive(directory)


def test_the_wrapper_leaves_a_server_that_was_already_running(tmp_path: Path) -> None:
    directory = tmp_path / "redis"
    embedded_redis.ensure_running(directory)
    try:
        status = embedded_redis.main(
            ["--dir", str(directory), "--", sys.executable, "-c", "raise SystemExit(3)"]
        )

        assert status == 3  # the command's own status
        assert embedded_redis.is_alive(directory)
    finally:
        embedded_redis.stop(directory)


def test_mypy_loading_the_apps_starts_no_server(tmp_path: Path) -> None:
    """django-stubs' plugin sets the apps up inside mypy: with REDIS_URL unset that must start no embedded
    Redis, or `make test` (mypy, then the tests) would find one running and leave it behind."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["ACME_VAR_DIR"] = str(tmp_path)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "mypy"), "acme_integration/apps.py"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    assert not embedded_redis.is_alive(tmp_path / "redis")
