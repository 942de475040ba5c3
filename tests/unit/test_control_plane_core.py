from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from chalicelib import batching, keys
from chalicelib.event_publisher import EventBridgePublisher, PublishError, manifest_ready_detail
from chalicelib.events import MANIFEST_READY, SOURCE
from chalicelib.file_store import DateTotals, batch_is_full

ITEM = {"manifest_id": "2024-01-01-000000", "manifest_uri": "s3://m/k.json", "date_prefix": "2024-01-01"}


def _client():
    return boto3.client("events", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_publisher_sends_in_chunks_of_ten_with_the_contract() -> None:
    client = _client()
    stub = Stubber(client)
    details = [{**ITEM, "manifest_id": f"m{i}", "file_count": i, "bytes": 10 * i} for i in range(12)]
    for chunk in (details[:10], details[10:]):
        entries = [
            {"Source": SOURCE, "DetailType": MANIFEST_READY, "Detail": json.dumps(d), "EventBusName": "bus"}
            for d in chunk
        ]
        stub.add_response(
            "put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e"}] * len(chunk)}, {"Entries": entries}
        )
    with stub:
        EventBridgePublisher(client, "bus").publish(MANIFEST_READY, details)
        stub.assert_no_pending_responses()


def test_publisher_raises_on_failed_entries() -> None:
    client = _client()
    stub = Stubber(client)
    response = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}]}
    stub.add_response("put_events", response)
    with stub, pytest.raises(PublishError, match="ThrottlingException"):
        EventBridgePublisher(client, "bus").publish(MANIFEST_READY, [{**ITEM, "file_count": 1, "bytes": 1}])


def test_manifest_ready_detail_has_exactly_the_documented_fields() -> None:
    item = {**ITEM, "file_count": 3, "bytes": 30, "status": "sealed", "owner": "x", "pk": "MANIFEST#..."}
    assert manifest_ready_detail(item) == {**ITEM, "file_count": 3, "bytes": 30}


@pytest.mark.parametrize(
    ("files", "nbytes", "sealed_files", "sealed_bytes", "full"),
    [
        (199, 0, 0, 0, False),
        (200, 0, 0, 0, True),
        (400, 0, 200, 0, True),
        (399, 0, 200, 0, False),
        (1, 700, 0, 0, True),
    ],
)
def test_batch_is_full(files: int, nbytes: int, sealed_files: int, sealed_bytes: int, full: bool) -> None:
    totals = DateTotals("d", files=files, bytes=nbytes, sealed_files=sealed_files, sealed_bytes=sealed_bytes)
    assert batch_is_full(totals, 200, 700) is full


def test_unsealed_never_negative() -> None:
    # a flush may claim a file before its stream record is counted
    assert DateTotals("d", files=3, bytes=30, sealed_files=5, sealed_bytes=50).unsealed_files == 0


@given(st.integers(1, 10_000), st.integers(1, 64))
def test_shard_page_size_bounded(max_files: int, shards: int) -> None:
    size = batching.shard_page_size(max_files, shards)
    assert 1 <= size <= max_files
    assert size * shards >= max_files or size == max_files  # one page per shard can fill a batch


def _image(**over: dict) -> dict:
    base = {
        "pk": {"S": "FILE#a"},
        "sk": {"S": keys.FILE_SK},
        "file_id": {"S": "a"},
        "date_prefix": {"S": "2024-01-01"},
        "shard": {"N": "3"},
        "size": {"N": "10"},
        "status": {"S": keys.PENDING},
    }
    return {**base, **over}


def test_arrived_file_only_for_pending_file_inserts() -> None:
    from chalicelib.tracking_table import from_item

    assert batching.arrived_file("INSERT", from_item(_image())) == batching.ArrivedFile("a", "2024-01-01", 3, 10)
    assert batching.arrived_file("MODIFY", from_item(_image())) is None
    assert batching.arrived_file("INSERT", from_item(_image(status={"S": keys.SKIPPED}))) is None
    assert batching.arrived_file("INSERT", from_item(_image(sk={"S": keys.MANIFEST_SK}))) is None
    assert batching.arrived_file("REMOVE", None) is None
    broken = from_item(_image())
    del broken["size"]
    with pytest.raises(ValueError, match="size"):
        batching.arrived_file("INSERT", broken)
