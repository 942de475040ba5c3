"""Campaign figures from the per-scenario record (``CHAOS_RECORD``, one JSON line per scenario).

``make chaos`` writes the record to bench/results/chaos_scenarios.jsonl and this summary to
bench/results/chaos.json; ``python -m tests.chaos.campaign RECORD`` prints it for any record.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def summarize(record: Path) -> dict[str, Any]:
    scenarios = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_kind: Counter[str] = Counter()
    for scenario in scenarios:
        by_kind.update(scenario["injected"])
    failing = [s["plan"] for s in scenarios if s["violations"]]
    # Records before these fields (the campaign before the converter Lambda) count as empty.
    by_engine: Counter[str] = Counter(s.get("engine", "glue") for s in scenarios)
    manifests: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    unfired: Counter[str] = Counter()
    for scenario in scenarios:
        manifests.update(scenario.get("engines") or {})
        errors.update(scenario.get("lambda_errors") or [])
        unfired.update(scenario.get("unfired") or [])
    untested = [s["plan"] for s in scenarios if s.get("fault_violations")]
    return {
        "scenarios": len(scenarios),
        "scenarios_by_engine": dict(sorted(by_engine.items())),
        "manifests_by_engine": dict(sorted(manifests.items())),
        "faults_injected": sum(by_kind.values()),
        "faults_by_kind": dict(sorted(by_kind.items())),
        # the converter Lambda's failures as lambda:invoke surfaced them (each went on to Glue)
        "lambda_errors": dict(sorted(errors.items())),
        # crashes that ended their step past any `except Exception` (records before this field: 0)
        "abrupt_exits": sum(int(s.get("abrupt_exits", 0)) for s in scenarios),
        # planned faults whose point was not reached often enough (the scenario still injected others)
        "unfired_by_kind": dict(sorted(unfired.items())),
        # scenarios that did not test what they planned: nothing fired, or a converter fault did not
        "scenarios_not_testing_their_plan": len(untested),
        "untested_plans": untested,
        "scenarios_with_violations": len(failing),
        "invariant_violations": sum(len(s["violations"]) for s in scenarios),
        "failing_plans": failing,
        "record": str(record),
    }


def main(argv: list[str]) -> int:
    summary = summarize(Path(argv[0]))
    print(json.dumps(summary, indent=2))
    return 1 if summary["invariant_violations"] or summary["scenarios_not_testing_their_plan"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
