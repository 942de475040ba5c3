"""Single-table key layout of the tracking table, in one place.

Table: partition key ``pk`` (S), sort key ``sk`` (S); global secondary index
``STATUS_INDEX`` on ``gsi1pk`` (S) / ``gsi1sk`` (S), projection ALL (a page of the index is
enough to list files in a manifest). Stream: NEW_IMAGE. TTL attribute ``ttl`` (FILE items only:
COUNTER, SEAL and MANIFEST items never expire, or a reset ``seq`` would collide with old ids).

Items
- FILE      pk=FILE#<file_id>          sk=FILE
            gsi1pk = status key: ``pending#<date>#<shard>`` (write-sharded, so no single
            GSI partition takes every arrival), ``claimed#<manifest_id>`` while a manifest
            owns it, ``converted#<date>#<shard>``, ``skipped#<date>#<shard>``,
            ``quarantined#<date>``, ``held#<manifest_id>`` while a schema-change refusal holds
            it (no attempt spent, never batched or retried until ``ndjson-parquet release``);
            gsi1sk = ``<arrived_at>#<file_id>`` (oldest first).
            After the stream handler adds it to its counter: ``counted=true`` (dedupe of
            redelivered stream records). Claimed: ``manifest_id``, ``claimed_at``.
- COUNTER   pk=COUNTER#<date>          sk=SHARD#<nnn>    files/bytes, ADD only
- SEAL      pk=COUNTER#<date>          sk=SEAL           seq (next batch number), sealed_files,
            sealed_bytes; gsi1pk=``dates#open`` / gsi1sk=<date> while the date may hold pending
            files (flush_stale lists open dates there). Anything that returns files of a closed
            date to pending (compensate) must reopen it: ``batching.reopen_date``.
- MANIFEST  pk=MANIFEST#<manifest_id>  sk=MANIFEST       gsi1pk=manifests#<status>,
            gsi1sk=<created_at>#<id>; manifest_id, date_prefix, seq, status, owner, created_at;
            once sealed: manifest_uri, file_count, bytes, sealed_at; emitted_at after PutEvents.
            ``held`` (its files held by a schema-change refusal): schema_changes, held_at; released
            by the operator, it becomes ``failed`` with released_at (its files are pending again).
- BREAKER   pk=BREAKER                 sk=STATE          circuit-breaker state
"""

from __future__ import annotations

import hashlib

STATUS_INDEX = "status-index"

FILE_SK = "FILE"
MANIFEST_SK = "MANIFEST"
SEAL_SK = "SEAL"

PENDING = "pending"
CLAIMED = "claimed"
CONVERTED = "converted"
SKIPPED = "skipped"
QUARANTINED = "quarantined"
HELD = "held"  # refused by the table's schema policy: waits for the operator (ndjson-parquet release)

MANIFEST_SEALING = "sealing"
MANIFEST_SEALED = "sealed"
MANIFEST_RUNNING = "running"
MANIFEST_SUCCEEDED = "succeeded"
MANIFEST_FAILED = "failed"
MANIFEST_HELD = "held"  # its files are held (schema-change refusal) until released

OPEN_DATES = "dates#open"  # gsi1pk of SEAL items of dates that may still hold pending files


def stable_shard(key: str, shard_count: int) -> int:
    """Shard of an object key: a stable hash (not Python's salted ``hash()``), so every
    process, every Lambda container and every replay agree on it (docs/invariants.md #7)."""
    if shard_count < 1:
        raise ValueError("shard_count must be >= 1")
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shard_count


def file_id(bucket: str, key: str, version_or_etag: str) -> str:
    """Identity of one object version: bucket + key + version id (etag when unversioned).
    An overwrite of the same key is a new version and therefore a new file, by design."""
    raw = "\x00".join((bucket, key, version_or_etag)).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()[:40]


def file_pk(fid: str) -> str:
    return f"FILE#{fid}"


def counter_pk(date_prefix: str) -> str:
    return f"COUNTER#{date_prefix}"


def shard_sk(shard: int) -> str:
    return f"SHARD#{shard:03d}"


def manifest_pk(manifest_id: str) -> str:
    return f"MANIFEST#{manifest_id}"


def pending_status_key(date_prefix: str, shard: int) -> str:
    return f"{PENDING}#{date_prefix}#{shard:03d}"


def claimed_status_key(manifest_id: str) -> str:
    return f"{CLAIMED}#{manifest_id}"


def converted_status_key(date_prefix: str, shard: int) -> str:
    return f"{CONVERTED}#{date_prefix}#{shard:03d}"


def skipped_status_key(date_prefix: str, shard: int) -> str:
    return f"{SKIPPED}#{date_prefix}#{shard:03d}"


def quarantined_status_key(date_prefix: str) -> str:
    return f"{QUARANTINED}#{date_prefix}"


def held_status_key(manifest_id: str) -> str:
    return f"{HELD}#{manifest_id}"


def manifest_status_key(status: str) -> str:
    return f"manifests#{status}"


def manifest_id_for(date_prefix: str, seq: int) -> str:
    """Deterministic manifest id: every invocation racing to seal batch ``seq`` of a date
    computes the same id, so a conditional put on it elects exactly one winner."""
    return f"{date_prefix}-{seq:06d}"
