"""Pure readers of FILE/MANIFEST item attributes the control plane writes, in one place.

Expected FILE attributes: ``date_prefix``, ``shard`` (N), ``attempts`` (N, absent = 0),
``uri`` (or ``bucket`` + ``key``), ``gsi1sk`` = ``<arrived_at>#<file_id>``.
"""

from __future__ import annotations

from typing import Any

from chalicelib import keys
from chalicelib.manifest import manifest_object_key


def file_uri(item: dict[str, Any]) -> str:
    if item.get("uri"):
        return str(item["uri"])
    return f"s3://{item.get('bucket', '')}/{item.get('key', '')}"


def file_date(item: dict[str, Any], manifest_id: str = "") -> str:
    if item.get("date_prefix"):
        return str(item["date_prefix"])
    # Manifest ids are "<date>-<seq>" (keys.manifest_id_for): the date is the first 10 chars.
    return manifest_id[:10]


def file_shard(item: dict[str, Any], shard_count: int) -> int:
    if item.get("shard") is not None:
        return int(item["shard"])
    return keys.stable_shard(str(item.get("key") or file_uri(item)), shard_count)


def attempts(item: dict[str, Any]) -> int:
    return int(item.get("attempts") or 0)


def manifest_uri(item: dict[str, Any], bucket: str, prefix: str) -> str:
    """Where the manifest JSON is: the item's own ``manifest_uri`` (or ``manifest_key``), else the
    deterministic location the control plane writes it to (chalicelib.manifest)."""
    if item.get("manifest_uri"):
        return str(item["manifest_uri"])
    key = item.get("manifest_key") or manifest_object_key(prefix, manifest_date(item), str(item["manifest_id"]))
    return f"s3://{bucket}/{key}"


def manifest_date(item: dict[str, Any]) -> str:
    return str(item.get("date_prefix") or str(item.get("manifest_id", ""))[:10])


def manifest_id_of(item: dict[str, Any]) -> str:
    if item.get("manifest_id"):
        return str(item["manifest_id"])
    return str(item["pk"]).split("#", 1)[1]
