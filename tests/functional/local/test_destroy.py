"""`make destroy` (ndjson_parquet/destroy.py) leaves nothing of a stage: versioned buckets are
emptied first, the stack is deleted, retained buckets go too."""

from __future__ import annotations

import logging

import boto3
import pytest

from ndjson_parquet.destroy import destroy
from ndjson_parquet.infra_template import deploy_to_endpoint, stack_name

STAGE = "dev"
# moto's CloudFormation warns once per resource type it skips, on deploy and on delete; which ones
# it skips is asserted exactly in tests/infra/test_deploy_moto.py.
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS.*not supported by moto:UserWarning")


def test_destroy_empties_versioned_buckets_and_removes_the_stack(aws: str) -> None:
    logging.getLogger("moto").setLevel(logging.ERROR)
    outputs = deploy_to_endpoint(boto3.client("cloudformation"), stack_name(STAGE), {"Stage": STAGE})
    s3 = boto3.client("s3")
    bucket = outputs["InputBucketName"]
    s3.put_object(Bucket=bucket, Key="a.ndjson", Body=b"{}\n")
    s3.put_object(Bucket=bucket, Key="a.ndjson", Body=b"{}\n{}\n")  # a second version
    s3.delete_object(Bucket=bucket, Key="a.ndjson")  # and a delete marker
    stage_buckets = [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("ndjson-parquet-dev-")]
    assert len(stage_buckets) == 6

    done = destroy(STAGE)

    assert f"emptied {bucket}: 3 versions" in done
    assert "deleted stack ndjson-parquet-dev" in done
    assert [b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("ndjson-parquet-dev-")] == []
    assert destroy(STAGE)[0].startswith("stack ndjson-parquet-dev not found")
