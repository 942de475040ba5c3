from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given
from hypothesis import strategies as st

from chalicelib import backoff, keys
from chalicelib.tracking_table import TrackingTable


@given(st.integers(min_value=0, max_value=60))
def test_delay_is_jittered_within_the_exponential_cap(attempt: int) -> None:
    delay = backoff.backoff_delay(attempt, base=0.05, cap=2.0)
    assert 0 <= delay <= min(2.0, 0.05 * 2**attempt)


def test_unprocessed_keys_are_asked_again_after_a_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[int] = []
    monkeypatch.setattr("chalicelib.tracking_table.sleep_before_retry", pauses.append)
    ddb = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    pk = keys.counter_pk("2026-01-01")
    shard = {"pk": {"S": pk}, "sk": {"S": keys.shard_sk(0)}, "files": {"N": "2"}, "bytes": {"N": "10"}}
    seal_key = {"pk": {"S": pk}, "sk": {"S": keys.SEAL_SK}}
    with Stubber(ddb) as stub:
        # DynamoDB answers the shard and leaves the SEAL key unprocessed (throttled)
        stub.add_response(
            "batch_get_item",
            {"Responses": {"t": [shard]}, "UnprocessedKeys": {"t": {"Keys": [seal_key], "ConsistentRead": True}}},
        )
        stub.add_response("batch_get_item", {"Responses": {"t": []}, "UnprocessedKeys": {}})
        totals = TrackingTable(ddb, "t").read_totals("2026-01-01", shard_count=1)
        stub.assert_no_pending_responses()
    assert pauses == [1]
    assert totals.files == 2
