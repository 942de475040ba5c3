"""track_files: S3 notifications from the ingest queue → one FILE item per object version.

The handler is all-or-nothing per batch and returns no ``batchItemFailures`` (the SQS mapping
has ReportBatchItemFailures turned on by ndjson_parquet/postdeploy.py, which treats that as
"every message succeeded"), so:
- TRANSIENT errors (throttling, 5xx, the DLQ itself unreachable) raise: the whole batch is
  retried, which is safe because every put is idempotent (a redelivery changes nothing);
- PERMANENT per-message errors (not JSON, not an S3 event, malformed record) never raise: the
  raw body goes to the ingest DLQ with a ``reason`` attribute, and the good neighbours in the
  same batch are tracked and deleted normally.

Scope: with INPUT_BUCKET set, a notification about any other bucket (a misrouted notification,
a second bucket wired to the queue by mistake) is a permanent error of configuration: the
message goes to the ingest DLQ with reason ``unexpected_bucket`` (visible, redrivable once the
setting or the wiring is fixed) and none of its records is tracked. Keys of the right bucket
outside INPUT_PREFIX are ignored and counted (``outside_prefix``, metric FilesOutsidePrefix),
not dead-lettered: a bucket-wide notification legitimately carries other prefixes' objects, and
a DLQ full of them would hide real poison messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from chalicelib import aws, keys
from chalicelib.file_store import FileStore, TrackedFile
from chalicelib.observability import (
    DUPLICATE_DELIVERIES,
    FILES_IGNORED,
    FILES_OUTSIDE_PREFIX,
    FILES_SKIPPED,
    FILES_TRACKED,
    MESSAGES_DEAD_LETTERED,
    count,
    logger,
    tracer,
)
from chalicelib.s3_events import (
    PermanentMessageError,
    S3ObjectCreated,
    date_prefix_of,
    has_allowed_suffix,
    parse_message,
)
from chalicelib.settings import Settings, SettingsError, get_settings
from chalicelib.timeutil import format_time
from chalicelib.tracking_table import TrackingTable
from chalicelib.ttl import expires_at


@dataclass(frozen=True)
class SqsMessage:
    message_id: str
    body: str


class DeadLetterSink(Protocol):
    def send(self, message: SqsMessage, reason: str) -> None: ...


class SqsDeadLetterSink:
    """Sends a poison message's raw body to the ingest DLQ, with why, for ``etl redrive``."""

    def __init__(self, client: Any, queue_url: str) -> None:
        if not queue_url:
            raise SettingsError("environment variable INGEST_DLQ_URL is required to route poison messages")
        self._sqs = client
        self._url = queue_url

    def send(self, message: SqsMessage, reason: str) -> None:
        self._sqs.send_message(
            QueueUrl=self._url,
            MessageBody=message.body,
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": reason[:1000]},
                "source_message_id": {"DataType": "String", "StringValue": message.message_id or "unknown"},
            },
        )


@dataclass
class TrackResult:
    tracked: int = 0
    duplicates: int = 0
    skipped: int = 0  # zero-byte objects: recorded, never converted
    ignored: int = 0  # wrong suffix or outside the input prefix, other event types
    outside_prefix: int = 0  # of those ignored: keys outside INPUT_PREFIX
    test_events: int = 0
    dead_lettered: list[str] = field(default_factory=list)  # message ids


def to_tracked_file(obj: S3ObjectCreated, settings: Settings) -> TrackedFile:
    """The FILE record of one object (pure): identity, date, shard, status and expiry."""
    fid = keys.file_id(obj.bucket, obj.key, obj.version_or_etag)
    return TrackedFile(
        file_id=fid,
        bucket=obj.bucket,
        key=obj.key,
        size=obj.size,
        etag=obj.etag,
        version_id=obj.version_id,
        arrived_at=format_time(obj.event_time),  # fixed width: string order is time order
        date_prefix=date_prefix_of(obj.key, obj.event_time, settings.input_prefix),
        shard=keys.stable_shard(obj.key, settings.shard_count),
        status=keys.PENDING if obj.size > 0 else keys.SKIPPED,
        expires_at=expires_at(obj.event_time, settings.ttl_days),
    )


UNEXPECTED_BUCKET = "unexpected_bucket"  # DLQ reason: a notification about a bucket other than INPUT_BUCKET


def is_expected_bucket(obj: S3ObjectCreated, settings: Settings) -> bool:
    return not settings.input_bucket or obj.bucket == settings.input_bucket


def is_inside_prefix(obj: S3ObjectCreated, settings: Settings) -> bool:
    return not settings.input_prefix or obj.key.startswith(settings.input_prefix)


def is_wanted(obj: S3ObjectCreated, settings: Settings) -> bool:
    return is_inside_prefix(obj, settings) and has_allowed_suffix(obj.key, settings.allowed_suffixes)


def _dead_letter(
    message: SqsMessage, reason: str, sink: DeadLetterSink | None, settings: Settings, result: TrackResult
) -> DeadLetterSink:
    sink = sink or SqsDeadLetterSink(aws.client("sqs"), settings.ingest_dlq_url)
    sink.send(message, reason)  # raises on failure: then the batch is retried
    result.dead_lettered.append(message.message_id)
    logger.warning("message sent to ingest DLQ", extra={"message_id": message.message_id, "reason": reason})
    return sink


@tracer.capture_method(capture_response=False)
def track_messages(
    messages: Iterable[SqsMessage],
    *,
    store: FileStore | None = None,
    dead_letters: DeadLetterSink | None = None,
    settings: Settings | None = None,
) -> TrackResult:
    settings = settings or get_settings()
    store = store or TrackingTable(aws.client("dynamodb"), settings.table_name)
    result = TrackResult()
    for message in messages:
        try:
            parsed = parse_message(message.body)
        except PermanentMessageError as exc:
            dead_letters = _dead_letter(message, str(exc), dead_letters, settings, result)
            continue
        if parsed.is_test_event:
            result.test_events += 1
            continue
        foreign = sorted({o.bucket for o in parsed.objects if not is_expected_bucket(o, settings)})
        if foreign:
            logger.warning("notification for another bucket", extra={"buckets": foreign[:5]})
            dead_letters = _dead_letter(message, UNEXPECTED_BUCKET, dead_letters, settings, result)
            continue
        result.ignored += parsed.other_events
        for obj in parsed.objects:
            _track_one(obj, store, settings, result)
    count(FILES_TRACKED, result.tracked)
    count(DUPLICATE_DELIVERIES, result.duplicates)
    count(FILES_SKIPPED, result.skipped)
    count(FILES_IGNORED, result.ignored)
    count(FILES_OUTSIDE_PREFIX, result.outside_prefix)
    count(MESSAGES_DEAD_LETTERED, len(result.dead_lettered))
    logger.info(
        "tracked batch",
        extra={
            "tracked": result.tracked,
            "duplicates": result.duplicates,
            "skipped": result.skipped,
            "ignored": result.ignored,
            "outside_prefix": result.outside_prefix,
            "dead_lettered": len(result.dead_lettered),
        },
    )
    return result


def _track_one(obj: S3ObjectCreated, store: FileStore, settings: Settings, result: TrackResult) -> None:
    if not is_wanted(obj, settings):
        result.ignored += 1
        result.outside_prefix += 0 if is_inside_prefix(obj, settings) else 1
        logger.debug("ignored object", extra={"bucket": obj.bucket, "key": obj.key})
        return
    record = to_tracked_file(obj, settings)
    if not store.put_file(record):
        result.duplicates += 1
        logger.debug("duplicate delivery", extra={"bucket": obj.bucket, "key": obj.key, "file_id": record.file_id})
    elif record.status == keys.SKIPPED:
        result.skipped += 1
    else:
        result.tracked += 1
