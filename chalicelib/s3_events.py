"""Parse SQS message bodies carrying S3 event notifications (pure; no I/O).

Accepts the notification as S3 sends it to SQS, or wrapped in an SNS envelope (S3 → SNS → SQS
without raw delivery). ``s3:TestEvent`` (sent once when the notification is configured) is
recognised and yields nothing. Keys arrive URL-encoded with ``+`` for space and are decoded
here, once. Anything that is not an S3 notification raises ``PermanentMessageError``: retrying
it can never succeed, so the tracker routes it to the ingest DLQ instead of failing the batch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import unquote_plus

_DATE_PREFIX_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})/")


class PermanentMessageError(ValueError):
    """A message that no retry can fix: not JSON, not an S3 event, missing fields."""


@dataclass(frozen=True)
class S3ObjectCreated:
    bucket: str
    key: str  # decoded
    size: int
    etag: str
    version_id: str | None
    event_time: datetime  # UTC

    @property
    def version_or_etag(self) -> str:
        return self.version_id or self.etag


@dataclass(frozen=True)
class ParsedMessage:
    objects: tuple[S3ObjectCreated, ...]
    is_test_event: bool = False
    other_events: int = 0  # e.g. ObjectRemoved: valid, but not ours to track


def parse_event_time(raw: str) -> datetime:
    """S3 ``eventTime`` (``2024-01-02T03:04:05.678Z``) as an aware UTC datetime."""
    parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_message(body: str) -> ParsedMessage:
    try:
        payload = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise PermanentMessageError(f"body is not JSON: {exc}") from None
    if isinstance(payload, dict) and payload.get("Type") == "Notification" and "Message" in payload:
        try:
            payload = json.loads(payload["Message"])  # SNS envelope: the S3 event is a JSON string inside
        except (TypeError, ValueError) as exc:
            raise PermanentMessageError(f"SNS Message is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise PermanentMessageError("body is not a JSON object")
    if payload.get("Event") == "s3:TestEvent":
        return ParsedMessage(objects=(), is_test_event=True)
    records = payload.get("Records")
    if not isinstance(records, list):
        raise PermanentMessageError("body has no Records list: not an S3 event notification")
    objects: list[S3ObjectCreated] = []
    others = 0
    for index, record in enumerate(records):
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            raise PermanentMessageError(f"record #{index} is not an aws:s3 event")
        if not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            others += 1
            continue
        objects.append(_object_created(record, index))
    return ParsedMessage(objects=tuple(objects), other_events=others)


def _object_created(record: dict[str, Any], index: int) -> S3ObjectCreated:
    try:
        s3 = record["s3"]
        obj = s3["object"]
        bucket = str(s3["bucket"]["name"])
        key = unquote_plus(str(obj["key"]))
        size = int(obj.get("size", 0))
        etag = str(obj.get("eTag") or obj.get("etag") or "")
        version_id = obj.get("versionId") or None
        event_time = parse_event_time(str(record["eventTime"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentMessageError(f"record #{index} is malformed: {type(exc).__name__} {exc}") from None
    if not bucket or not key:
        raise PermanentMessageError(f"record #{index} has an empty bucket or key")
    if not etag and not version_id:
        raise PermanentMessageError(f"record #{index} has neither eTag nor versionId: cannot identify the version")
    return S3ObjectCreated(bucket, key, size, etag, str(version_id) if version_id else None, event_time)


def date_prefix_of(key: str, event_time: datetime, input_prefix: str = "") -> str:
    """The dataset date of an object: a leading ``YYYY-MM-DD/`` (after the input prefix) when it
    is a real calendar date, else the UTC date of the event."""
    rest = key[len(input_prefix) :] if input_prefix and key.startswith(input_prefix) else key
    match = _DATE_PREFIX_RE.match(rest.lstrip("/"))
    if match:
        try:
            return date.fromisoformat(match.group(1)).isoformat()
        except ValueError:
            pass  # 2024-13-45/ is a folder name, not a date
    return event_time.astimezone(UTC).date().isoformat()


def has_allowed_suffix(key: str, suffixes: tuple[str, ...]) -> bool:
    return key.lower().endswith(suffixes)
