"""The campaign summary must count what the record says, and say so when a scenario broke."""

from __future__ import annotations

import json
from pathlib import Path

from tests.chaos.campaign import main, summarize


def _record(tmp_path: Path, *scenarios: dict[str, object]) -> Path:
    path = tmp_path / "record.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in scenarios), encoding="utf-8")
    return path


def test_counts_scenarios_and_faults_by_kind(tmp_path: Path) -> None:
    record = _record(
        tmp_path,
        {"plan": "seed=1", "injected": {"throttle": 2, "after_glue": 1}, "abrupt_exits": 1, "violations": []},
        {"plan": "seed=2", "injected": {"throttle": 1}, "violations": []},
    )
    summary = summarize(record)
    assert (summary["scenarios"], summary["faults_injected"]) == (2, 4)
    assert summary["faults_by_kind"] == {"after_glue": 1, "throttle": 3}
    assert summary["abrupt_exits"] == 1
    assert summary["invariant_violations"] == 0
    assert main([str(record)]) == 0


def test_a_violation_is_named_and_fails(tmp_path: Path) -> None:
    record = _record(
        tmp_path,
        {"plan": "seed=1", "injected": {}, "violations": []},
        {"plan": "seed=2", "injected": {"glue_failure": 1}, "violations": ["file x converted twice"]},
    )
    summary = summarize(record)
    assert summary["failing_plans"] == ["seed=2"]
    assert summary["invariant_violations"] == 1
    assert main([str(record)]) == 1


def test_engines_lambda_errors_and_a_scenario_that_injected_nothing_are_counted(tmp_path: Path) -> None:
    record = _record(
        tmp_path,
        {
            "plan": "seed=1",
            "engine": "auto",
            "injected": {"converter_exit": 1},
            "engines": {"lambda": 1, "glue": 1},
            "lambda_errors": ["Runtime.ExitError"],
            "unfired": ["inside_compensate"],
            "fault_violations": [],
            "violations": [],
        },
        {
            "plan": "seed=2",
            "engine": "glue",
            "injected": {},
            "fault_violations": ["injected nothing"],
            "violations": [],
        },
    )
    summary = summarize(record)
    assert summary["scenarios_by_engine"] == {"auto": 1, "glue": 1}
    assert summary["manifests_by_engine"] == {"glue": 1, "lambda": 1}
    assert summary["lambda_errors"] == {"Runtime.ExitError": 1}
    assert summary["unfired_by_kind"] == {"inside_compensate": 1}
    assert summary["untested_plans"] == ["seed=2"]
    assert main([str(record)]) == 1  # a scenario that tested nothing fails the campaign
