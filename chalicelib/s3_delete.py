"""Delete S3 objects with DeleteObjects, at most 1000 keys a request (the API's limit), and hand
each request's per-key errors to the caller. DeleteObjects answers 200 even when some keys were
not deleted; what to do about those (raise, or accept leftovers) is each caller's policy and is
written at its call site.

Used by the compensate task (chalicelib/workflow/paths.py), the Glue job (glue/storage.py) and
``make destroy`` (ndjson_parquet/destroy.py). Standard library only: the Glue zip ships
chalicelib/ (glue/shipping.py) to a runtime without the Lambda-only dependencies."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

DELETE_BATCH = 1000


@dataclass(frozen=True)
class DeleteBatch:
    sent: int  # keys (or versions) in the request
    errors: list[dict[str, Any]] = field(default_factory=list)  # DeleteObjects' ``Errors`` entries


def delete_batches(s3: Any, bucket: str, objects: Iterable[Mapping[str, str]]) -> Iterator[DeleteBatch]:
    """One DeleteObjects request per 1000 entries of ``objects`` (``{"Key": k}``, optionally with
    ``"VersionId"``), sent as the iterable is consumed: a lazy listing is deleted page by page,
    never held whole. Yields each request's outcome before the next is sent, so a caller that
    raises on errors stops at the first failed batch."""
    chunk: list[dict[str, str]] = []
    for obj in objects:
        chunk.append(dict(obj))
        if len(chunk) == DELETE_BATCH:
            yield _delete(s3, bucket, chunk)
            chunk = []
    if chunk:
        yield _delete(s3, bucket, chunk)


def _delete(s3: Any, bucket: str, chunk: list[dict[str, str]]) -> DeleteBatch:
    # Quiet: the answer lists only the keys that failed.
    resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
    return DeleteBatch(len(chunk), list(resp.get("Errors", [])))
