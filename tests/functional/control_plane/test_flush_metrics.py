"""flush_stale publishes the gauges the custom-metric alarms wait for (infra/pipeline.yaml):
OldestPendingFileAge and CircuitBreakerOpen, as Powertools EMF on stdout, every run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import batching
from chalicelib.observability import SERVICE, handler_scope, metrics
from chalicelib.tracking_table import TrackingTable
from chalicelib.workflow import breaker as circuit
from tests.functional.control_plane.conftest import ControlPlane
from tests.functional.control_plane.test_batching import _Collector, _put_files

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)  # "today" for flush_stale
TODAY, YESTERDAY = "2030-01-02", "2030-01-01"


@pytest.fixture(autouse=True)
def _metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    # The local runtime's environment turns EMF off; the Lambda's does not.
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    metrics.clear_metrics()  # what other tests added without a handler's flush


def _flush_run(cp: ControlPlane, capsys: pytest.CaptureFixture[str], now: datetime) -> tuple[list[str], dict[str, Any]]:
    """One scheduled flush_stale as app.py runs it; its outcomes and its one EMF record."""
    capsys.readouterr()
    with handler_scope("flush_stale"):
        outcomes = batching.flush_stale(cp.deps(), now=now)
    records = []
    for line in capsys.readouterr().out.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict) and "_aws" in doc:
            records.append(doc)
    assert len(records) == 1, records
    return [o.status for o in outcomes], records[0]


def _metric(record: dict[str, Any], name: str) -> tuple[float, str]:
    [directive] = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "NdjsonParquet"
    assert ["service"] in directive["Dimensions"] and record["service"] == SERVICE
    units = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert name in units, f"{name} not emitted: {sorted(units)}"
    values = record[name] if isinstance(record[name], list) else [record[name]]
    assert len(values) == 1, f"{name}: one value per run, got {values}"
    return values[0], units[name]


def _open_breaker(cp: ControlPlane, at: datetime) -> None:
    s = cp.settings()
    cfg = circuit.BreakerConfig(s.breaker_threshold, s.breaker_window_seconds, s.breaker_cooldown_seconds)
    for _ in range(s.breaker_threshold):
        circuit.record_failure(TrackingTable(cp.clients["dynamodb"], cp.res.table), at.timestamp(), cfg)
    assert circuit.read_state(TrackingTable(cp.clients["dynamodb"], cp.res.table)).state == circuit.OPEN


def test_oldest_pending_age_is_what_stays_pending_and_drops_to_zero_when_drained(
    cp: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN files of a past date and of today that arrived at T0 (BATCH_MAX_WAIT_SECONDS=900 here)
    cp.env["BATCH_MAX_WAIT_SECONDS"] = "900"
    _put_files(cp, YESTERDAY, 2, at=T0)
    _put_files(cp, TODAY, 3, at=T0)
    batching.count_arrivals(_Collector(cp).new(), cp.deps())  # opens both dates, below the threshold

    # WHEN flush_stale runs 600 s later: the past date is sealed, today's files are not stale yet
    statuses, record = _flush_run(cp, capsys, T0 + timedelta(seconds=600))

    # THEN the age is that of what is still pending (today's oldest), the breaker reads closed
    assert statuses == ["sealed"]
    assert _metric(record, "OldestPendingFileAge") == (600.0, "Seconds")
    assert _metric(record, "CircuitBreakerOpen") == (0, "Count")

    # WHEN everything has been sealed, THEN the age is 0 (so the alarm has data and returns to OK)
    statuses, record = _flush_run(cp, capsys, T0 + timedelta(seconds=901))
    assert statuses == ["sealed"]
    assert _metric(record, "OldestPendingFileAge") == (0.0, "Seconds")
    assert _metric(record, "CircuitBreakerOpen") == (0, "Count")


def test_breaker_open_and_probing_read_1_and_the_age_is_the_max_over_open_dates(
    cp: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a past date whose files arrived 3000 s before today's, and an open breaker
    cp.env["BATCH_MAX_WAIT_SECONDS"] = "900"  # today's files are not stale inside the cool-down
    _put_files(cp, YESTERDAY, 2, at=T0 - timedelta(seconds=3000))
    _put_files(cp, TODAY, 3, at=T0)
    batching.count_arrivals(_Collector(cp).new(), cp.deps())
    _open_breaker(cp, T0)

    # WHEN flush_stale runs inside the cool-down: nothing is sealed
    statuses, record = _flush_run(cp, capsys, T0 + timedelta(seconds=600))

    # THEN CircuitBreakerOpen is 1 and the age is the older date's, not the last date read
    assert statuses == ["paused"]
    assert _metric(record, "CircuitBreakerOpen") == (1, "Count")
    assert _metric(record, "OldestPendingFileAge") == (3600.0, "Seconds")

    # WHEN the cool-down has passed: this run wins the probe and seals one manifest (the past date)
    statuses, record = _flush_run(cp, capsys, T0 + timedelta(seconds=1000))

    # THEN the breaker is half-open (the probe is out): still 1; today's files wait, paused
    assert statuses == ["sealed", "paused"]
    assert circuit.read_state(TrackingTable(cp.clients["dynamodb"], cp.res.table)).state == circuit.HALF_OPEN
    assert _metric(record, "CircuitBreakerOpen") == (1, "Count")
    assert _metric(record, "OldestPendingFileAge") == (1000.0, "Seconds")
