"""Files a failed manifest returns to pending (compensate) reopen their date and leave the sealed
totals, so flush_stale and the count threshold seal them again, once, with the totals consistent."""

from __future__ import annotations

from itertools import pairwise

from chalicelib import batching, keys
from chalicelib.tracking_table import TrackingTable
from chalicelib.workflow.breaker import BreakerConfig
from chalicelib.workflow.compensate import compensate
from tests.functional.control_plane.conftest import ControlPlane
from tests.functional.control_plane.test_batching import T0, _Collector, _put_files


def _fail(cp: ControlPlane, manifest_id: str) -> dict:
    """The workflow's saga for a failed run of ``manifest_id``: running, then compensated."""
    store = TrackingTable(cp.clients["dynamodb"], cp.res.table)
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

    # WHEN its run fails and compensate puts the files back to pending (narrowed: batches of 2)
    assert _fail(cp, first.manifest_id)["requeued"] == 3

    # THEN the date is open again and the files are unsealed again
    assert list(store.open_dates()) == [date]
    totals = store.read_totals(date, shards)
    assert (totals.files, totals.sealed_files, totals.sealed_bytes, totals.unsealed_files) == (3, 0, 0, 3)
    # AND flush_stale seals them into the next (narrower) batches, then closes the date with the
    # totals balanced
    again = batching.flush_stale(cp.deps(), now=T0)
    assert [(o.status, o.manifest_id, o.file_count) for o in again] == [
        ("sealed", keys.manifest_id_for(date, 1), 2),
        ("sealed", keys.manifest_id_for(date, 2), 1),
    ]
    totals = store.read_totals(date, shards)
    assert (totals.files, totals.sealed_files, totals.bytes, totals.sealed_bytes, totals.seq) == (3, 3, 300, 300, 3)
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
    # not left for flush_stale because sealed_files drifted above the counted files; the batch is
    # narrowed to half the failed manifest (10), the rest waits for the next seal
    half = max_files // 2
    assert result.counted == 1
    assert [(o.status, o.file_count) for o in result.seals] == [("sealed", half)]
    totals = cp.deps().store.read_totals(date, shards)
    assert (totals.files, totals.sealed_files, totals.unsealed_files) == (max_files + 1, half, half + 1)


def test_a_poison_file_is_narrowed_down_alone_and_only_it_is_quarantined(cp: ControlPlane) -> None:
    # GIVEN 20 files of a past date; every run of a manifest holding file 7 fails as a whole (its
    # worker is killed), every other run would succeed (its files stay claimed by it here)
    date = "2024-07-03"
    _put_files(cp, date, 20)
    poison = keys.file_id("in", f"{date}/f00007.ndjson", "etag")
    outcomes = batching.count_arrivals(_Collector(cp).new(), cp.deps()).seals  # one full batch of 20
    store = TrackingTable(cp.clients["dynamodb"], cp.res.table)
    failed_sizes: list[int] = []
    healthy: dict[str, str] = {}
    # WHEN each manifest with the poison fails, and flush_stale seals again, until nothing is pending
    for _ in range(20):
        outcomes = [o for o in outcomes if o.status == "sealed"]
        if not outcomes:
            break
        for o in outcomes:
            ids = [str(f["file_id"]) for page in store.iter_claimed_file_pages(o.manifest_id) for f in page]
            if poison in ids:
                failed_sizes.append(len(ids))
                _fail(cp, o.manifest_id)
            else:
                healthy.update({fid: o.manifest_id for fid in ids})
        outcomes = batching.flush_stale(cp.deps(), now=T0)
    # THEN the poison's manifests halved down to one file, then it failed alone MAX_ATTEMPTS (3) times
    assert failed_sizes[0] == 20 and failed_sizes[-3:] == [1, 1, 1], failed_sizes
    assert all(b <= -(-a // 2) for a, b in pairwise(failed_sizes) if a > 1), failed_sizes
    files = {
        str(i["file_id"]): i
        for page in store.scan_index_pages(filter_prefix="")
        for i in page
        if str(i.get("pk", "")).startswith("FILE#")
    }
    assert (files[poison]["status"], int(files[poison]["attempts"])) == (keys.QUARANTINED, 3)
    # and no healthy neighbour paid an attempt or was quarantined: all 19 sit in manifests without it
    assert sorted(healthy) == sorted(fid for fid in files if fid != poison)
    assert all(int(files[fid].get("attempts", 0)) == 0 and files[fid]["status"] == keys.CLAIMED for fid in healthy)
