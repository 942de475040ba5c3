"""bench/fast_moto.py must change moto's speed, never its answers: the load run's exactly-once
check is only as good as the server underneath it."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from bench import fast_moto

TABLE = "fast-moto-check"


def _make_table(ddb: Any) -> None:
    ddb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "gsi1pk", "gsi1sk")],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "status-index",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


def _workload(ddb: Any) -> list[Any]:
    """Puts, updates that move items between index keys (with ties), deletes, then paged reads."""
    for i in random.Random(7).sample(range(60), 60):  # not in key order: the order must come from moto
        ddb.put_item(
            TableName=TABLE,
            Item={
                "pk": {"S": f"FILE#{i % 7}"},
                "sk": {"S": f"{i:03d}"},
                "gsi1pk": {"S": f"pending#{i % 3}"},
                "gsi1sk": {"S": f"t{i % 4}"},  # many ties: the table key must break them
            },
        )
    for i in range(0, 60, 5):
        ddb.update_item(
            TableName=TABLE,
            Key={"pk": {"S": f"FILE#{i % 7}"}, "sk": {"S": f"{i:03d}"}},
            UpdateExpression="SET gsi1pk = :c",
            ExpressionAttributeValues={":c": {"S": "claimed"}},
        )
    for i in range(1, 60, 11):
        ddb.delete_item(TableName=TABLE, Key={"pk": {"S": f"FILE#{i % 7}"}, "sk": {"S": f"{i:03d}"}})
    answers: list[Any] = []
    for status in ("pending#0", "pending#1", "pending#2", "claimed"):
        for forward in (True, False):
            answers.append(
                _paged(
                    ddb,
                    "query",
                    IndexName="status-index",
                    ScanIndexForward=forward,
                    KeyConditionExpression="gsi1pk = :s",
                    ExpressionAttributeValues={":s": {"S": status}},
                )
            )
    answers.append(
        _paged(
            ddb,
            "query",
            KeyConditionExpression="pk = :p AND sk > :k",
            ExpressionAttributeValues={":p": {"S": "FILE#3"}, ":k": {"S": "010"}},
        )
    )
    answers.append(_paged(ddb, "scan"))
    return answers


def _paged(ddb: Any, operation: str, **kwargs: Any) -> list[Any]:
    pages, start = [], None
    while True:
        page = getattr(ddb, operation)(
            TableName=TABLE, Limit=4, **({"ExclusiveStartKey": start} if start else {}), **kwargs
        )
        pages.append([(item["pk"]["S"], item["sk"]["S"]) for item in page["Items"]])
        start = page.get("LastEvaluatedKey")
        if not start:
            return pages


@pytest.fixture
def patched_moto() -> Iterator[None]:
    fast_moto.patch()
    try:
        yield
    finally:
        fast_moto.unpatch()


def test_dynamodb_answers_are_the_same_page_for_page(aws: str) -> None:
    ddb = boto3.client("dynamodb")
    _make_table(ddb)
    stock = _workload(ddb)
    ddb.delete_table(TableName=TABLE)
    fast_moto.patch()
    try:
        _make_table(ddb)
        fast = _workload(ddb)
    finally:
        fast_moto.unpatch()
    assert fast == stock
    assert sum(len(p) for p in stock[-1]) == 60 - len(range(1, 60, 11))  # the scan saw every item


def test_sqs_receive_still_returns_messages_within_retention(aws: str, patched_moto: None) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="fast-moto-check")["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": str(i)} for i in range(10)])
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert sorted(m["Body"] for m in got) == [str(i) for i in range(10)]


def test_sqs_receive_drops_messages_past_retention(aws: str, patched_moto: None) -> None:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="fast-moto-expired", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="old")
    from moto.sqs.models import sqs_backends

    queue = sqs_backends["123456789012"]["us-east-1"].get_queue("fast-moto-expired")
    for message in queue._messages:
        message.sent_timestamp -= 61_000  # sent 61 s ago: past the 60 s retention
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []) == []
