"""infra/deploy.sh in DRY_RUN mode (no AWS calls) and the config merge it relies on."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from ndjson_parquet import infra_template as it

ROOT = Path(__file__).resolve().parents[2]


def test_deploy_dry_run_renders_and_lists_every_step() -> None:
    proc = subprocess.run(
        ["bash", str(ROOT / "infra" / "deploy.sh"), "prod"],
        env={**os.environ, "DRY_RUN": "1", "STACK_PARAMS": "GlueExecutionClass=FLEX"},
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    steps = [line for line in out.splitlines() if line.startswith("==> ")]
    assert len(steps) == 7
    assert "aws cloudformation deploy --stack-name ndjson-parquet-prod" in out
    assert "Stage=prod GlueExecutionClass=FLEX" in out
    # the converter: built, uploaded under a content-addressed key, that key passed to the stack; a new
    # stack is first created without it (the function's code must exist, in the stack's own bucket)
    assert "-m converter.build --out " + str(ROOT / "build" / "converter") in out
    key = "converter/converter-<sha256>.zip"
    upload = out.index(f"converter.zip s3://<ScriptsBucketName>/{key}")
    assert out.index("ConverterArtifactKey=\n") < upload < out.index(f"ConverterArtifactKey={key}")
    assert "chalice deploy --stage prod" in out
    assert "ndjson_parquet.postdeploy --stage prod" in out
    rendered = json.loads((ROOT / "build" / "deploy-prod" / "pipeline.json").read_text())
    assert rendered["Parameters"]["Stage"]["Default"] == "prod"
    # Over CloudFormation's inline limit, so the script uploads through an artifact bucket.
    assert "--s3-bucket" in out


def test_outputs_merge_keeps_stage_settings_and_sets_vpc() -> None:
    config = {"stages": {"prod": {"environment_variables": {"LOG_LEVEL": "WARNING", "SHARD_COUNT": "16"}}}}
    outputs = {
        "TableName": "t",
        "LogLevel": "INFO",
        "TableStreamArn": "arn:stream",
        "SubnetIds": "subnet-1,subnet-2",
        "SecurityGroupIds": "sg-1",
    }
    merged = it.apply_outputs_to_chalice_config(config, "prod", outputs)["stages"]["prod"]
    env = merged["environment_variables"]
    assert env["LOG_LEVEL"] == "WARNING" and env["SHARD_COUNT"] == "16"  # the stage's own values win
    assert env["TABLE_NAME"] == "t" and env["TRACKING_STREAM_ARN"] == "arn:stream"
    assert merged["subnet_ids"] == ["subnet-1", "subnet-2"] and merged["security_group_ids"] == ["sg-1"]
    assert merged["autogen_policy"] is False
    assert merged["lambda_functions"]["recover"]["iam_policy_file"] == "policy-prod-workflow.json"


def test_a_failed_stack_is_one_error_with_its_failed_resources() -> None:
    cfn = boto3.client("cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(cfn)
    stack = {"StackName": "s", "CreationTime": "2026-01-01T00:00:00Z"}
    stubber.add_response("describe_stacks", {"Stacks": [{**stack, "StackStatus": "ROLLBACK_COMPLETE"}]})
    event = {"StackId": "id", "EventId": "e", "StackName": "s", "Timestamp": "2026-01-01T00:00:00Z"}
    failed = {**event, "LogicalResourceId": "Table", "ResourceStatus": "CREATE_FAILED", "ResourceStatusReason": "no"}
    stubber.add_response("describe_stack_events", {"StackEvents": [failed]})
    with stubber, pytest.raises(it.StackDeployError, match=r"stack s ended in ROLLBACK_COMPLETE .*Table: no"):
        it._wait_complete(cfn, "s", "stack_create_complete", timeout_seconds=30)
    stubber.assert_no_pending_responses()
