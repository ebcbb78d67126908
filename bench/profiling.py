"""Profile one path in-process with pyinstrument, on a fresh PostgreSQL database (not part of run_all).

  python bench/profiling.py intake [N]   N submissions through the Django test client
  python bench/profiling.py approve [N]  N approvals through the API (the commit job is not run)
  python bench/profiling.py commit [N]   N commits (proposal_commit) against the sandbox

Needs pyinstrument (``.venv/bin/pip install pyinstrument``; not a dependency of the project).
Prints pyinstrument's text report, and the SQL of one request.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Run
from bench.intake import body


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "intake"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    from pyinstrument import Profiler

    with Run("profile") as run:
        run.migrate()
        party = run.party()
        if what == "commit":
            run.start_sandbox()
        os.environ.update(run.env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "acme_integration.settings"
        import django

        django.setup()
        from django.db import connection, connections
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        agent = Client(HTTP_AUTHORIZATION=f"Bearer {party['agent']}")
        reviewer = Client(HTTP_AUTHORIZATION=f"Bearer {party['reviewer']}")

        def submit(i: int) -> str:
            r = agent.post("/api/v1/proposals/", body(0, i, "prof"), content_type="application/json")
            assert r.status_code == 201, r.content
            return str(r.json()["id"])

        def approve(pk: str) -> None:
            r = reviewer.post(f"/api/v1/proposals/{pk}/approve/", "{}", content_type="application/json")
            assert r.status_code == 202, r.content

        try:
            for i in range(5):  # warm caches (content types, templates, imports)
                submit(-1 - i)
            ids = [submit(i) for i in range(n)] if what != "intake" else []
            if what == "commit":
                # Approve without the on-commit hand-off to Redis: the commits run here, in-process.
                from approvals import outbox
                from approvals.models import Proposal, Status

                outbox.drain = lambda **kw: 0  # type: ignore[assignment]
                for pk in ids:
                    approve(pk)
                assert Proposal.objects.filter(status=Status.APPROVED).count() >= n
            step = {
                "intake": lambda i: submit(10_000 + i),
                "approve": lambda i: approve(ids[i]),
                "commit": lambda i: __import__("approvals.services", fromlist=["x"]).proposal_commit(
                    proposal_id=ids[i]
                ),
            }[what]
            with CaptureQueriesContext(connection) as ctx:
                step(0)
            print(f"--- SQL of one {what} ({len(ctx.captured_queries)} queries)")
            for q in ctx.captured_queries:
                print(f"{q['time']:>7} {q['sql'][:200]}")
            half = n // 2
            profiler = Profiler(interval=0.0005)
            started, cpu = time.perf_counter(), time.process_time()
            profiler.start()
            for i in range(1, half):
                step(i)
            profiler.stop()
            took, cpu = time.perf_counter() - started, time.process_time() - cpu
            print(
                f"--- {half - 1} x {what}: {took * 1000 / (half - 1):.2f} ms wall, "
                f"{cpu * 1000 / (half - 1):.2f} ms CPU each, in-process (pyinstrument: wall clock)"
            )
            print(profiler.output_text(unicode=False, color=False, show_all=False))
            # The same path under cProfile timed by process CPU: where the CPU (not the waiting) goes.
            cpu_profile = cProfile.Profile(time.process_time)
            cpu_profile.enable()
            for i in range(half, n):
                step(i)
            cpu_profile.disable()
            if os.environ.get("PROFILE_DUMP"):  # for pstats' callers/callees: python -m pstats FILE
                cpu_profile.dump_stats(os.environ["PROFILE_DUMP"])
            print(f"--- cProfile, CPU time, {n - half} x {what}: top functions by cumulative CPU")
            pstats.Stats(cpu_profile).sort_stats("cumulative").print_stats(
                int(os.environ.get("PROFILE_LINES", "45"))
            )
            print("--- by own CPU (tottime)")
            pstats.Stats(cpu_profile).sort_stats("tottime").print_stats(25)
        finally:
            connections.close_all()


if __name__ == "__main__":
    main()
