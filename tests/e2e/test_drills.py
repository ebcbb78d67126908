"""The fault drills (drills/scenarios.py) as tests: one stack for the module (fresh database, private
Redis), one test per drill, each failing on any lost or doubled commit. ``make drills`` runs the same
drills and writes the figures to docs/reliability.md."""

from __future__ import annotations

import pytest

from drills.scenarios import DRILLS, STACK_ENV
from tests.e2e.stack import running_stack


@pytest.fixture(scope="module")
def drill_stack():
    with running_stack(private_redis=True, **STACK_ENV) as stack:
        yield stack, stack.party("drills")


@pytest.mark.parametrize("drill", DRILLS, ids=lambda d: d.__name__)
def test_drill(drill, drill_stack):
    stack, party = drill_stack

    outcome = drill(stack, party)

    print(
        f"{outcome.drill}: proposals={outcome.proposals} committed={outcome.committed} tickets={outcome.tickets} "
        f"lost={outcome.lost} doubled={outcome.doubled} {outcome.seconds}s {outcome.notes}"
    )
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    assert outcome.lost == 0 and outcome.doubled == 0, outcome
    assert outcome.problems == [], outcome
