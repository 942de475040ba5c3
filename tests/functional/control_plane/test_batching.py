"""count_arrivals / seal / flush / resume against moto, with real stream records."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from chalicelib import batching, keys
from chalicelib.event_publisher import EventBridgePublisher
from chalicelib.file_store import TrackedFile
from chalicelib.manifest import Manifest
from chalicelib.settings import Settings
from chalicelib.timeutil import TIME_FORMAT
from chalicelib.tracking_table import TrackingTable, to_item
from ndjson_parquet.local.pumps import StreamPump
from tests.conftest import REGION
from tests.functional.control_plane.conftest import ControlPlane
from tests.functional.control_plane.resources import drain

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def _put_files(cp: ControlPlane, date: str, n: int, size: int = 100, start: int = 0, at: datetime = T0) -> None:
    store = TrackingTable(cp.clients["dynamodb"], cp.res.table)
    shards = int(cp.env["SHARD_COUNT"])
    for i in range(start, start + n):
        key = f"{date}/f{i:05d}.ndjson"
        fid = keys.file_id("in", key, "etag")
        arrived = (at + timedelta(milliseconds=i)).strftime(TIME_FORMAT)
        assert store.put_file(
            TrackedFile(fid, "in", key, size, "etag", None, arrived, date, keys.stable_shard(key, shards), "pending", 0)
        )


class _Collector:
    """Reads the stream once per call and returns the new records as (eventName, NewImage)."""

    def __init__(self, cp: ControlPlane) -> None:
        self.batch: list[tuple[str, Any]] = []
        self._pump = StreamPump(cp.clients["dynamodbstreams"], cp.res.stream_arn, self._take, batch_size=1000)

    def _take(self, records: list[dict[str, Any]]) -> None:
        self.batch.extend((r["eventName"], r["dynamodb"].get("NewImage")) for r in records)

    def new(self) -> list[tuple[str, Any]]:
        self.batch = []
        self._pump.pump()
        return self.batch


def _manifest_files(cp: ControlPlane, date: str) -> dict[str, list[str]]:
    """Manifests of a date (ids are <date>-<seq>, consecutive from 0) and the files they list."""
    store, out = TrackingTable(cp.clients["dynamodb"], cp.res.table), {}
    for seq in range(1000):
        item = store.get_manifest(keys.manifest_id_for(date, seq))
        if item is None:
            return out
        bucket, key = item["manifest_uri"].removeprefix("s3://").split("/", 1)
        body = cp.clients["s3"].get_object(Bucket=bucket, Key=key)["Body"].read()
        out[item["manifest_id"]] = [f.uri for f in Manifest.from_json(body).files]
    return out


def _pending(cp: ControlPlane, date: str) -> list[str]:
    store = TrackingTable(cp.clients["dynamodb"], cp.res.table)
    shards = int(cp.env["SHARD_COUNT"])
    return [f.uri for s in range(shards) for page in store.pending_pages(date, s, 100) for f in page]


@pytest.mark.slow
@pytest.mark.usefixtures("atomic_conditional_writes")
def test_racing_sealers_never_share_a_file_and_leave_nothing_pending(cp: ControlPlane) -> None:
    max_files = int(cp.env["BATCH_MAX_FILES"])
    collector = _Collector(cp)
    for round_no in range(8):
        # GIVEN two batches' worth of new files of one date, and their stream records
        date = f"2024-06-{round_no + 1:02d}"
        _put_files(cp, date, 2 * max_files)
        records = collector.new()
        # half the rounds split the records, half give both invocations all of them (redelivery)
        halves = (records[::2], records[1::2]) if round_no % 2 else (records, records)

        # WHEN two count_arrivals invocations run at the same moment
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def run(part: list[tuple[str, Any]], barrier: threading.Barrier = barrier, errors: list = errors) -> None:
            try:
                barrier.wait()
                batching.count_arrivals(part, cp.deps())
            except BaseException as exc:  # surfaced below, a thread cannot fail the test itself
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(h,)) for h in halves]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []

        # THEN two full manifests, disjoint, covering every file; nothing left pending
        manifests = _manifest_files(cp, date)
        listed = [uri for uris in manifests.values() for uri in uris]
        assert sorted(len(u) for u in manifests.values()) == [max_files, max_files], f"round {round_no}"
        assert len(set(listed)) == len(listed) == 2 * max_files
        assert _pending(cp, date) == []


def test_redelivered_stream_records_do_not_make_a_second_manifest(cp: ControlPlane) -> None:
    max_files = int(cp.env["BATCH_MAX_FILES"])
    _put_files(cp, "2024-06-10", max_files + 3)
    records = _Collector(cp).new()
    first = batching.count_arrivals(records, cp.deps())
    again = batching.count_arrivals(records, cp.deps())
    assert [s.status for s in first.seals] == ["sealed"] and first.counted == max_files + 3
    assert again.counted == 0 and again.seals == []
    assert len(_manifest_files(cp, "2024-06-10")) == 1
    totals = TrackingTable(cp.clients["dynamodb"], cp.res.table).read_totals("2024-06-10", 4)
    assert (totals.files, totals.sealed_files, totals.seq) == (max_files + 3, max_files, 1)


def test_modify_and_foreign_records_never_count(cp: ControlPlane) -> None:
    _put_files(cp, "2024-06-11", 2)
    records = _Collector(cp).new()
    modified = [("MODIFY", image) for _, image in records]
    skipped = [("INSERT", {**image, "status": {"S": keys.SKIPPED}}) for _, image in records]
    result = batching.count_arrivals([*modified, *skipped, ("REMOVE", None)], cp.deps())
    assert (result.counted, result.ignored, result.rejected) == (0, 5, 0)


def test_bad_stream_records_are_rejected_without_raising(cp: ControlPlane) -> None:
    _put_files(cp, "2024-06-12", 1)
    good = _Collector(cp).new()
    broken = {"pk": {"S": "FILE#x"}, "sk": {"S": "FILE"}, "status": {"S": "pending"}}  # no file_id/date/size
    garbage = {"sk": {"Q": "??"}}  # not DynamoDB JSON
    result = batching.count_arrivals([("INSERT", broken), ("INSERT", garbage), *good], cp.deps())
    assert (result.counted, result.rejected) == (1, 2)


def test_byte_threshold_seals_before_file_threshold(cp: ControlPlane) -> None:
    _put_files(cp, "2024-06-13", 10, size=1000)
    result = batching.count_arrivals(_Collector(cp).new(), cp.deps(BATCH_MAX_BYTES="3500"))
    sealed = [s for s in result.seals if s.status == "sealed"]
    assert [s.file_count for s in sealed] == [3, 3, 3]  # 3 x 1000 <= 3500 < 4 x 1000; 1000 left unsealed
    assert all(s.bytes <= 3500 for s in sealed)


def test_claiming_from_50000_pending_reads_one_bounded_page_at_a_time() -> None:
    """A botocore Stubber plays a shard holding 50,000 pending files (every page says there is
    more). Its expected params are the assertion: each Query asks for one page of
    ``shard_page_size`` with the previous page's key, and no page is read that is not used."""
    settings = Settings(table_name="t", manifest_bucket="m", event_bus_name="b", shard_count=2, batch_max_files=200)
    page_size = batching.shard_page_size(200, 2)
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url="http://127.0.0.1:9")  # never reached
    stub = Stubber(client)
    status_key = keys.pending_status_key("2024-06-14", 0)
    virtual = 50_000

    def item(i: int, status: str = keys.PENDING) -> dict[str, Any]:
        return to_item(
            {
                "pk": keys.file_pk(f"f{i:06d}"),
                "sk": keys.FILE_SK,
                "file_id": f"f{i:06d}",
                "bucket": "in",
                "key": f"2024-06-14/f{i:06d}.json",
                "size": 10,
                "status": status,
                "gsi1pk": status_key,
                "gsi1sk": f"2030-01-01T00:00:00.000000Z#f{i:06d}",
            }
        )

    def query(shard_key: str, start: int, count: int, after: int | None) -> None:
        expected = {
            "TableName": "t",
            "IndexName": keys.STATUS_INDEX,
            "KeyConditionExpression": "gsi1pk = :k",
            "ExpressionAttributeValues": {":k": {"S": shard_key}},
            "Limit": page_size,
        }
        if after is not None:
            expected["ExclusiveStartKey"] = _last_key(item(after))
        response: dict[str, Any] = {"Items": [item(i) for i in range(start, start + count)]}
        if count and start + count < virtual:
            response["LastEvaluatedKey"] = _last_key(item(start + count - 1))
        stub.add_response("query", response, expected)

    def claims(start: int, count: int) -> None:
        for i in range(start, start + count):
            stub.add_response("update_item", {"Attributes": item(i, keys.CLAIMED)}, {**_ANY_UPDATE, "Key": _key(i)})

    query(status_key, 0, page_size, None)  # shard 0, page 1
    query(keys.pending_status_key("2024-06-14", 1), 0, 0, None)  # shard 1 is empty
    claims(0, page_size)
    query(status_key, page_size, page_size, page_size - 1)  # page 2, only once page 1 is used up
    claims(page_size, 200 - page_size)

    deps = batching.Deps(settings=settings, store=TrackingTable(client, "t"), s3=None, publisher=None)  # type: ignore[arg-type]
    with stub:
        claimed = batching.claim_batch("2024-06-14", "2024-06-14-000000", deps, "2030-01-01T00:00:00.000000Z")
        stub.assert_no_pending_responses()
    assert [f.file_id for f in claimed] == [f"f{i:06d}" for i in range(200)]


_ANY_UPDATE = {
    "TableName": "t",
    "UpdateExpression": ANY,
    "ConditionExpression": ANY,
    "ExpressionAttributeNames": ANY,
    "ExpressionAttributeValues": ANY,
    "ReturnValues": "ALL_NEW",
}


def _key(i: int) -> dict[str, Any]:
    return to_item({"pk": keys.file_pk(f"f{i:06d}"), "sk": keys.FILE_SK})


def _last_key(item: dict[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in ("pk", "sk", "gsi1pk", "gsi1sk")}


def test_resume_seal_finishes_a_crashed_seal_once(cp: ControlPlane) -> None:
    # GIVEN a sealer that won batch 0 and claimed files, then died
    date = "2024-06-15"
    _put_files(cp, date, 5)
    deps = cp.deps()
    mid = keys.manifest_id_for(date, 0)
    stamp = T0.strftime(TIME_FORMAT)
    assert deps.store.begin_seal(mid, date, 0, "dead-owner", stamp)
    claimed = batching.claim_batch(date, mid, deps, stamp)
    assert len(claimed) == 5

    # WHEN recover asks inside the lease, THEN it is refused
    with pytest.raises(batching.SealBusyError):
        batching.resume_seal(mid, deps, now=T0 + timedelta(seconds=10))

    # WHEN recover asks after the lease, twice
    late = T0 + timedelta(seconds=batching.SEAL_LEASE_SECONDS + 1)
    first = batching.resume_seal(mid, deps, now=late)
    second = batching.resume_seal(mid, deps, now=late)

    # THEN the manifest lists the claimed files, SEAL advanced once, the event went out each time
    assert first is not None and (first.status, first.file_count) == ("sealed", 5)
    assert second is not None and second.status == "sealed"
    assert sorted(_manifest_files(cp, date)[mid]) == sorted(f.uri for f in claimed)
    totals = deps.store.read_totals(date, int(cp.env["SHARD_COUNT"]))
    assert (totals.seq, totals.sealed_files) == (1, 5)
    assert len(drain(cp.clients["sqs"], cp.res.events_capture_url)) == 2  # re-emission is by design


def test_resume_seal_drops_an_empty_seal(cp: ControlPlane) -> None:
    deps = cp.deps()
    mid = keys.manifest_id_for("2024-06-16", 0)
    assert deps.store.begin_seal(mid, "2024-06-16", 0, "dead", T0.strftime(TIME_FORMAT))
    outcome = batching.resume_seal(mid, deps, now=T0 + timedelta(days=1))
    assert outcome is not None and outcome.status == "empty"
    assert deps.store.get_manifest(mid) is None  # batch 0 can be sealed again
    assert batching.resume_seal(mid, deps) is None


def test_failed_emission_leaves_the_manifest_sealed_for_recover(cp: ControlPlane) -> None:
    date = "2024-06-17"
    max_files = int(cp.env["BATCH_MAX_FILES"])
    _put_files(cp, date, max_files)
    events_client = boto3.client("events", region_name=REGION)
    stub = Stubber(events_client)
    failed = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "boom"}]}
    stub.add_response("put_events", failed)
    deps = cp.deps()
    deps.publisher = EventBridgePublisher(events_client, cp.env["EVENT_BUS_NAME"])
    with stub:
        result = batching.count_arrivals(_Collector(cp).new(), deps)
    (seal,) = result.seals
    item = deps.store.get_manifest(seal.manifest_id)
    assert seal.status == "sealed" and item["status"] == keys.MANIFEST_SEALED and "emitted_at" not in item
    # recover's path: resume_seal re-emits through the real bus
    batching.resume_seal(seal.manifest_id, cp.deps())
    assert "emitted_at" in deps.store.get_manifest(seal.manifest_id)
    assert len(drain(cp.clients["sqs"], cp.res.events_capture_url)) == 1


def test_flush_waits_for_max_wait_on_today_and_keeps_the_date_open(cp: ControlPlane) -> None:
    today = T0.date().isoformat()
    _put_files(cp, today, 5, at=T0)
    batching.count_arrivals(_Collector(cp).new(), cp.deps())  # opens the date, below threshold
    wait = int(cp.env["BATCH_MAX_WAIT_SECONDS"])
    assert batching.flush_stale(cp.deps(), now=T0 + timedelta(seconds=wait - 1)) == []
    outcomes = batching.flush_stale(cp.deps(), now=T0 + timedelta(seconds=wait + 1))
    assert [(o.status, o.file_count) for o in outcomes] == [("sealed", 5)]
    assert list(cp.deps().store.open_dates()) == [today]  # today is never closed


def test_late_file_reopens_a_closed_date(cp: ControlPlane) -> None:
    date = "2024-06-18"
    _put_files(cp, date, 2)
    collector = _Collector(cp)
    batching.count_arrivals(collector.new(), cp.deps())
    batching.flush_stale(cp.deps(), now=T0)
    assert list(cp.deps().store.open_dates()) == []  # drained past date: closed
    _put_files(cp, date, 1, start=2)
    batching.count_arrivals(collector.new(), cp.deps())
    assert list(cp.deps().store.open_dates()) == [date]
    outcomes = batching.flush_stale(cp.deps(), now=T0)
    assert [(o.status, o.file_count) for o in outcomes] == [("sealed", 1)]


def test_permanent_seal_errors_do_not_block_the_stream_but_transient_ones_retry(cp: ControlPlane) -> None:
    _put_files(cp, "2024-06-19", 1)
    records = _Collector(cp).new()
    for code, raises in (("AccessDeniedException", False), ("ThrottlingException", True)):
        client = boto3.client("dynamodb", region_name=REGION)
        deps = cp.deps()
        deps.store = TrackingTable(client, cp.res.table)
        stub = Stubber(client)
        stub.add_response("update_item", {})  # the counted flag
        stub.add_response("update_item", {})  # the counter ADD
        stub.add_client_error("batch_get_item", service_error_code=code, http_status_code=400)
        with stub:
            if raises:
                with pytest.raises(ClientError, match=code):
                    batching.count_arrivals(records, deps)
            else:
                assert batching.count_arrivals(records, deps).counted == 1


def test_two_versions_of_one_key_go_to_successive_manifests(cp: ControlPlane) -> None:
    """An overwrite of a key is a new version, tracked as its own file. A manifest names a file
    by its URI (the job reads each URI at its version), so one manifest must never list two
    versions of one key: the newer one waits, pending, for the next manifest."""
    date = "2024-06-21"
    store = TrackingTable(cp.clients["dynamodb"], cp.res.table)
    shards = int(cp.env["SHARD_COUNT"])
    key = f"{date}/same.ndjson"
    for i, version in enumerate(("v1", "v2")):
        arrived = (T0 + timedelta(milliseconds=i)).strftime(TIME_FORMAT)
        fid, shard = keys.file_id("in", key, version), keys.stable_shard(key, shards)
        assert store.put_file(TrackedFile(fid, "in", key, 100, version, version, arrived, date, shard, "pending", 0))
    _put_files(cp, date, 2, start=0, at=T0 + timedelta(seconds=1))
    batching.count_arrivals(_Collector(cp).new(), cp.deps())

    first = batching.flush_stale(cp.deps(), now=T0)
    second = batching.flush_stale(cp.deps(), now=T0)

    assert [(o.status, o.file_count) for o in first + second] == [("sealed", 3), ("sealed", 1)]
    manifests = _manifest_files(cp, date)
    assert all(len(set(uris)) == len(uris) for uris in manifests.values())
    versions = []
    for seq in range(2):
        item = store.get_manifest(keys.manifest_id_for(date, seq))
        bucket, mkey = item["manifest_uri"].removeprefix("s3://").split("/", 1)
        body = cp.clients["s3"].get_object(Bucket=bucket, Key=mkey)["Body"].read()
        versions += [f.version_id for f in Manifest.from_json(body).files if f.uri == f"s3://in/{key}"]
    assert versions == ["v1", "v2"]  # arrival order kept across the two manifests
    assert _pending(cp, date) == []
