"""Files held by a schema-change refusal are invisible to batching (no claim, no flush, the date's
totals balanced), and ``release`` hands them back to flush_stale exactly once."""

from __future__ import annotations

from chalicelib import batching, keys
from chalicelib.schema_policy import refusal_message
from chalicelib.tracking_table import TrackingTable
from chalicelib.workflow.breaker import BreakerConfig
from chalicelib.workflow.compensate import compensate
from chalicelib.workflow.release import release_all, release_manifest, release_update
from tests.functional.control_plane.conftest import ControlPlane
from tests.functional.control_plane.test_batching import T0, _Collector, _put_files


def _refuse(cp: ControlPlane, manifest_id: str) -> dict:
    """The saga for a run the schema policy refused: running, then compensated with the job's text."""
    store = TrackingTable(cp.clients["dynamodb"], cp.res.table)
    arn = f"arn:aws:states:us-east-1:123456789012:execution:convert:{manifest_id}"
    assert store.start_run(manifest_id, arn, "2030-01-02T03:04:05.000000Z", replay=False) is not None
    cause = "SchemaChangeError: " + refusal_message(["added user.plan string"])
    error = {"Error": "States.TaskFailed", "Cause": cause}
    payload = {"manifest_id": manifest_id, "execution_arn": arn, "error": error}
    shards = int(cp.env["SHARD_COUNT"])
    return compensate(
        payload, store, cp.clients["s3"], None, max_attempts=3, shard_count=shards, breaker_cfg=BreakerConfig()
    )


def _statuses(store: TrackingTable, date: str, shards: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for page in store.scan_index_pages():
        for item in page:
            if item.get("sk") == keys.FILE_SK and item.get("date_prefix") == date:
                counts[item["status"]] = counts.get(item["status"], 0) + 1
    return counts


def test_held_files_are_left_alone_by_batching_and_released_into_one_new_seal(cp: ControlPlane) -> None:
    # GIVEN a past date sealed by flush_stale into one manifest of 3 files, refused by the policy
    date, shards = "2024-08-01", int(cp.env["SHARD_COUNT"])
    collector = _Collector(cp)
    _put_files(cp, date, 3)
    batching.count_arrivals(collector.new(), cp.deps())
    [first] = batching.flush_stale(cp.deps(), now=T0)
    store = cp.deps().store
    result = _refuse(cp, first.manifest_id)
    assert (result["held"], result["requeued"], result["quarantined"]) == (3, 0, 0)

    # THEN batching never sees them: no seal, the date closes with its totals balanced (held files
    # stay sealed), the stream's MODIFY records of the hold count nothing
    assert batching.count_arrivals(collector.new(), cp.deps()).counted == 0
    assert batching.flush_stale(cp.deps(), now=T0) == []
    assert list(store.open_dates()) == []
    totals = store.read_totals(date, shards)
    assert (totals.files, totals.sealed_files, totals.unsealed_files, totals.seq) == (3, 3, 0, 1)
    assert _statuses(store, date, shards) == {keys.HELD: 3}
    assert batching.oldest_pending(date, cp.deps()) is None

    # WHEN one file is released by a concurrent release first, then the whole manifest
    [held_one] = next(store.iter_held_file_pages(first.manifest_id, page_size=1))
    assert store.release_held_files(first.manifest_id, [release_update(held_one, first.manifest_id, shards, "T")]) == 1
    released = release_manifest(store, first.manifest_id, shards)

    # THEN each file left held once and was unsealed once: the date is open, all 3 unsealed
    assert (released.files, released.manifest_released) == (2, True)
    assert list(store.open_dates()) == [date]
    totals = store.read_totals(date, shards)
    assert (totals.files, totals.sealed_files, totals.sealed_bytes, totals.unsealed_files) == (3, 0, 0, 3)
    assert _statuses(store, date, shards) == {keys.PENDING: 3}
    # AND a second release changes nothing
    assert release_all(store, shards) == []
    again = release_manifest(store, first.manifest_id, shards)
    assert (again.status, again.files, again.manifest_released, again.refused) == ("failed", 0, False, "")
    assert store.read_totals(date, shards).unsealed_files == 3
    # AND flush_stale seals them again in one manifest (a refusal narrows nothing), then closes the date
    [reseal] = batching.flush_stale(cp.deps(), now=T0)
    assert (reseal.status, reseal.manifest_id, reseal.file_count) == ("sealed", keys.manifest_id_for(date, 1), 3)
    totals = store.read_totals(date, shards)
    assert (totals.files, totals.sealed_files, totals.unsealed_files, totals.seq) == (3, 3, 0, 2)
    assert list(store.open_dates()) == []
