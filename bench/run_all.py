"""``python bench/run_all.py`` (``make bench``): every benchmark in turn, then one summary against the targets.

Each bench runs in its own process (its own database, Redis db flush, processes), so one failing does not
stop the others; the exit status is 1 if any bench failed to run (a missed target is a figure, not a
failure). ``BENCH_ONLY=intake,commit`` runs a subset. ``results/summary.json`` holds the summary and
``targets``: issue 21's six targets, each ``{"value", "target", "met"}`` (bench/targets.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PY, RESULTS, ROOT, install_signal_handlers, machine, table
from bench.targets import targets

BENCHES = ["intake", "commit", "scale", "agents"]
TIMEOUT = {"intake": 300, "commit": 420, "scale": 1200, "agents": 300}


def run(name: str) -> tuple[bool, float]:
    started = time.monotonic()
    print(f"=== bench/{name}.py", flush=True)
    proc = subprocess.Popen([PY, f"bench/{name}.py"], cwd=ROOT, start_new_session=True)  # noqa: S603
    try:
        code = proc.wait(timeout=TIMEOUT[name])
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        # SIGTERM lets the bench's finally blocks stop its processes and drop its database.
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        print(f"bench/{name}.py stopped (timeout {TIMEOUT[name]} s or interrupted)", file=sys.stderr)
        code = -1
    return code == 0, time.monotonic() - started


def load(name: str) -> dict[str, Any]:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def summary(ran: dict[str, tuple[bool, float]]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    intake, commit, scale, agents = load("intake"), load("commit"), load("scale"), load("agents")
    if "intake" in ran and intake:
        rows.append(
            [
                "1 intake req/s product / bare",
                f"{intake['product']['requests_per_s']} / {intake['bare']['requests_per_s']}",
                intake["ratio"],
                ">= 0.5",
                intake["met"],
            ]
        )
        rows.append(
            [
                "1 intake p50 / p95 ms (product)",
                f"{intake['product']['p50_ms']} / {intake['product']['p95_ms']}",
                "",
                "",
                "",
            ]
        )
        if "reference_ratio" in intake:  # not the target
            rows.append(
                [
                    "1 reference: intake req/s product / bare token + row + audit row",
                    f"{intake['product']['requests_per_s']} / {intake['bare_audited']['requests_per_s']}",
                    intake["reference_ratio"],
                    "",
                    "",
                ]
            )
        if "floor_ratio" in intake:  # a bound, not a baseline: the product's own SQL sent by hand
            rows.append(
                [
                    "1 floor: intake req/s, the product's SQL by hand / bare",
                    f"{intake['floor']['requests_per_s']} / {intake['bare']['requests_per_s']}",
                    intake["floor_ratio"],
                    "",
                    "",
                ]
            )
    if "commit" in ran and commit:
        lat = commit["latency"]
        rows.append(
            [
                "2 commit p50 ms product / bare",
                f"{lat['product']['p50_ms']} / {lat['bare_simple']['p50_ms']}",
                commit["latency_ratio_p50"],
                "<= 2",
                commit["latency_met"],
            ]
        )
        rows.append(
            [
                "2 commit p95 ms product / bare",
                f"{lat['product']['p95_ms']} / {lat['bare_simple']['p95_ms']}",
                "",
                "",
                "",
            ]
        )
        reference = commit.get("reference_ratios")  # not the targets
        if reference:
            rows.append(
                [
                    "2 reference: approved -> committed p50 ms product / bare commit job",
                    f"{lat['product']['approved_to_committed']['p50_ms']} / {lat['bare_commit_job']['p50_ms']}",
                    reference["approved_to_committed_p50"],
                    "",
                    "",
                ]
            )
        floor = commit.get("floor")
        if floor:
            rows.append(
                [
                    "2 floor: the product's commit by hand, enqueue -> finished p50 ms / no-op",
                    f"{floor['commit_job_p50_ms']} / {lat['bare_simple']['p50_ms']}",
                    floor["commit_job_p50_over_noop"],
                    "",
                    "",
                ]
            )
            single = intake.get("single_client", {}).get("bare") if "intake" in ran else None
            if single:  # approve -> committed needs one HTTP write before the commit job can be enqueued
                least = round(single["p50_ms"] + floor["commit_job_p50_ms"], 2)
                rows.append(
                    [
                        "2 floor: approve -> committed >= bare insert (1 client) + floor commit job, p50 ms",
                        f"{least} / {lat['bare_simple']['p50_ms']}",
                        round(least / lat["bare_simple"]["p50_ms"], 2),
                        "",
                        "",
                    ]
                )
        thr = commit["throughput"]
        for w in ("1", "2"):
            rows.append(
                [
                    f"3 drain jobs/s, {w} worker(s) product / bare",
                    f"{thr['product_' + w]['jobs_per_s']} / {thr['bare_simple_' + w]['jobs_per_s']}",
                    commit["throughput_ratio"][w],
                    ">= 0.5",
                    commit["throughput_ratio"][w] >= 0.5,
                ]
            )
        if reference:
            for w in ("1", "2"):
                rows.append(
                    [
                        f"3 reference: drain jobs/s, {w} worker(s) product / bare commit job",
                        f"{thr['product_' + w]['jobs_per_s']} / {thr['bare_commit_' + w]['jobs_per_s']}",
                        reference["throughput"][w],
                        "",
                        "",
                    ]
                )
        if floor:
            for w in ("1", "2"):
                rows.append(
                    [
                        f"3 floor: drain jobs/s, {w} worker(s), the product's commit by hand / no-op",
                        f"{thr['floor_commit_' + w]['jobs_per_s']} / {thr['bare_simple_' + w]['jobs_per_s']}",
                        floor["throughput"][w],
                        "",
                        "",
                    ]
                )
        rows.append(
            [
                "3 no-op jobs/s, 1 worker forking / simple",
                f"{thr['bare_forking_1']['jobs_per_s']} / {thr['bare_simple_1']['jobs_per_s']}",
                "",
                "",
                "",
            ]
        )
    if "scale" in ran and scale:
        worst = max(scale["pages"]["full"].items(), key=lambda kv: kv[1]["p95_ms"])
        changed = [
            k
            for k, v in scale["pages"]["full"].items()
            if v["queries"] > scale["pages"]["small"][k]["queries"]
        ]
        api = scale["pages"]["full"]
        n_plus_one = (
            api["API /proposals/ (reviewer)"]["queries"] - api["API /proposals/?page_size=10"]["queries"]
        )
        rows.append(
            [f"4 slowest page p95 ms ({worst[0]})", worst[1]["p95_ms"], "", "< 300", worst[1]["p95_ms"] < 300]
        )
        rows.append(["4 pages whose query count grew", ", ".join(changed) or "none", "", "none", not changed])
        rows.append(["4 API list queries, page of 50 minus page of 10", n_plus_one, "", "0", n_plus_one == 0])
        over = [k for k, v in scale["pages"]["full"].items() if v["p95_ms"] >= 300]
        rows.append(["4 pages over 300 ms p95", ", ".join(over) or "none", "", "none", not over])
    if "agents" in ran and agents:
        quiet, busy = agents["intake_no_waiters"], agents["intake_with_waiters"]
        rows.append(
            [
                f"6 intake p50 ms, {agents['waiters']} agents waiting / none",
                f"{busy['p50_ms']} / {quiet['p50_ms']}",
                agents["intake_p50_ratio"],
                "",
                "",
            ]
        )
        mcp = agents["mcp_write"]
        rows.append(
            [
                "6 write p50 ms, MCP tools/call / REST POST",
                f"{mcp['mcp']['p50_ms']} / {mcp['rest']['p50_ms']}",
                mcp["ratio_p50"],
                "<= 1.5",
                mcp["met"],
            ]
        )
    web = max(
        [
            intake.get("memory", {}).get("web", {}).get("children_peak_rss_mib", 0),
            commit.get("memory", {}).get("web", {}).get("children_peak_rss_mib", 0),
        ]
    )
    worker = commit.get("memory", {}).get("acme_worker", {}).get("leader_peak_rss_mib", 0)
    rows.append(["5 peak RSS MiB web worker / acme_worker", f"{web} / {worker}", "", "", ""])
    return rows


def main() -> int:
    install_signal_handlers()
    only = [b for b in os.environ.get("BENCH_ONLY", "").split(",") if b] or BENCHES
    ran: dict[str, tuple[bool, float]] = {}
    started = time.monotonic()
    try:
        for name in only:
            ran[name] = run(name)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
    total = time.monotonic() - started
    table("Benches", ["bench", "ran", "seconds"], [[n, ok, round(s, 1)] for n, (ok, s) in ran.items()])
    table(
        "Summary (figures in bench/results/*.json)",
        ["figure", "value", "ratio", "target", "met"],
        summary(ran),
    )
    # Issue 21's targets, against the floors and absolute at 8 clients (bench/targets.py).
    goals = targets(load("intake") if "intake" in ran else {}, load("commit") if "commit" in ran else {})
    table(
        "Targets (issue 21)",
        ["figure", "value", "target", "met"],
        [[key, t["value"], t["target"], t["met"]] for key, t in goals.items()],
    )
    m = machine()
    print(
        f"{m['nproc']} x {m['cpu']}, {m['ram_gb']} GB RAM, load {m['loadavg_at_write']}; total {total:.0f} s"
    )
    (RESULTS / "summary.json").write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "machine": m,
                "total_s": round(total, 1),
                "benches": {n: {"ok": ok, "seconds": round(s, 1)} for n, (ok, s) in ran.items()},
                "summary": summary(ran),
                "targets": goals,
            },
            indent=2,
            default=str,
        )
        + "\n"
    )
    return 0 if ran and all(ok for ok, _ in ran.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
