"""Pure seams between the control plane and the workflow: timestamps both sides write, the seal
gate's one-probe rule, the breaker as status shows it, and the deploy mapping of INPUT_BUCKET."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from chalicelib import batching
from chalicelib.timeutil import format_time, now_iso, to_epoch
from chalicelib.workflow import breaker
from ndjson_parquet.commands.status import sealing_of
from ndjson_parquet.infra_template import apply_outputs_to_chalice_config

CONFIG = Path(__file__).resolve().parents[2] / ".chalice" / "config.json"
MOMENT = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)


def test_to_epoch_reads_the_control_planes_timestamps() -> None:
    stamp = format_time(MOMENT)  # %Y-%m-%dT%H:%M:%S.%fZ: created_at, sealed_at, arrived_at
    assert stamp == "2024-02-29T23:59:58.123456Z"
    assert to_epoch(stamp) == MOMENT.timestamp()
    assert to_epoch(f"{stamp}#{'a' * 40}".split("#")[0]) == MOMENT.timestamp()  # gsi1sk's time part


def test_to_epoch_reads_the_workflows_own_timestamps_and_rejects_garbage() -> None:
    now = MOMENT.timestamp()
    assert to_epoch(now_iso(now)) == pytest.approx(now, abs=1e-6)
    assert to_epoch("2025-01-15T01:00:00Z") == datetime(2025, 1, 15, 1, tzinfo=UTC).timestamp()
    assert to_epoch(Decimal("1700000000.5")) == 1700000000.5
    assert [to_epoch(v) for v in (None, "", "not a time", "2024-13-01T00:00:00Z")] == [None] * 4


class _Breaker:
    def __init__(self, permit: str) -> None:
        self.permit_value, self.calls = permit, 0

    def permit(self, now: float) -> str:
        self.calls += 1
        return self.permit_value


@pytest.mark.parametrize(
    ("permit", "allowed"),
    [(breaker.SealPermit.SEAL, [True, True, True]), (breaker.SealPermit.DENIED, [False, False, False])],
)
def test_gate_reads_the_breaker_once_per_invocation(permit: str, allowed: list[bool]) -> None:
    b = _Breaker(permit)
    gate = batching.SealGate(b, 0.0)
    got = []
    for _ in allowed:
        got.append(gate.allow())
        gate.record(batching.SealOutcome("sealed", "m"))
    assert (got, b.calls) == (allowed, 1)


def test_probe_gate_allows_one_manifest_and_an_empty_attempt_does_not_use_it() -> None:
    gate = batching.SealGate(_Breaker(breaker.SealPermit.PROBE), 0.0)
    assert gate.allow()
    gate.record(batching.SealOutcome("empty", "m0"))  # nothing sealed: the probe is still ours
    assert gate.allow()
    gate.record(batching.SealOutcome("sealed", "m0"))
    assert not gate.allow()


def test_status_tells_what_the_breaker_means_for_sealing() -> None:
    cfg = breaker.BreakerConfig(threshold=3, window_seconds=3600, cooldown_seconds=900)
    assert sealing_of(breaker.BreakerState(), cfg, 1000.0) == {"sealing": "normal", "next_probe_in_seconds": None}
    opened = breaker.BreakerState(breaker.OPEN, (1.0, 2.0, 3.0), opened_at=1000.0)
    assert sealing_of(opened, cfg, 1100.0) == {"sealing": "paused", "next_probe_in_seconds": 800}
    assert sealing_of(opened, cfg, 1900.0) == {"sealing": "probe_due", "next_probe_in_seconds": 0}
    probing = breaker.BreakerState(breaker.HALF_OPEN, (), opened_at=1000.0, probe_at=2000.0)
    assert sealing_of(probing, cfg, 2100.0) == {"sealing": "probing", "next_probe_in_seconds": 800}


def test_input_bucket_is_declared_for_every_stage_and_filled_from_the_stack() -> None:
    config = json.loads(CONFIG.read_text())
    assert all("INPUT_BUCKET" in stage["environment_variables"] for stage in config["stages"].values())
    merged = apply_outputs_to_chalice_config(config, "prod", {"InputBucketName": "acme-input"})
    assert merged["stages"]["prod"]["environment_variables"]["INPUT_BUCKET"] == "acme-input"
