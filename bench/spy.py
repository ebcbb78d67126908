"""Where a gunicorn worker's CPU goes under the intake load: py-spy on a live worker (not run by run_all).

  python bench/spy.py [SECONDS]

Starts the product under gunicorn as bench 1 does, puts the same load on ``POST /api/v1/proposals/``, and
samples one worker with ``py-spy record --gil --nonblocking``: only threads holding the GIL are sampled, so
the shares are of CPU, not of time spent waiting for PostgreSQL. Prints the share of samples under each
part of a submission, and the ORM's and the driver's shares. Needs py-spy (``.venv/bin/pip install
py-spy``; not a project dependency) and the right to ptrace the worker (root, or ptrace_scope 0).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PY, Run, table
from bench.intake import load

# (label, function, a fragment of its file's path): a sample counts once for each part it is under.
PARTS = [
    ("token authentication", "BearerTokenAuthentication.authenticate", "approvals/api/auth.py"),
    ("policy rules for the agent", "agent_policy_rules", "approvals/services/context.py"),
    (
        "compiled INSERTs: the proposal's, its audit event's",
        "PreparedInsert.insert",
        "audit/prepared_writes.py",
    ),
    ("hash-chained audit event", "append", "audit/services.py"),
    ("validate, normalize, policy, preview", "prepare", "adapters/registry.py"),
    ("request body validation", "_valid", "approvals/api/views/"),
    ("the response body", "proposals_out", "approvals/api/serializers.py"),
    ("the submission view as a whole", "ProposalListView.post", "approvals/api/views/"),
    ("DRF dispatch and everything under it", "APIView.dispatch", "rest_framework/views.py"),
]


def _under(frames: list[str], function: str, path: str) -> bool:
    return any(f.startswith(function + " (") and path in f for f in frames)


def shares(raw: Path) -> tuple[int, Counter[str], int, int]:
    """Samples in all, per part, in Django's ORM above the driver, and in the driver (psycopg)."""
    total = orm = driver = 0
    parts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        for label, function, path in PARTS:
            if _under(frames, function, path):
                parts[label] += n
        in_driver = any("psycopg" in f for f in frames)
        driver += n if in_driver else 0
        orm += n if not in_driver and any("django/db/" in f for f in frames) else 0
    return total, parts, orm, driver


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 12.0
    spy = shutil.which("py-spy", path=str(Path(PY).parent)) or shutil.which("py-spy")
    if spy is None:
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy")
    with Run("spy") as run, tempfile.TemporaryDirectory() as tmp:
        run.migrate()
        party = run.party()
        url = run.start_gunicorn(
            "web", "acme_integration.wsgi", settings="acme_integration.settings", probe="/api/v1/tools/"
        )
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {party['agent']}"}
        load(url, "/api/v1/proposals/", headers, 2, "warm", run=run, server="web")
        master = run.procs["web"].pid
        worker = Path(f"/proc/{master}/task/{master}/children").read_text().split()[0]  # a gunicorn worker
        raw = Path(tmp) / "intake.raw"
        recorder = subprocess.Popen(  # noqa: S603 (our own arguments)
            [
                spy,
                "record",
                "--gil",
                "--nonblocking",
                "-r",
                "200",
                "-d",
                str(int(seconds)),
                "-f",
                "raw",
                "-o",
                str(raw),
                "--pid",
                worker,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        figures = load(url, "/api/v1/proposals/", headers, seconds + 2, "spy", run=run, server="web")
        recorder.wait(timeout=seconds + 60)
        total, parts, orm, driver = shares(raw)
    if not total:
        sys.exit("py-spy recorded nothing (ptrace not permitted?)")
    rows = [[label, f"{parts[label] / total * 100:.1f} %"] for label, _, _ in PARTS]
    rows += [
        ["Django ORM above the driver", f"{orm / total * 100:.1f} %"],
        ["psycopg", f"{driver / total * 100:.1f} %"],
    ]
    table(
        f"{figures['ok']} submissions; {total} samples of gunicorn worker {worker} holding the GIL",
        ["part of a submission", "share of CPU samples"],
        rows,
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
