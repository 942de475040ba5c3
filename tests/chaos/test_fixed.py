"""The fixed fault-injection set of ``make test``: one scenario per crash point (an abrupt exit
there), one per other fault kind, and seeded randomized scenarios (seeds 0-19, their crashes half errors,
half abrupt exits). Not marked ``chaos``, except seeds 5-19, which ``make chaos`` runs with the
randomized campaign: breadth belongs to the campaign, ``make test`` keeps one scenario per fault
point and a handful of seeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from ndjson_parquet.local.faults import (
    ALL_CRASH_POINTS,
    GLUE_FAILURE,
    PUT_EVENTS_LOST_ACK,
    PUT_EVENTS_PARTIAL,
    START_FAILURE,
    Fault,
    FaultPlan,
)
from ndjson_parquet.local.runtime import SharedServices
from tests.chaos.conftest import run_scenario

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "point", (*ALL_CRASH_POINTS, GLUE_FAILURE, START_FAILURE, PUT_EVENTS_PARTIAL, PUT_EVENTS_LOST_ACK)
)
def test_one_fault_point(point: str, services: SharedServices, tmp_path: Path) -> None:
    # GIVEN a plan that fires once at the first event of this point; a crash point ends its step
    # abruptly (no `except Exception` in it runs); the 20 seeds below mix exits and errors
    abrupt = point in ALL_CRASH_POINTS
    plan = FaultPlan.crash_at(point, seed=7, exit=abrupt)
    if point == "inside_compensate":  # compensation needs a failed run first
        plan = FaultPlan(seed=7, faults=[Fault(GLUE_FAILURE), Fault(point, exit=True)])
    # WHEN the pipeline runs, retries, flushes and recovers; THEN every invariant holds
    run_scenario(services, tmp_path, plan, input_seed=7, replay=f"pytest tests/chaos/test_fixed.py -k '{point}'")
    # and the fault really fired (a point that never fires tests nothing)
    assert plan.injected[point] == 1, f"{point} never fired: {dict(plan.injected)}"
    assert plan.exits == int(abrupt)


# make test runs seeds 0-4; seeds 5-19 are marked chaos and run with `make chaos`.
IN_MAKE_TEST = 5


@pytest.mark.parametrize(
    "seed",
    [pytest.param(s, id=f"seed{s}", marks=() if s < IN_MAKE_TEST else pytest.mark.chaos) for s in range(20)],
)
def test_fixed_seed(seed: int, services: SharedServices, tmp_path: Path) -> None:
    plan = FaultPlan.random(seed)
    run_scenario(
        services,
        tmp_path,
        plan,
        input_seed=seed,
        replay=f"pytest tests/chaos/test_fixed.py -k 'test_fixed_seed and seed{seed}]'",
    )
