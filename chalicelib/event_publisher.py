"""EventBridge PutEvents adapter: maps ManifestReady to an entry and checks FailedEntryCount.

PutEvents answers 200 even when entries fail; a publisher that only catches exceptions loses
events silently. This one raises ``PublishError`` naming the failed entries instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from chalicelib.events import MANIFEST_READY, SOURCE

_MAX_ENTRIES = 10  # PutEvents limit per request


class PublishError(RuntimeError):
    """EventBridge rejected at least one entry (throttled, internal error, bad bus...)."""


class EventPublisher(Protocol):
    def publish(self, detail_type: str, details: Sequence[Mapping[str, Any]]) -> None: ...


def manifest_ready_detail(item: Mapping[str, Any]) -> dict[str, Any]:
    """ManifestReady detail from a MANIFEST item (pure): the fields consumers rely on."""
    return {
        "manifest_id": str(item["manifest_id"]),
        "manifest_uri": str(item["manifest_uri"]),
        "date_prefix": str(item["date_prefix"]),
        "file_count": int(item["file_count"]),
        "bytes": int(item["bytes"]),
    }


class EventBridgePublisher:
    def __init__(self, client: Any, bus_name: str, source: str = SOURCE) -> None:
        self._client = client
        self._bus = bus_name
        self._source = source

    def publish(self, detail_type: str, details: Sequence[Mapping[str, Any]]) -> None:
        for start in range(0, len(details), _MAX_ENTRIES):
            chunk = details[start : start + _MAX_ENTRIES]
            entries = [
                {"Source": self._source, "DetailType": detail_type, "Detail": json.dumps(d), "EventBusName": self._bus}
                for d in chunk
            ]
            response = self._client.put_events(Entries=entries)
            if response.get("FailedEntryCount", 0):
                failed = [e for e in response.get("Entries", []) if e.get("ErrorCode")]
                codes = sorted({f"{e['ErrorCode']}: {e.get('ErrorMessage', '')}" for e in failed})
                raise PublishError(f"{len(failed)} of {len(entries)} {detail_type} entries failed: {'; '.join(codes)}")


def publish_manifest_ready(publisher: EventPublisher, items: Sequence[Mapping[str, Any]]) -> None:
    publisher.publish(MANIFEST_READY, [manifest_ready_detail(i) for i in items])
