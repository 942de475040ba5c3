"""Files a failed manifest returns to pending (compensate) reopen their date and leave the sealed
totals, so flush_stale and the count threshold seal them again, once, with the totals consistent."""

from __future__ import annotations

from chalicelib import batching, keys
from chalicelib.workflow.breaker import BreakerConfig
from chalicelib.workflow.compensate import compensate
from chalicelib.workflow.store import WorkflowStore
from tests.functional.control_plane.conftest import ControlPlane
from tests.functional.control_plane.test_batching import T0, _Collector, _put_files


def _fail(cp: ControlPlane, manifest_id: str) -> dict:
    """The workflow's saga for a failed run of ``manifest_id``: running, then compensated."""
    store = WorkflowStore(cp.clients["dynamodb"], cp.res.table)
    arn = f"arn:aws:states:us-east-1:123456789012:execution:convert:{manifest_id}"
    assert store.start_run(manifest_id, arn, "2030-01-02T03:04:05.000000Z", replay=False) is not None
    payload = {"manifest_id": manifest_id, "execution_arn": arn, "error": {"Error": "GlueFailed", "Cause": "x"}}
    shards = int(cp.env["SHARD_COUNT"])
    return compensate(
        payload, store, cp.clients["s3"], None, max_attempts=3, shard_count=shards, breaker_cfg=BreakerConfig()
    )


def test_failed_past_date_manifest_reopens_the_closed_date_and_flush_reseals_it(cp: ControlPlane) -> None:
    # GIVEN a past date drained by flush_stale: one manifest of 3 files, the date closed
    date, shards = "2024-07-01", int(cp.env["SHARD_COUNT"])
    _put_files(cp, date, 3)
    batching.count_arrivals(_Collector(cp).new(), cp.deps())
    [first] = batching.flush_stale(cp.deps(), now=T0)
    store = cp.deps().store
    assert (first.status, first.file_count) == ("sealed", 3) and list(store.open_dates()) == []

    # WHEN its run fails and compensate puts the files back to pending
    assert _fail(cp, first.manifest_id)["requeued"] == 3

    # THEN the date is open again and the files are unsealed again
    assert list(store.open_dates()) == [date]
    totals = store.read_totals(date, shards)
    assert (totals.files, totals.sealed_files, totals.sealed_bytes, totals.unsealed_files) == (3, 0, 0, 3)
    # AND flush_stale seals them into the next batch, then closes the date with the totals balanced
    [again] = batching.flush_stale(cp.deps(), now=T0)
    assert (again.status, again.manifest_id, again.file_count) == ("sealed", keys.manifest_id_for(date, 1), 3)
    totals = store.read_totals(date, shards)
    assert (totals.files, totals.sealed_files, totals.bytes, totals.sealed_bytes, totals.seq) == (3, 3, 300, 300, 2)
    assert list(store.open_dates()) == []


def test_requeued_files_count_toward_the_next_full_batch(cp: ControlPlane) -> None:
    # GIVEN a full batch (BATCH_MAX_FILES=20) sealed by the count, whose run then failed
    date, max_files, shards = "2024-07-02", int(cp.env["BATCH_MAX_FILES"]), int(cp.env["SHARD_COUNT"])
    collector = _Collector(cp)
    _put_files(cp, date, max_files)
    [seal] = batching.count_arrivals(collector.new(), cp.deps()).seals
    assert _fail(cp, seal.manifest_id)["requeued"] == max_files

    # WHEN one more file arrives (the compensation's MODIFY records are not counted)
    _put_files(cp, date, 1, start=max_files)
    result = batching.count_arrivals(collector.new(), cp.deps())

    # THEN the 20 requeued files plus the new one are a full batch again: sealed by the count,
    # not left for flush_stale because sealed_files drifted above the counted files
    assert result.counted == 1
    assert [(o.status, o.file_count) for o in result.seals] == [("sealed", max_files)]
    totals = cp.deps().store.read_totals(date, shards)
    assert (totals.files, totals.sealed_files, totals.unsealed_files) == (max_files + 1, max_files, 1)
