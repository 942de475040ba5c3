"""The fixed fault-injection set of ``make test``: one scenario per crash point (an abrupt exit
there), one per other fault kind, and seeded randomized scenarios (seeds 0-19, their crashes half
errors, half abrupt exits). Not marked ``chaos``, except seeds 3-19 and the crash-free poison
variant, which ``make chaos`` runs with the randomized campaign: breadth belongs to the campaign,
``make test`` keeps one scenario per fault point and a handful of seeds."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from ndjson_parquet.local.faults import (
    ALL_CRASH_POINTS,
    GLUE_FAILURE,
    GLUE_ONLY,
    PUT_EVENTS_LOST_ACK,
    PUT_EVENTS_PARTIAL,
    START_FAILURE,
    Fault,
    FaultPlan,
)
from ndjson_parquet.local.runtime import LocalPipeline, SharedServices
from tests.chaos.conftest import run_scenario

pytestmark = pytest.mark.slow
# make test spreads the scenarios over its workers in two groups (each worker's moto server and
# SparkSession are set up once per group, see tests/chaos/conftest.py).
POINTS = pytest.mark.xdist_group("chaos-points")
SEEDS = pytest.mark.xdist_group("chaos-seeds")


@POINTS
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
    if point in (*GLUE_ONLY, "inside_compensate"):  # the small manifests would go to the Lambda
        plan.engine = "glue"
    # WHEN the pipeline runs, retries, flushes and recovers; THEN every invariant holds
    run_scenario(services, tmp_path, plan, input_seed=7, replay=f"pytest tests/chaos/test_fixed.py -k '{point}'")
    # and the fault really fired (a point that never fires tests nothing)
    assert plan.injected[point] == 1, f"{point} never fired: {dict(plan.injected)}"
    assert plan.exits == int(abrupt)


@POINTS
@pytest.mark.parametrize(
    "faults",
    [
        # killed as its Iceberg commit returns (before the summary's final write), then the Glue
        # fallback dies before it runs: Compensate rolls the Lambda's commit forward from the
        # staged summary, and records the engine that committed (lambda), not the claim's (glue)
        pytest.param(("converter_exit_mid_commit", "before_glue"), id="lambda-exit-mid-commit-then-glue-crash"),
        # a timeout with nothing written, then a timeout shorter than the converter's margin (it
        # raises ConverterDeadlineError itself): both manifests on Glue, no attempt spent
        pytest.param(("converter_timeout", "converter_deadline"), id="lambda-timeout-and-deadline"),
    ],
)
def test_lambda_path(faults: tuple[str, ...], services: SharedServices, tmp_path: Path) -> None:
    # GIVEN the auto engine (every scenario manifest goes to the converter Lambda) and two faults
    plan = FaultPlan(seed=11, faults=[Fault(f, exit=f in ALL_CRASH_POINTS) for f in faults])
    # WHEN the pipeline runs; THEN every invariant holds (engine named, rows exactly once), each
    # fault fired and the Lambda failures surfaced by their names (run_scenario checks both)
    run_scenario(services, tmp_path, plan, input_seed=11, replay=f"pytest tests/chaos/test_fixed.py -k '{faults[0]}'")
    assert all(plan.injected[f] == 1 for f in faults), dict(plan.injected)


# make test runs seeds 0-2; seeds 3-19 are marked chaos and run with `make chaos`.
IN_MAKE_TEST = 3


@SEEDS
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


@SEEDS
# make test keeps the variant with a crash inside Finalize (it checks the same isolation, and more);
# the crash-free one runs with `make chaos`.
@pytest.mark.parametrize("crash", [pytest.param(None, marks=pytest.mark.chaos), "inside_finalize"])
def test_poison_file_is_set_aside_alone(
    crash: str | None, services: SharedServices, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the scenario input plus a file whose conversion fails deterministically (test hook)
    # and a corrupt .gz, in manifests with healthy neighbours (and maybe a crash inside Finalize)
    from glue import isolation
    from tests.chaos.invariants import check_invariants, scenario_options, write_scenario_input

    write_scenario_input(tmp_path / "in", 3)
    poison = tmp_path / "in" / "dt=2026-01-01" / "poison.ndjson"
    poison.write_text('{"id": 1}\n{"id": 2, "tag": "POISON-PILL"}\n{"id": 3}\n')
    (tmp_path / "in" / "dt=2026-01-01" / "broken.ndjson.gz").write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    monkeypatch.setattr(isolation, "INJECT", isolation.InjectedFault(b"POISON-PILL"))
    plan = FaultPlan.crash_at(crash, seed=3, exit=True) if crash else FaultPlan(seed=3)
    # On Glue: the hook is set in this process, where the local Glue job's driver runs; the
    # converter Lambda's sandbox is another process (its isolation: tests/functional/glue).
    run = LocalPipeline(replace(scenario_options(tmp_path, 2, 1.5, 1000), engine="glue"), faults=plan)
    # WHEN the pipeline runs to the end
    run.run(shared=services)
    # THEN the poison and the corrupt .gz, and only they, are quarantined with a reason; every
    # other line of every other file is exactly one row or one quarantine record
    [poison_uri] = [u for u, f in run.uploaded.items() if f.path == poison]
    violations = check_invariants(run, plan, poison_files=frozenset({poison_uri}))
    assert not violations, "\n".join(violations)
    assert run.report.files_set_aside == 2
    if crash:
        assert plan.injected[crash] == 1


@POINTS
def test_a_file_that_kills_its_worker_is_narrowed_down_alone(
    services: SharedServices, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN 8 files in manifests of up to 8, one of which kills its Spark worker every time (as an
    # out-of-memory kill would): each run holding it dies as a whole
    import boto3

    from chalicelib import keys
    from glue import isolation
    from ndjson_parquet.local.runtime import read_state
    from tests.chaos.invariants import check_invariants, scenario_options, write_scenario_input

    write_scenario_input(tmp_path / "in", 5)
    folder = tmp_path / "in" / "dt=2026-01-01"
    present = len(list((tmp_path / "in").rglob("*.ndjson*")))
    for i in range(8 - present - 1):
        (folder / f"extra-{i}.ndjson").write_text(f'{{"id": {i}}}\n{{"id": {i + 100}}}\n')
    killer = folder / "killer.ndjson"
    killer.write_text('{"id": 1}\n{"id": 2, "tag": "KILL-THE-WORKER"}\n')
    monkeypatch.setattr(isolation, "INJECT", isolation.InjectedFault(b"KILL-THE-WORKER", kind="kill"))
    plan = FaultPlan(seed=5)
    run = LocalPipeline(replace(scenario_options(tmp_path, 8, 1.5, 1000), engine="glue"), faults=plan)
    # WHEN the pipeline runs to the end
    run.run(shared=services)
    # THEN narrowing left the killer alone: it, and only it, is quarantined after MAX_ATTEMPTS of
    # its own failures; every neighbour is converted exactly once, none paid an attempt
    [killer_uri] = [u for u, f in run.uploaded.items() if f.path == killer]
    violations = check_invariants(run, plan, killer_files=frozenset({killer_uri}))
    assert not violations, "\n".join(violations)
    state = read_state(boto3.client("dynamodb"), run.outputs["TableName"])
    others = [i for i in state.file_items if f"s3://{i['bucket']}/{i['key']}" != killer_uri]
    assert others and all(i["status"] == keys.CONVERTED and int(i.get("attempts") or 0) == 0 for i in others)
