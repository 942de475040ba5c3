"""Randomized fault-injection campaign: ``make chaos SEEDS=200`` (``-m chaos --seeds 200``);
replay one seed with ``pytest -m chaos tests/chaos/test_random.py --seed S``."""

from __future__ import annotations

from pathlib import Path

import pytest

from ndjson_parquet.local.faults import FaultPlan
from ndjson_parquet.local.runtime import SharedServices
from tests.chaos.conftest import run_scenario


@pytest.mark.chaos
def test_random_scenario(chaos_seed: int, services: SharedServices, tmp_path: Path) -> None:
    plan = FaultPlan.random(chaos_seed)
    run_scenario(
        services,
        tmp_path,
        plan,
        input_seed=chaos_seed,
        replay=f".venv/bin/python -m pytest -q -m chaos tests/chaos/test_random.py --seed {chaos_seed}",
    )
