"""Fault-injection scenarios: one moto server and one warm SparkSession per test module.

``make test`` runs the fixed scenarios (not marked chaos); ``make chaos SEEDS=N`` runs N
randomized ones (``-m chaos --seeds N``); ``--seed S`` replays one randomized seed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from ndjson_parquet.local.faults import FaultPlan
from ndjson_parquet.local.runtime import LocalPipeline, SharedServices, shared_services
from tests.chaos.campaign import summarize
from tests.chaos.invariants import check_invariants, lambda_errors, scenario_options, write_scenario_input

CHAOS_SEED_BASE = 1000  # randomized seeds: 1000, 1001, ... (the fixed suite uses 0-19)
TOTALS: Counter[str] = Counter()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--seeds", type=int, default=200, help="randomized chaos scenarios to run")
    parser.addoption("--seed", type=int, default=None, help="replay one randomized chaos seed")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "chaos_seed" in metafunc.fixturenames:
        one = metafunc.config.getoption("--seed", default=None)
        seeds = (
            [one]
            if one is not None
            else [CHAOS_SEED_BASE + i for i in range(metafunc.config.getoption("--seeds", default=200))]
        )
        metafunc.parametrize("chaos_seed", seeds, ids=[f"seed{s}" for s in seeds])


@pytest.fixture(scope="module")
def services() -> Iterator[SharedServices]:
    # Module scope, not session: the server enforces IAM, and moto's auth switch is
    # process-wide, so it must be torn down (enforcement off) before any other module's tests
    # start their own unenforced moto server (tests/conftest.py checks that it is). Not package
    # scope either: make test's workers may run tests/chaos/test_fault_plan.py (unenforced)
    # after the scenarios, inside this package.
    with shared_services() as shared:
        yield shared


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TOTALS["scenarios"]:
        faults = ", ".join(f"{k}={v}" for k, v in sorted(TOTALS.items()) if k.startswith("fault:"))
        terminalreporter.write_line(
            f"chaos: {TOTALS['scenarios']} scenario(s), {TOTALS['faults']} fault(s) injected "
            f"({TOTALS['exits']} of the crashes abrupt exits), "
            f"{TOTALS['violations']} invariant violation(s) [{faults}]"
        )
    record, summary_path = os.environ.get("CHAOS_RECORD"), os.environ.get("CHAOS_SUMMARY")
    if record and summary_path and Path(record).exists():
        summary = summarize(Path(record))
        Path(summary_path).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        terminalreporter.write_line(f"chaos: summary of {summary['scenarios']} scenario(s) written to {summary_path}")


def run_scenario(services: SharedServices, tmp: Path, plan: FaultPlan, input_seed: int, replay: str) -> None:
    """Run the pipeline on a small input under ``plan`` (with its engine), then assert every
    invariant, and that the plan injected something: a scenario none of whose planned faults
    fired tested nothing (it fails; the record names it)."""
    write_scenario_input(tmp / "in", input_seed)
    opts = scenario_options(tmp, batch_max_files=2, recover_idle_seconds=1.5, max_recovers=1000)
    opts = dataclasses.replace(opts, engine=plan.engine)
    run = LocalPipeline(opts, faults=plan)
    run.run(shared=services)
    violations = check_invariants(run, plan)
    errors = lambda_errors(run)
    fired = fault_violations(plan, errors)
    TOTALS["scenarios"] += 1
    TOTALS["faults"] += plan.total_injected
    TOTALS["exits"] += plan.exits
    TOTALS["violations"] += len(violations)
    for kind, n in plan.injected.items():
        TOTALS[f"fault:{kind}"] += n
    logging.getLogger(__name__).info("%s: injected %s", plan.describe(), dict(plan.injected))
    record = os.environ.get("CHAOS_RECORD")  # one JSON line per scenario, for campaign figures
    if record:
        with open(record, "a", encoding="utf-8") as fh:
            line = {
                "plan": plan.describe(),
                "engine": plan.engine,
                "injected": dict(plan.injected),
                "abrupt_exits": plan.exits,
                "unfired": plan.unfired(),
                "engines": dict(run.report.engines),
                "lambda_errors": errors,
                "fault_violations": fired,
                "violations": violations,
            }
            fh.write(json.dumps(line) + "\n")
    assert not violations, (
        f"{len(violations)} invariant violation(s) with {plan.describe()} (injected {dict(plan.injected)}):\n  "
        + "\n  ".join(violations)
        + f"\nreplay: {replay}"
    )
    assert not fired, f"{plan.describe()}: " + "; ".join(fired) + f"\nreplay: {replay}"


# The error name each converter fault surfaces as through lambda:invoke (the state machine's
# catch sends it to Glue); converter_killed_mid_run is a Sandbox.Timedout (the host killed it).
CONVERTER_ERRORS = {
    "converter_timeout": "Sandbox.Timedout",
    "converter_timeout_after_commit": "Sandbox.Timedout",
    "converter_killed_mid_run": "Sandbox.Timedout",
    "converter_exit": "Runtime.ExitError",
    "converter_exit_after_commit": "Runtime.ExitError",
    "converter_exit_mid_commit": "Runtime.ExitError",
    "converter_worker_killed": "WorkerDiedError",
    "converter_deadline": "ConverterDeadlineError",
}


def fault_violations(plan: FaultPlan, errors: list[str]) -> list[str]:
    """What says the scenario did not test what it planned: none of its faults fired; a converter
    fault (the Lambda path) that never fired or did not surface with its error name."""
    problems = []
    if plan.faults and not plan.planned_fired:
        problems.append(f"injected nothing: none of {[f.point for f in plan.faults]} fired")
    seen = Counter(errors)
    for fault in plan.faults:
        if fault.point not in CONVERTER_ERRORS:
            continue
        if not fault.fired:
            problems.append(f"{fault.point} never fired (engine {plan.engine})")
        elif fault.point == "converter_killed_mid_run" and not seen[CONVERTER_ERRORS[fault.point]]:
            continue  # its run ended before the kill (a warm run of a small manifest takes ~1 s)
        elif seen[CONVERTER_ERRORS[fault.point]] < fault.fired:
            want = CONVERTER_ERRORS[fault.point]
            problems.append(f"{fault.point} fired but no Lambda task failed with {want}: {errors}")
        else:
            seen[CONVERTER_ERRORS[fault.point]] -= fault.fired
    return problems
