"""Pumps that play Lambda's event-source mappings against moto (or any endpoint).

``pump_sqs`` drains a queue in batches into a handler and deletes a batch only when the
handler returned, as the SQS mapping does; ``StreamPump`` reads a table's stream (DynamoDB
Streams GetShardIterator/GetRecords) and hands records, in the shape Lambda delivers them, to
a handler. The local runtime and the end-to-end tests use them to drive the same service
functions (``tracker.track_messages``, ``batching.count_arrivals``) the Chalice handlers call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from chalicelib.tracker import SqsMessage

_SQS_RECEIVE_MAX = 10  # ReceiveMessage returns at most 10 per call


def pump_sqs(
    sqs: Any,
    queue_url: str,
    handle: Callable[[list[SqsMessage]], Any],
    batch_size: int = 100,
    max_batches: int | None = None,
    requeue_sqs: Any = None,
) -> int:
    """Deliver the queue's messages in batches of up to ``batch_size``; returns messages handled.

    If ``handle`` raises, the batch is not deleted (it is made visible again at once, where
    Lambda waits for its visibility timeout) and the exception propagates. ``requeue_sqs``
    (default ``sqs``) is the client that makes it visible again: that shortcut is the runtime's,
    not the function's (Lambda never calls ChangeMessageVisibility, so the function's role has no
    such grant), hence the local runtime passes its administrator's client."""
    handled = batches = 0
    while max_batches is None or batches < max_batches:
        raw: list[dict[str, Any]] = []
        while len(raw) < batch_size:
            got = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=min(_SQS_RECEIVE_MAX, batch_size - len(raw)), WaitTimeSeconds=0
            ).get("Messages", [])
            if not got:
                break
            raw.extend(got)
        if not raw:
            break
        try:
            handle([SqsMessage(m["MessageId"], m["Body"]) for m in raw])
        except BaseException:  # an error, or the step's abrupt exit (an injected fault): re-raised below
            # Lambda leaves a failed batch on the queue: it reappears after the visibility
            # timeout (and counts towards maxReceiveCount). Locally it reappears at once.
            for start in range(0, len(raw), _SQS_RECEIVE_MAX):
                chunk = raw[start : start + _SQS_RECEIVE_MAX]
                (requeue_sqs or sqs).change_message_visibility_batch(
                    QueueUrl=queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                        for i, m in enumerate(chunk)
                    ],
                )
            raise
        for start in range(0, len(raw), _SQS_RECEIVE_MAX):
            chunk = raw[start : start + _SQS_RECEIVE_MAX]
            sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        handled += len(raw)
        batches += 1
    return handled


def to_lambda_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda delivers it: epoch-seconds creation time, eventSourceARN."""
    out = dict(record)
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = created.timestamp()
    elif isinstance(created, str):
        dynamodb["ApproximateCreationDateTime"] = datetime.fromisoformat(created).timestamp()
    out["dynamodb"] = dynamodb
    out["eventSourceARN"] = stream_arn
    return out


class StreamPump:
    """Reads every shard of a DynamoDB stream from TRIM_HORIZON, remembering where it stopped."""

    def __init__(
        self,
        streams: Any,
        stream_arn: str,
        handle: Callable[[list[dict[str, Any]]], Any],
        batch_size: int = 100,
        discover_every_seconds: float = 5.0,
    ):
        self._streams = streams
        self._arn = stream_arn
        self._handle = handle
        self._batch_size = batch_size
        self._iterators: dict[str, str | None] = {}
        self._shards: list[str] = []
        self._ended: set[str] = set()  # shards already read to their end when last described
        self._discover_every = discover_every_seconds
        self._discovered_at = -math.inf

    def _shard_ids(self) -> list[str]:
        """The stream's shards, described again every few seconds (as Lambda's event source
        discovers new shards) and whenever one has ended: the pump runs several times a second,
        and a DescribeStream each time would cost more than the reads."""
        ended = {s for s in self._shards if self._iterators.get(s, "") is None}
        if ended - self._ended or time.monotonic() - self._discovered_at >= self._discover_every:
            description = self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"]
            self._shards = [shard["ShardId"] for shard in description.get("Shards", [])]
            self._ended = {s for s in self._shards if self._iterators.get(s, "") is None}
            self._discovered_at = time.monotonic()
        return self._shards

    def pump(self, max_records: int | None = None) -> int:
        """Deliver every record available now (or stop once ``max_records`` were delivered);
        returns how many were delivered."""
        delivered = 0
        for shard_id in self._shard_ids():
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self._streams.get_shard_iterator(
                    StreamArn=self._arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            while self._iterators[shard_id]:
                response = self._streams.get_records(ShardIterator=self._iterators[shard_id], Limit=self._batch_size)
                records = response.get("Records", [])
                if not records:
                    break  # keep the old iterator: moto hands out a fresh one per call, both are valid
                # Only advance after the handler returned: a raising batch is delivered again.
                self._handle([to_lambda_record(r, self._arn) for r in records])
                self._iterators[shard_id] = response.get("NextShardIterator")
                delivered += len(records)
                if max_records is not None and delivered >= max_records:
                    return delivered
        return delivered
