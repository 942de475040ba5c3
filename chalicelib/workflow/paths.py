"""Read and delete under an output location that is ``s3://bucket/prefix`` in AWS and a plain
directory in the local runtime. Where the Glue job writes (one place decides the layout)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from chalicelib.s3_delete import DELETE_BATCH, delete_batches


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def run_summary_path(output_path: str, manifest_id: str) -> str:
    return join(output_path, "_runs", f"{manifest_id}.json")


def manifest_partition(base: str, date_prefix: str, manifest_id: str) -> str:
    """Output of one manifest: ``<base>/dt=<date>/manifest=<id>/`` (replaced on reprocessing)."""
    return join(base, f"dt={date_prefix}", f"manifest={manifest_id}") + "/"


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def _local(uri: str) -> Path:
    return Path(uri[len("file://") :] if uri.startswith("file://") else uri)


def read_text(uri: str, s3: Any) -> str | None:
    """The object's text, None when it does not exist."""
    if uri.startswith("s3://"):
        bucket, key = _split(uri)
        try:
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
        except s3.exceptions.NoSuchKey:
            return None
    path = _local(uri)
    return path.read_text(encoding="utf-8") if path.exists() else None


def read_json(uri: str, s3: Any) -> Any | None:
    text = read_text(uri, s3)
    return None if text is None else json.loads(text)


def delete_tree(uri: str, s3: Any) -> int:
    """Delete everything under a prefix (or one object); returns how many objects went."""
    if uri.startswith("s3://"):
        bucket, prefix = _split(uri)
        pages = s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": DELETE_BATCH}
        )
        deleted = 0
        for batch in delete_batches(s3, bucket, ({"Key": o["Key"]} for p in pages for o in p.get("Contents", []))):
            # Policy: raise. Compensation must not report a partial output gone while some of it
            # is still there; the failed task is retried by the state machine.
            if batch.errors:
                raise RuntimeError(f"could not delete {len(batch.errors)} objects under {uri}")
            deleted += batch.sent
        return deleted
    path = _local(uri)
    if path.is_dir():
        count = sum(1 for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path)
        return count
    if path.exists():
        path.unlink()
        return 1
    return 0
