"""What the control plane needs from its tracking store, as plain dataclasses and a Protocol.

The service modules (tracker, batching) depend only on ``FileStore``; ``TrackingTable``
(chalicelib/tracking_table.py) is the production adapter. Keeping the decisions here pure makes
"is this batch full" and "how much is unsealed" testable without any AWS.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ObjectVersion:
    """The S3 object version a FILE item stands for."""

    file_id: str
    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None
    arrived_at: str  # ISO-8601 UTC, fixed width so it sorts

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class TrackedFile(ObjectVersion):
    """One object version as the tracker records it (a new FILE item)."""

    date_prefix: str
    shard: int
    status: str  # keys.PENDING or keys.SKIPPED
    expires_at: int


@dataclass(frozen=True)
class FileRef(ObjectVersion):
    """A FILE as read back from the status index or a claim (enough to list it in a manifest)."""

    sort_key: str = ""  # gsi1sk: arrival order across shards
    # Narrowing (chalicelib/workflow/compensate.py): after its manifest failed as a whole, the file
    # is sealed again only into a manifest of at most this many files (None: no limit).
    batch_limit: int | None = None


@dataclass(frozen=True)
class ShardCounter:
    """One shard counter of a date as read: its file count and its age hint.

    ``pending_since`` (ISO-8601 UTC or None) is a hint, never a decision: the arrival time of the
    oldest file counted on this shard since the hint was last refreshed. Counting sets it only if
    absent (``if_not_exists``), so it is never younger than the oldest counted file still pending,
    except when the index lagged behind a refresh (then flush_stale's own read seals that file)."""

    shard: int
    files: int = 0
    pending_since: str | None = None


@dataclass(frozen=True)
class DateTotals:
    """Sum of a date's shard counters and its SEAL item, read in one consistent batch get."""

    date_prefix: str
    files: int = 0
    bytes: int = 0
    seq: int = 0
    sealed_files: int = 0
    sealed_bytes: int = 0
    is_open: bool = False
    shards: tuple[ShardCounter, ...] = ()  # the counters that exist, by shard

    @property
    def pending_since(self) -> str | None:
        """The oldest age hint of the date's shards (the ISO stamps sort as times), or None."""
        return min((c.pending_since for c in self.shards if c.pending_since), default=None)

    @property
    def unsealed_files(self) -> int:
        # Can dip below zero for a moment: a flush may claim a file before its stream record is counted.
        return max(0, self.files - self.sealed_files)

    @property
    def unsealed_bytes(self) -> int:
        return max(0, self.bytes - self.sealed_bytes)


def batch_is_full(totals: DateTotals, max_files: int, max_bytes: int) -> bool:
    return totals.unsealed_files >= max_files or totals.unsealed_bytes >= max_bytes


class FileStore(Protocol):
    # tracker
    def put_file(self, f: TrackedFile) -> bool: ...

    # counting (stream)
    def count_files(
        self, date_prefix: str, shard: int, files: Sequence[tuple[str, int]], oldest_arrival: str | None = None
    ) -> int: ...
    def set_pending_since(self, date_prefix: str, shard: int, files_seen: int, value: str | None) -> bool: ...
    def read_totals(self, date_prefix: str, shard_count: int) -> DateTotals: ...
    def open_date(self, date_prefix: str) -> None: ...
    def close_date(self, date_prefix: str, sealed_files_seen: int, now: str) -> bool: ...
    def open_dates(self, page_size: int = 100) -> Iterator[str]: ...

    # sealing
    def begin_seal(self, manifest_id: str, date_prefix: str, seq: int, owner: str, now: str) -> bool: ...
    def abandon_seal(self, manifest_id: str, owner: str) -> bool: ...
    def pending_pages(self, date_prefix: str, shard: int, page_size: int) -> Iterator[list[FileRef]]: ...
    def claim_file(self, file_id: str, manifest_id: str, now: str) -> FileRef | None: ...
    def claimed_pages(self, manifest_id: str, page_size: int) -> Iterator[list[FileRef]]: ...
    def mark_sealed(self, manifest_id: str, manifest_uri: str, file_count: int, total_bytes: int, now: str) -> bool: ...
    def advance_seal(self, date_prefix: str, seq: int, files: int, total_bytes: int) -> bool: ...
    def mark_emitted(self, manifest_id: str, now: str) -> None: ...
    def get_manifest(self, manifest_id: str) -> dict[str, Any] | None: ...
