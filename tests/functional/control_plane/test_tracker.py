"""track_files against moto: notifications S3 really produced, poison routing, idempotency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from chalice.test import Client

from app import app
from chalicelib import keys, tracker
from chalicelib.tracking_table import TrackingTable, from_item
from ndjson_parquet.local.pumps import StreamPump
from tests.events import s3_notification_body, sns_wrapped, sqs_event
from tests.functional.control_plane.conftest import ControlPlane
from tests.functional.control_plane.resources import drain

ROOT = str(Path(__file__).resolve().parents[3])


def _files(cp: ControlPlane) -> dict[str, dict]:
    items = cp.clients["dynamodb"].scan(TableName=cp.res.table)["Items"]
    return {i["key"]: i for i in map(from_item, items) if i["sk"] == keys.FILE_SK}


def _notifications(cp: ControlPlane) -> list[str]:
    return [m["Body"] for m in drain(cp.clients["sqs"], cp.res.ingest_queue_url)]


def test_tracks_what_s3_notified(cp: ControlPlane) -> None:
    # GIVEN objects put into the notified bucket: decoded keys, a zero-byte one, a wrong suffix
    s3 = cp.clients["s3"]
    s3.put_object(Bucket=cp.res.input_bucket, Key="2024-05-06/team a/x+1.ndjson", Body=b'{"a":1}\n')
    s3.put_object(Bucket=cp.res.input_bucket, Key="2024-05-06/b.json.gz", Body=b"gz")
    s3.put_object(Bucket=cp.res.input_bucket, Key="2024-05-06/empty.jsonl", Body=b"")
    s3.put_object(Bucket=cp.res.input_bucket, Key="2024-05-06/notes.csv", Body=b"a,b")
    bodies = _notifications(cp)
    assert any("s3:TestEvent" in b for b in bodies)  # moto sends it when the notification is set up

    # WHEN the handler gets them as Lambda would
    with Client(app, stage_name="test", project_dir=ROOT) as client:
        client.lambda_.invoke("track_files", sqs_event(bodies))

    # THEN one FILE per wanted object, keys decoded, zero-byte recorded as skipped, csv not at all
    files = _files(cp)
    assert set(files) == {"2024-05-06/team a/x+1.ndjson", "2024-05-06/b.json.gz", "2024-05-06/empty.jsonl"}
    good = files["2024-05-06/team a/x+1.ndjson"]
    shard = keys.stable_shard(good["key"], int(cp.env["SHARD_COUNT"]))
    assert good["status"] == keys.PENDING and good["size"] == 8 and good["shard"] == shard
    assert good["gsi1pk"] == keys.pending_status_key("2024-05-06", shard)
    assert good["gsi1sk"] == f"{good['arrived_at']}#{good['file_id']}"
    assert good["ttl"] > 0
    empty = files["2024-05-06/empty.jsonl"]
    assert empty["status"] == keys.SKIPPED and empty["gsi1pk"].startswith("skipped#2024-05-06#")
    assert drain(cp.clients["sqs"], cp.res.ingest_dlq_url) == []


def test_same_batch_three_times_changes_nothing(cp: ControlPlane) -> None:
    # GIVEN a batch of 5 notifications
    for i in range(5):
        cp.clients["s3"].put_object(Bucket=cp.res.input_bucket, Key=f"2024-05-06/f{i}.ndjson", Body=b"{}\n")
    bodies = _notifications(cp)
    store = TrackingTable(cp.clients["dynamodb"], cp.res.table)
    settings = cp.settings()
    messages = [tracker.SqsMessage(f"m{i}", b) for i, b in enumerate(bodies)]

    # WHEN SQS delivers it three times and every stream record reaches count_arrivals
    results = [tracker.track_messages(messages, store=store, settings=settings) for _ in range(3)]
    first = _files(cp)
    from chalicelib import batching

    deps = cp.deps()
    StreamPump(
        cp.clients["dynamodbstreams"],
        cp.res.stream_arn,
        lambda recs: batching.count_arrivals([(r["eventName"], r["dynamodb"].get("NewImage")) for r in recs], deps),
    ).pump()

    # THEN one FILE item each, the redeliveries counted as duplicates, the counters at 5
    assert [r.tracked for r in results] == [5, 0, 0]
    assert [r.duplicates for r in results] == [0, 5, 5]
    assert len(first) == 5
    totals = store.read_totals("2024-05-06", settings.shard_count)
    assert (totals.files, totals.bytes) == (5, 15)


def test_poison_message_neither_loses_nor_dlqs_its_neighbours(cp: ControlPlane) -> None:
    good = [s3_notification_body(f"2024-05-06/g{i}.ndjson", etag=f"{i:032d}") for i in range(3)]
    poison = ["{not json", json.dumps({"Records": [{"eventSource": "aws:sqs"}]})]
    event = sqs_event([good[0], poison[0], good[1], poison[1], sns_wrapped(good[2])])

    with Client(app, stage_name="test", project_dir=ROOT) as client:
        client.lambda_.invoke("track_files", event)  # returns normally: the batch is deleted

    assert sorted(_files(cp)) == ["2024-05-06/g0.ndjson", "2024-05-06/g1.ndjson", "2024-05-06/g2.ndjson"]
    dead = drain(cp.clients["sqs"], cp.res.ingest_dlq_url)
    assert sorted(m["Body"] for m in dead) == sorted(poison)  # raw bodies, nothing else
    assert {m["MessageAttributes"]["source_message_id"]["StringValue"] for m in dead} == {"msg-1", "msg-3"}
    assert all(m["MessageAttributes"]["reason"]["StringValue"] for m in dead)


def test_test_event_is_ignored(cp: ControlPlane) -> None:
    bodies = _notifications(cp)  # only the TestEvent so far
    result = tracker.track_messages([tracker.SqsMessage("t", b) for b in bodies], settings=cp.settings())
    assert result.test_events == 1 and result.tracked == 0 and result.dead_lettered == []
    assert _files(cp) == {}


def test_transient_store_error_fails_the_whole_batch(cp: ControlPlane) -> None:
    store_client = cp.clients["dynamodb"]
    stub = Stubber(store_client)
    stub.add_client_error("put_item", service_error_code="ProvisionedThroughputExceededException", http_status_code=400)
    messages = [tracker.SqsMessage("m", s3_notification_body("2024-05-06/a.ndjson"))]
    with stub, pytest.raises(store_client.exceptions.ProvisionedThroughputExceededException):
        tracker.track_messages(messages, store=TrackingTable(store_client, cp.res.table), settings=cp.settings())
    assert _files(cp) == {}  # nothing written; SQS redelivers the batch


def test_unreachable_dlq_fails_the_batch_instead_of_dropping(cp: ControlPlane) -> None:
    settings = cp.settings(INGEST_DLQ_URL=cp.res.ingest_dlq_url + "-missing")
    with pytest.raises(ClientError, match="NonExistentQueue"):
        tracker.track_messages([tracker.SqsMessage("m", "{bad")], settings=settings)


def test_unset_dlq_is_a_clear_error(cp: ControlPlane) -> None:
    from chalicelib.settings import SettingsError

    with pytest.raises(SettingsError, match="INGEST_DLQ_URL"):
        tracker.track_messages([tracker.SqsMessage("m", "{bad")], settings=cp.settings(INGEST_DLQ_URL=""))


def test_stream_pump_can_stop_early_and_resume_without_repeats(cp: ControlPlane) -> None:
    # GIVEN 7 FILE items tracked, so 7 INSERT records on the stream
    for i in range(7):
        cp.clients["s3"].put_object(Bucket=cp.res.input_bucket, Key=f"2024-05-07/f{i}.ndjson", Body=b"{}\n")
    bodies = _notifications(cp)
    store = TrackingTable(cp.clients["dynamodb"], cp.res.table)
    messages = [tracker.SqsMessage(f"m{i}", b) for i, b in enumerate(bodies)]
    tracker.track_messages(messages, store=store, settings=cp.settings())
    seen: list[str] = []
    pump = StreamPump(
        cp.clients["dynamodbstreams"],
        cp.res.stream_arn,
        lambda recs: seen.extend(r["dynamodb"]["NewImage"]["key"]["S"] for r in recs),
        batch_size=3,
    )

    # WHEN the pump is asked to stop after 3 records, then to deliver the rest
    first = pump.pump(max_records=3)
    rest = pump.pump()

    # THEN it stopped after one batch and resumed where it stopped: each record exactly once
    assert (first, rest) == (3, 4)
    assert len(seen) == len(set(seen)) == 7


def test_the_runtime_poll_counts_what_the_full_read_counts_and_reads_no_items(cp: ControlPlane) -> None:
    from ndjson_parquet.local.runtime import read_state

    # GIVEN tracked files of two statuses (a zero-byte one is skipped)
    s3 = cp.clients["s3"]
    for i in range(3):
        s3.put_object(Bucket=cp.res.input_bucket, Key=f"2024-05-08/f{i}.ndjson", Body=b"{}\n")
    s3.put_object(Bucket=cp.res.input_bucket, Key="2024-05-08/empty.ndjson", Body=b"")
    messages = [tracker.SqsMessage(f"m{i}", b) for i, b in enumerate(_notifications(cp))]
    tracker.track_messages(messages, store=TrackingTable(cp.clients["dynamodb"], cp.res.table), settings=cp.settings())
    # WHEN the runtime's poll reads the table, and the end-of-run read does
    poll = read_state(cp.clients["dynamodb"], cp.res.table, counts_only=True)
    full = read_state(cp.clients["dynamodb"], cp.res.table)
    # THEN the same counts by status; the poll holds no items
    assert poll.files_by_status == full.files_by_status == {keys.PENDING: 3, keys.SKIPPED: 1}
    assert poll.manifests_by_status == full.manifests_by_status
    assert (poll.file_items, poll.manifest_items) == ([], [])
    assert len(full.file_items) == 4
    # and it read two attributes of each item, not the items
    polled = list(TrackingTable(cp.clients["dynamodb"], cp.res.table).scan_statuses())
    assert len(polled) >= 4 and all(set(item) <= {"sk", "status"} for item in polled)
