"""The circuit breaker on the real path: manifests sealed by the control plane fail in the state
machine, compensate opens the breaker, sealing pauses while files keep being counted, and after
the cool-down exactly one probe manifest is sealed; its success closes the breaker."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from chalicelib import batching, keys
from chalicelib.file_store import TrackedFile
from chalicelib.settings import get_settings
from chalicelib.timeutil import TIME_FORMAT
from chalicelib.tracking_table import TrackingTable
from chalicelib.workflow import breaker
from ndjson_parquet.cli import main
from ndjson_parquet.local.pumps import StreamPump
from tests.conftest import client
from tests.functional.workflow.conftest import DATE, TABLE, Workflow

AT = datetime(2025, 1, 15, 1, 0, tzinfo=UTC)


class Arrivals:
    """Puts pending FILE items as the tracker does and hands their stream records to count_arrivals."""

    def __init__(self, wf: Workflow) -> None:
        self.store = TrackingTable(wf.ddb, TABLE)
        self.n = 0
        self.batch: list[tuple[str, Any]] = []
        arn = wf.ddb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
        self._pump = StreamPump(client("dynamodbstreams"), arn, self._take, batch_size=1000)

    def _take(self, records: list[dict[str, Any]]) -> None:
        self.batch.extend((r["eventName"], r["dynamodb"].get("NewImage")) for r in records)

    def put(self, count: int) -> batching.CountResult:
        for _ in range(count):
            key = f"in/{DATE}/f{self.n:03d}.ndjson"
            arrived = (AT + timedelta(seconds=self.n)).strftime(TIME_FORMAT)
            shard = keys.stable_shard(key, 4)
            fid = keys.file_id("input", key, "e")
            assert self.store.put_file(
                TrackedFile(fid, "input", key, 100, "e", None, arrived, DATE, shard, "pending", 0)
            )
            self.n += 1
        self.batch = []
        self._pump.pump()
        return batching.count_arrivals(self.batch)


def breaker_state(wf: Workflow) -> str:
    return breaker.read_state(TrackingTable(wf.ddb, TABLE)).state


def statuses(outcomes: list[batching.SealOutcome]) -> list[str]:
    return [o.status for o in outcomes]


def test_failures_open_the_breaker_sealing_pauses_then_one_probe_closes_it(
    workflow: Workflow, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BATCH_MAX_FILES", "2")
    monkeypatch.setenv("MAX_ATTEMPTS", "10")  # keep the failing files retrying, not quarantined
    get_settings.cache_clear()
    arrivals = Arrivals(workflow)
    workflow.glue.fail_with = "Glue is down"

    # GIVEN BREAKER_THRESHOLD=3 consecutive failed runs of manifests the control plane sealed
    assert statuses(arrivals.put(2).seals) == ["sealed"]
    assert [e["status"] for e in workflow.wait_all(1)] == ["FAILED"]
    assert breaker_state(workflow) == breaker.CLOSED
    # the requeued files, sealed again narrowed (a 2-file run failed as a whole: one file each)
    assert statuses(batching.flush_stale()) == ["sealed", "sealed"]
    workflow.wait_all(3)
    assert sorted(e["status"] for e in workflow.executions()) == ["FAILED"] * 3

    # THEN the breaker is open and the alert went out once
    assert breaker_state(workflow) == breaker.OPEN
    assert [a["kind"] for a in workflow.alerts()].count("breaker_open") == 1

    # WHEN more files arrive while it is open
    result = arrivals.put(4)

    # THEN they are counted, a full batch is ready, and nothing is sealed, by the count or by flush
    assert result.counted == 4 and statuses(result.seals) == ["paused"]
    assert statuses(batching.flush_stale()) == ["paused"]
    assert len(workflow.executions()) == 3
    assert main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files_by_date"][DATE] == {"pending": 6}
    assert report["breaker"]["state"] == "open" and report["breaker"]["sealing"] == "paused"
    assert 0 < report["breaker"]["next_probe_in_seconds"] <= 900

    # WHEN the cool-down has passed (Glue is healthy again)
    workflow.glue.fail_with = None
    after_cooldown = datetime.now(UTC) + timedelta(seconds=901)
    probe = batching.flush_stale(now=after_cooldown)

    # THEN exactly one probe manifest is sealed though more batches are ready; others still wait
    # (the probe is the oldest file, narrowed to a batch of one by its failures)
    assert statuses(probe) == ["sealed", "paused"] and probe[0].file_count == 1
    assert statuses(batching.flush_stale(now=after_cooldown)) == ["paused"]  # the probe is out
    assert breaker_state(workflow) == breaker.HALF_OPEN
    assert sorted(e["status"] for e in workflow.wait_all(4)) == ["FAILED"] * 3 + ["SUCCEEDED"]

    # AND its success closed the breaker: the rest is sealed and converted normally
    assert breaker_state(workflow) == breaker.CLOSED
    assert statuses(batching.flush_stale()) == ["sealed", "sealed", "sealed"]  # the other narrowed file alone
    results = workflow.wait_all(7)
    assert sorted(e["status"] for e in results) == ["FAILED"] * 3 + ["SUCCEEDED"] * 4
    assert main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["files_by_date"][DATE] == {"converted": 6}
    assert report["breaker"]["sealing"] == "normal"
