"""``ndjson-parquet backfill``: enqueue objects already in the input bucket (first-time setup,
or objects that arrived before the notification existed).

Each current object version becomes an S3 ``ObjectCreated`` notification on the ingest queue, in
the shape S3 sends, version id included: the tracker's identity is bucket + key + version id, so
a backfilled object that was already tracked is a no-op, and running backfill twice is safe.
Listing is paged; messages go out in SendMessageBatch calls of 10 with failures checked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

HELP = "Enqueue objects already in the input bucket so the pipeline tracks them (idempotent)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bucket", help="input bucket (default: the stack's INPUT_BUCKET)")
    parser.add_argument("--prefix", default=None, help="only keys under this prefix (default: INPUT_PREFIX)")
    parser.add_argument("--queue-url", help="ingest queue URL (default: the stack's ingest queue)")
    parser.add_argument("--dry-run", action="store_true", help="count what would be enqueued, send nothing")


def needs_stack(args: argparse.Namespace) -> bool:
    """With both --bucket and --queue-url given, no stack lookup is needed."""
    return not (args.bucket and args.queue_url)


def current_versions(s3: Any, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    """Latest, non-deleted version of every object under ``prefix`` (works unversioned too)."""
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": 1000}):
        for version in page.get("Versions", []):
            if version.get("IsLatest"):
                yield version


def notification(bucket: str, version: dict[str, Any], region: str) -> dict[str, Any]:
    """One S3 event notification record, as S3 writes it (key URL-encoded with '+' for space)."""
    obj: dict[str, Any] = {
        "key": quote_plus(version["Key"], safe="/"),
        "size": int(version.get("Size", 0)),
        "eTag": str(version.get("ETag", "")).strip('"'),
        "sequencer": "0",
    }
    if version.get("VersionId") and version["VersionId"] != "null":
        obj["versionId"] = version["VersionId"]
    modified = version.get("LastModified") or datetime.now(UTC)
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": region,
                "eventTime": modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "ndjson-parquet-backfill"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "ndjson-parquet-backfill",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": obj,
                },
            }
        ]
    }


def send_all(sqs: Any, queue_url: str, bodies: Iterator[str]) -> int:
    sent = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal sent
        if not batch:
            return
        resp = sqs.send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(batch)]
        )
        if resp.get("Failed"):
            raise RuntimeError(f"SendMessageBatch failed for {len(resp['Failed'])} message(s): {resp['Failed'][:2]}")
        sent += len(batch)
        batch.clear()

    for body in bodies:
        batch.append(body)
        if len(batch) == 10:
            flush()
    flush()
    return sent


def main(args: argparse.Namespace) -> int:
    from chalicelib import aws
    from chalicelib.settings import DEFAULT_SUFFIXES

    bucket = args.bucket or os.environ.get("INPUT_BUCKET")
    queue_url = args.queue_url
    sqs = aws.client("sqs")
    if not queue_url and os.environ.get("INGEST_QUEUE_NAME"):
        queue_url = sqs.get_queue_url(QueueName=os.environ["INGEST_QUEUE_NAME"])["QueueUrl"]
    if not bucket or not queue_url:
        print("error: input bucket or ingest queue unknown; pass --bucket and --queue-url or --stage", file=sys.stderr)
        return 2
    prefix = args.prefix if args.prefix is not None else os.environ.get("INPUT_PREFIX", "")
    s3 = aws.client("s3")
    region = s3.meta.region_name or "us-east-1"
    raw_suffixes = os.environ.get("ALLOWED_SUFFIXES") or DEFAULT_SUFFIXES
    suffixes = tuple(s.strip().lower() for s in raw_suffixes.split(",") if s.strip())
    skipped = 0

    def bodies() -> Iterator[str]:
        nonlocal skipped
        for version in current_versions(s3, bucket, prefix):
            if suffixes and not version["Key"].lower().endswith(suffixes):
                skipped += 1  # the bucket notification's suffix filter would not have sent it either
                continue
            yield json.dumps(notification(bucket, version, region))

    if args.dry_run:
        n = sum(1 for _ in bodies())
        print(f"would enqueue {n} object(s) from s3://{bucket}/{prefix} ({skipped} skipped by suffix)")
        return 0
    n = send_all(sqs, queue_url, bodies())
    print(f"enqueued {n} object(s) from s3://{bucket}/{prefix} to {queue_url} ({skipped} skipped by suffix)")
    return 0
