"""StreamPump's shard discovery: DescribeStream only every few seconds or when a shard ended,
never once per pump (the local runtime pumps several times a second). A botocore Stubber plays
the stream: it fails the test on any call the pump should not make, and on a missing one."""

from __future__ import annotations

from typing import Any

from botocore.stub import Stubber

from ndjson_parquet.local.pumps import StreamPump
from ndjson_parquet.sessions import new_session

S1, S2 = "shardId-00000001700000000000-00000001", "shardId-00000001700000000000-00000002"
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"


def _client() -> Any:
    return new_session().client(
        "dynamodbstreams", region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )


def _record(seq: str) -> dict[str, Any]:
    # sequence numbers are at least 21 characters
    return {"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"S": seq}}, "SequenceNumber": seq.zfill(21)}}


def _describe(stub: Stubber, *shards: str) -> None:
    stub.add_response(
        "describe_stream",
        {"StreamDescription": {"Shards": [{"ShardId": s} for s in shards]}},
        {"StreamArn": ARN},
    )


def _iterator(stub: Stubber, shard: str) -> None:
    stub.add_response(
        "get_shard_iterator",
        {"ShardIterator": f"it-{shard[-1]}"},
        {"StreamArn": ARN, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"},
    )


def _records(stub: Stubber, iterator: str, records: list[dict[str, Any]], next_iterator: str | None) -> None:
    response: dict[str, Any] = {"Records": records}
    if next_iterator is not None:
        response["NextShardIterator"] = next_iterator
    stub.add_response("get_records", response, {"ShardIterator": iterator, "Limit": 100})


def test_pumps_within_the_interval_describe_the_stream_once() -> None:
    # GIVEN a stream of one shard and a pump that rediscovers shards every hour
    client = _client()
    seen: list[str] = []
    pump = StreamPump(client, ARN, lambda recs: seen.extend(r["dynamodb"]["Keys"]["pk"]["S"] for r in recs), 100, 3600)
    with Stubber(client) as stub:
        _describe(stub, S1)
        _iterator(stub, S1)
        _records(stub, "it-1", [_record("1")], "it-1-b")
        _records(stub, "it-1-b", [], "it-1-c")
        # WHEN it pumps three times: the stub has one DescribeStream only
        _records(stub, "it-1-b", [_record("2")], "it-1-d")
        _records(stub, "it-1-d", [], "it-1-e")
        _records(stub, "it-1-d", [], "it-1-f")
        delivered = [pump.pump(), pump.pump(), pump.pump()]
        # THEN every record once, in order, and no call left unmade
        stub.assert_no_pending_responses()
    assert delivered == [1, 1, 0]
    assert seen == ["1", "2"]


def test_an_ended_shard_makes_the_next_pump_find_its_child() -> None:
    # GIVEN a shard that ends (no NextShardIterator) and a child shard the stream lists afterwards
    client = _client()
    seen: list[str] = []
    pump = StreamPump(client, ARN, lambda recs: seen.extend(r["dynamodb"]["Keys"]["pk"]["S"] for r in recs), 100, 3600)
    with Stubber(client) as stub:
        _describe(stub, S1)
        _iterator(stub, S1)
        _records(stub, "it-1", [_record("1")], None)
        # WHEN the next pump runs, well inside the interval
        _describe(stub, S1, S2)
        _iterator(stub, S2)
        _records(stub, "it-2", [_record("2")], "it-2-b")
        _records(stub, "it-2-b", [], "it-2-c")
        # and once more: the ended shard does not make it describe again
        _records(stub, "it-2-b", [], "it-2-d")
        delivered = [pump.pump(), pump.pump(), pump.pump()]
        stub.assert_no_pending_responses()
    # THEN the child's records arrive on the second pump, each record once
    assert delivered == [1, 1, 0]
    assert seen == ["1", "2"]


def test_past_the_interval_each_pump_describes_again() -> None:
    # GIVEN a pump whose discovery interval has always passed
    client = _client()
    pump = StreamPump(client, ARN, lambda recs: None, 100, 0.0)
    with Stubber(client) as stub:
        _describe(stub, S1)
        _iterator(stub, S1)
        _records(stub, "it-1", [], "it-1-b")
        _describe(stub, S1)
        _records(stub, "it-1", [], "it-1-c")
        # WHEN it pumps twice; THEN it described the stream before each
        assert [pump.pump(), pump.pump()] == [0, 0]
        stub.assert_no_pending_responses()
