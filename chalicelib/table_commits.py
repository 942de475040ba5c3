"""Whether the Iceberg table holds a manifest's commit, read from the catalog's pointer and the
table's metadata JSON with boto3 and the standard library (no pyiceberg in Lambda).

Compensate asks this before undoing a failed run: a run that committed and then failed (the
driver died after the commit, Glue reported a failure afterwards) is rolled forward, never undone
and never re-sealed, or the manifest's rows would be in the table twice (docs/invariants.md #11).

Only the catalog's pointer says which metadata file is current (an attempt that lost the
compare-and-swap also wrote one), so it is read first: the Glue Data Catalog's table parameter
``metadata_location`` in AWS, the SQL catalog's ``iceberg_tables`` row locally. The snapshots of
the current lineage (current snapshot, then its parents) carry the ``manifest_id`` the job's commit
wrote into their summary (glue/table.py). ``current_metadata`` is the one reader of that pointer
and file: Compensate's check and ``ndjson-parquet schema`` (ndjson_parquet/commands/schema.py) use it.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from botocore.exceptions import ClientError

# S3 errors that mean the object the catalog points at is not there.
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "404"})


class MetadataMissingError(RuntimeError):
    """The catalog points at a metadata file that does not exist (deleted, or another bucket)."""


@dataclass(frozen=True)
class TableRef:
    """The table as the job's arguments name it (``TABLE_*`` settings); ``catalog_uri``: the SQL
    catalog's ``sqlite:///path`` locally."""

    catalog: str
    namespace: str
    name: str
    catalog_uri: str = ""


def _metadata_location(ref: TableRef, glue: Any) -> str | None:
    if ref.catalog == "glue":
        try:
            table = glue.get_table(DatabaseName=ref.namespace, Name=ref.name)["Table"]
        except glue.exceptions.EntityNotFoundException:
            return None  # no manifest was ever committed
        return (table.get("Parameters") or {}).get("metadata_location")
    path = ref.catalog_uri.removeprefix("sqlite:///")
    if not Path(path).exists():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as con:
        row = con.execute(
            "select metadata_location from iceberg_tables where table_namespace = ? and table_name = ?",
            (ref.namespace, ref.name),
        ).fetchone()
    return row[0] if row else None


def _read(location: str, s3: Any) -> bytes:
    parsed = urlparse(location)
    try:
        if parsed.scheme in ("s3", "s3a"):
            return s3.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"].read()
        return Path(unquote(parsed.path) if parsed.scheme == "file" else location).read_bytes()
    except FileNotFoundError:
        raise MetadataMissingError(f"the catalog points at {location}, which does not exist") from None
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in _MISSING_CODES:
            raise
        raise MetadataMissingError(f"the catalog points at {location}, which does not exist") from None


def current_metadata(ref: TableRef, s3: Any, glue: Any) -> tuple[str, dict[str, Any]] | None:
    """The current metadata file's location and its JSON, or None when the table does not exist
    yet (no manifest was committed). Raises ``MetadataMissingError`` when the file is gone."""
    location = _metadata_location(ref, glue)
    if not location:
        return None
    return location, json.loads(_read(location, s3))


def lineage(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """The current snapshot and its ancestors, newest first (pure)."""
    by_id = {s["snapshot-id"]: s for s in metadata.get("snapshots", [])}
    out, current = [], metadata.get("current-snapshot-id")
    while current is not None and current in by_id and len(out) < len(by_id):
        out.append(by_id[current])
        current = by_id[current].get("parent-snapshot-id")
    return out


def committed_snapshot(ref: TableRef, manifest_id: str, s3: Any, glue: Any) -> int | None:
    """The id of the newest snapshot in the table's current lineage that committed ``manifest_id``,
    or None (not committed, or no table yet)."""
    current = current_metadata(ref, s3, glue)
    if current is None:
        return None
    for snapshot in lineage(current[1]):
        if (snapshot.get("summary") or {}).get("manifest_id") == manifest_id:
            return int(snapshot["snapshot-id"])
    return None
