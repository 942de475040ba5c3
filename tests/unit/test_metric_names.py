"""The custom-metric alarms in infra/pipeline.yaml and the metrics the code emits cannot drift apart.

Every alarm on namespace NdjsonParquet must name a metric of observability.METRIC_NAMES, and
METRIC_NAMES must be exactly what chalicelib/ and app.py pass to count/seconds/add_metric (read
from the source, so a name listed but never emitted fails too)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from chalicelib import observability
from ndjson_parquet.infra_template import load_template

ROOT = Path(__file__).resolve().parents[2]
EMITTERS = {"count", "seconds", "add_metric"}


def _alarm_metrics(template: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(alarm, metric name, metric spec) of every metric an alarm on NdjsonParquet watches."""
    found = []
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        specs = [props] + [q["MetricStat"]["Metric"] for q in props.get("Metrics", []) if "MetricStat" in q]
        found.extend((name, s["MetricName"], s) for s in specs if s.get("Namespace") == observability.NAMESPACE)
    return found


def _emitted_names() -> dict[str, list[str]]:
    """Metric name -> where it is emitted: the first argument (or name=) of count/seconds/add_metric."""
    emitted: dict[str, list[str]] = {}
    for path in [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if called not in EMITTERS:
                continue
            arg = next((k.value for k in node.keywords if k.arg == "name"), node.args[0] if node.args else None)
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                value = arg.value
            elif isinstance(arg, ast.Name) and isinstance(getattr(observability, arg.id, None), str):
                value = getattr(observability, arg.id)
            elif path.name == "observability.py" and isinstance(arg, ast.Name):
                continue  # the count/seconds helpers themselves pass their parameter on
            else:
                raise AssertionError(f"{path}:{node.lineno}: metric name is not a constant of observability.py")
            emitted.setdefault(value, []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return emitted


def test_every_alarm_on_the_custom_namespace_watches_a_metric_the_code_emits() -> None:
    alarms = _alarm_metrics(load_template())
    assert {m for _, m, _ in alarms} >= {"OldestPendingFileAge", "CircuitBreakerOpen"}  # not vacuous
    unknown = [(alarm, metric) for alarm, metric, _ in alarms if metric not in observability.METRIC_NAMES]
    assert unknown == [], f"alarms on metrics nothing emits: {unknown}"
    # Powertools puts every metric under the single dimension ``service``; anything else never matches.
    assert {alarm: [d["Name"] for d in spec.get("Dimensions", [])] for alarm, _, spec in alarms} == {
        alarm: ["service"] for alarm, _, _ in alarms
    }


def test_metric_names_are_exactly_what_the_code_emits() -> None:
    emitted = _emitted_names()
    assert set(emitted) - observability.METRIC_NAMES == set(), "emitted but missing from METRIC_NAMES"
    assert observability.METRIC_NAMES - set(emitted) == set(), "in METRIC_NAMES but never emitted"
