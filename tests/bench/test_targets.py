"""bench/targets.py: issue 21's targets from the benches' figures (a pure function; no bench is run)."""

from __future__ import annotations

from typing import Any

from bench.targets import TARGETS, targets

INTAKE: dict[str, Any] = {
    "product": {"requests_per_s": 140.0, "p95_ms": 180.0},
    "floor": {"requests_per_s": 200.0},
}
COMMIT: dict[str, Any] = {
    "latency": {
        "product": {"approved_to_committed": {"p50_ms": 30.0}},
        "floor_commit_job": {"p50_ms": 15.0},
        "product_8_clients": {"p95_ms": 120.0},
        "product_8_clients_per_core": {"workers": 2, "p95_ms": 90.0},
    },
    "throughput": {
        "product_1": {"jobs_per_s": 60.0},
        "floor_commit_1": {"jobs_per_s": 100.0},
        "product_2": {"jobs_per_s": 150.0},
        "floor_commit_2": {"jobs_per_s": 200.0},
    },
}


def test_each_target_is_computed_from_the_figures_and_compared_with_its_bound():
    result = targets(INTAKE, COMMIT)

    assert (
        set(result)
        == set(TARGETS)
        == {
            "intake_vs_floor_ratio",
            "commit_job_vs_floor_ratio",
            "drain_vs_floor_ratio_1w",
            "drain_vs_floor_ratio_2w",
            "intake_p95_ms",
            "approve_to_committed_p95_ms",
            "approve_to_committed_p95_ms_1w",
        }
    )
    assert result["intake_vs_floor_ratio"] == {"value": 0.7, "target": ">= 0.7", "met": True}
    assert result["commit_job_vs_floor_ratio"] == {"value": 2.0, "target": "<= 1.5", "met": False}
    assert result["drain_vs_floor_ratio_1w"] == {"value": 0.6, "target": ">= 0.7", "met": False}
    assert result["drain_vs_floor_ratio_2w"] == {"value": 0.75, "target": ">= 0.7", "met": True}
    assert result["intake_p95_ms"] == {"value": 180.0, "target": "< 200", "met": True}
    # The target: with one worker per core; on one worker, as information.
    assert result["approve_to_committed_p95_ms"] == {"value": 90.0, "target": "< 100", "met": True}
    assert result["approve_to_committed_p95_ms_1w"] == {
        "value": 120.0,
        "target": "< 100 (information)",
        "met": False,
    }


def test_the_bounds_are_strict_where_the_issue_says_less_than():
    at_bounds = targets(
        {**INTAKE, "product": {"requests_per_s": 140.0, "p95_ms": 200.0}},
        {**COMMIT, "latency": {**COMMIT["latency"], "product": {"approved_to_committed": {"p50_ms": 22.5}}}},
    )

    assert at_bounds["intake_p95_ms"]["met"] is False  # < 200
    assert at_bounds["commit_job_vs_floor_ratio"] == {"value": 1.5, "target": "<= 1.5", "met": True}


def test_a_bench_that_did_not_run_leaves_its_targets_unmeasured_not_missed():
    result = targets(INTAKE, {})

    assert result["intake_vs_floor_ratio"]["met"] is True
    for key in ("commit_job_vs_floor_ratio", "drain_vs_floor_ratio_1w", "approve_to_committed_p95_ms"):
        assert result[key] == {"value": None, "target": TARGETS[key][2], "met": None}
    # A result without the 8-client figure (written before it existed) or with a zero floor: not measured.
    older = targets(INTAKE, {**COMMIT, "latency": {**COMMIT["latency"], "product_8_clients_per_core": {}}})
    assert older["approve_to_committed_p95_ms"]["value"] is None
    assert (
        targets({**INTAKE, "floor": {"requests_per_s": 0}}, COMMIT)["intake_vs_floor_ratio"]["value"] is None
    )
