"""The targets of issue 21, from the figures the benches already write: one object for ``summary.json``.

Each target is measured against a *floor* (the product's own SQL, Redis scripts and CRM call sent by hand,
with none of the gateway's Python) or is an absolute figure at 8 clients on this machine:

======================================  ================================================  ========
key                                     figure                                            target
======================================  ================================================  ========
``intake_vs_floor_ratio``               intake req/s, product / floor (bench 1)           >= 0.7
``commit_job_vs_floor_ratio``           commit job p50, product approved → committed /    <= 1.5
                                        floor commit job enqueue → ended (bench 2)
``drain_vs_floor_ratio_1w``             drain jobs/s with 1 worker, product / floor       >= 0.7
``drain_vs_floor_ratio_2w``             the same with 2 workers (bench 3)                 >= 0.7
``intake_p95_ms``                       intake p95 ms of the product, 8 clients (bench 1) < 200
``approve_to_committed_p95_ms``         approve request → committed p95 ms, 8 clients     < 100
                                        approving at once, one acme_worker per core
                                        (bench 2; ``_1w``: on one worker, information)
======================================  ================================================  ========

``targets(intake, commit)`` is a pure function of the two benches' result objects (``results/intake.json``,
``results/commit.json``): a figure whose bench did not run, or ran without it, is ``None`` with ``met``
``None`` (not measured is neither met nor missed).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

# key -> (comparison, bound, the target as written)
TARGETS: dict[str, tuple[Callable[[float, float], bool], float, str]] = {
    "intake_vs_floor_ratio": (operator.ge, 0.7, ">= 0.7"),
    "commit_job_vs_floor_ratio": (operator.le, 1.5, "<= 1.5"),
    "drain_vs_floor_ratio_1w": (operator.ge, 0.7, ">= 0.7"),
    "drain_vs_floor_ratio_2w": (operator.ge, 0.7, ">= 0.7"),
    "intake_p95_ms": (operator.lt, 200.0, "< 200"),
    "approve_to_committed_p95_ms": (operator.lt, 100.0, "< 100"),
    # Information: the same on one worker (eight commits at once queue on it).
    "approve_to_committed_p95_ms_1w": (operator.lt, 100.0, "< 100 (information)"),
}


def _get(data: dict[str, Any], *path: str) -> Any:
    """``data[path[0]][path[1]]...``, or None where any step is missing."""
    value: Any = data
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _ratio(numerator: Any, denominator: Any) -> float | None:
    if not isinstance(numerator, int | float) or not isinstance(denominator, int | float) or not denominator:
        return None
    return round(numerator / denominator, 2)


def figures(intake: dict[str, Any], commit: dict[str, Any]) -> dict[str, float | None]:
    """The six figures, each ``None`` when its bench did not measure it."""
    throughput = commit.get("throughput", {}) if isinstance(commit, dict) else {}
    return {
        "intake_vs_floor_ratio": _ratio(
            _get(intake, "product", "requests_per_s"), _get(intake, "floor", "requests_per_s")
        ),
        "commit_job_vs_floor_ratio": _ratio(
            _get(commit, "latency", "product", "approved_to_committed", "p50_ms"),
            _get(commit, "latency", "floor_commit_job", "p50_ms"),
        ),
        "drain_vs_floor_ratio_1w": _ratio(
            _get(throughput, "product_1", "jobs_per_s"), _get(throughput, "floor_commit_1", "jobs_per_s")
        ),
        "drain_vs_floor_ratio_2w": _ratio(
            _get(throughput, "product_2", "jobs_per_s"), _get(throughput, "floor_commit_2", "jobs_per_s")
        ),
        "intake_p95_ms": _get(intake, "product", "p95_ms"),
        "approve_to_committed_p95_ms": _get(commit, "latency", "product_8_clients_per_core", "p95_ms"),
        "approve_to_committed_p95_ms_1w": _get(commit, "latency", "product_8_clients", "p95_ms"),
    }


def targets(intake: dict[str, Any], commit: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{key: {"value": figure, "target": "<= 1.5", "met": bool}}`` for the six targets (``met`` None when
    the figure was not measured)."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in figures(intake, commit).items():
        compare, bound, written = TARGETS[key]
        met = None if value is None else bool(compare(value, bound))
        out[key] = {"value": value, "target": written, "met": met}
    return out
