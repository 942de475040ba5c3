"""Remove one stage's infra stack and what it keeps: ``make destroy STAGE=dev`` runs
``chalice delete`` first, then this (``python -m ndjson_parquet.destroy --stage dev``).

infra/pipeline.yaml retains the data key and the access-log, input, manifest and output buckets
when the stack is deleted (DeletionPolicy: Retain, so a deploy mistake never loses data). Here
every bucket of the stack is emptied first (all versions and delete markers: the buckets are
versioned), the stack is deleted, then the retained buckets are deleted and the retained key is
scheduled for deletion (KMS's minimum wait, 7 days). Every call goes through boto3's normal
configuration (profile, region, AWS_ENDPOINT_URL)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import boto3
from botocore.exceptions import ClientError

from chalicelib.s3_delete import delete_batches
from ndjson_parquet.infra_template import stack_name


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every version and delete marker; returns how many went."""
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
    entries = (
        {"Key": v["Key"], "VersionId": v["VersionId"]}
        for page in pages
        for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
    )
    # Policy: errors ignored. A version left behind fails the bucket's deletion later (the stack's,
    # or delete_bucket's BucketNotEmpty), which raises there.
    return sum(batch.sent for batch in delete_batches(s3, bucket, entries))


def destroy(stage: str) -> list[str]:
    """Delete the stage's stack and its retained resources; returns what was done."""
    cfn, s3, kms = boto3.client("cloudformation"), boto3.client("s3"), boto3.client("kms")
    name = stack_name(stage)
    try:
        resources = cfn.describe_stack_resources(StackName=name)["StackResources"]
    except ClientError as exc:
        return [f"stack {name} not found ({exc.response['Error'].get('Message', '')}): nothing to do"]
    buckets = [r["PhysicalResourceId"] for r in resources if r.get("ResourceType") == "AWS::S3::Bucket"]
    keys = [r["PhysicalResourceId"] for r in resources if r.get("ResourceType") == "AWS::KMS::Key"]
    done = [f"emptied {b}: {empty_bucket(s3, b)} versions" for b in buckets]
    cfn.delete_stack(StackName=name)
    cfn.get_waiter("stack_delete_complete").wait(StackName=name, WaiterConfig={"Delay": 10, "MaxAttempts": 180})
    done.append(f"deleted stack {name}")
    for bucket in buckets:  # the retained ones are still there; the others are gone
        try:
            empty_bucket(s3, bucket)  # anything written while the stack was being deleted
            s3.delete_bucket(Bucket=bucket)
            done.append(f"deleted retained bucket {bucket}")
        except s3.exceptions.NoSuchBucket:
            pass  # not retained: the stack deleted it
    for key in keys:
        try:
            kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
            done.append(f"scheduled deletion of key {key} in 7 days")
        except (kms.exceptions.NotFoundException, kms.exceptions.KMSInvalidStateException):
            pass  # gone already, or already pending deletion
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", required=True)
    args = parser.parse_args(argv)
    for line in destroy(args.stage):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
