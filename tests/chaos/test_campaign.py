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
