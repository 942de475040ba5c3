"""IAM is enforced in the local runtime: a caller gets exactly its role's actions, no more.

The stack is deployed into an enforcing moto as the administrator, then each role's IAM user is
created from the same policies the deploy uses (``ndjson_parquet.local.iam``)."""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from ndjson_parquet.iam.policies import operator_policy
from ndjson_parquet.infra_template import chalice_policy, deploy_to_endpoint, stack_name
from ndjson_parquet.local.callers import NoCallerError, acting_as, acting_session
from ndjson_parquet.local.iam import Caller, create_callers, for_moto
from ndjson_parquet.local.runtime import STAGE, RunOptions, _restored_environment, configure_handlers
from ndjson_parquet.local.server import moto_server

# One group: the module's enforcing server (``enforced``) is set up once, on one make-test worker.
pytestmark = pytest.mark.xdist_group("iam-enforced")


def test_for_moto_widens_only_services_moto_checks_against_star() -> None:
    policy = {
        "Statement": [
            {
                "Sid": "Mixed",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "dynamodb:UpdateItem", "lambda:InvokeFunction"],
                "Resource": ["arn:aws:s3:::b/*", "arn:aws:dynamodb:*:*:table/t"],
            },
            {"Sid": "Q", "Effect": "Allow", "Action": "sqs:DeleteMessage", "Resource": "arn:aws:sqs:*:*:q"},
            {
                "Sid": "Cond",
                "Effect": "Allow",
                "Action": "cloudwatch:PutMetricData",
                "Resource": "*",
                "Condition": {"StringEquals": {"cloudwatch:namespace": "N"}},
            },
        ]
    }
    assert for_moto(policy) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": ["arn:aws:s3:::b/*", "arn:aws:dynamodb:*:*:table/t"],
            },
            {
                "Effect": "Allow",
                "Action": [
                    "dynamodb:UpdateItem",
                    "lambda:InvokeFunction",
                    "dynamodb:TransactWriteItems",
                    "lambda:Invoke",
                ],
                "Resource": "*",
            },
            {
                "Effect": "Allow",
                "Action": ["sqs:DeleteMessage", "sqs:DeleteMessageBatch"],
                "Resource": "arn:aws:sqs:*:*:q",
            },
        ],
    }


def test_for_moto_grants_delete_object_on_the_bucket_too() -> None:
    # moto checks DeleteObjects against the bucket's ARN (ndjson_parquet/local/iam.py for_moto).
    policy = {
        "Statement": [
            {
                "Sid": "Del",
                "Effect": "Allow",
                "Action": "s3:DeleteObject",
                "Resource": ["arn:aws:s3:::out-*/*", "arn:aws:s3:::q-*/data/*"],
            }
        ]
    }
    assert for_moto(policy) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:DeleteObject"],
                "Resource": ["arn:aws:s3:::out-*/*", "arn:aws:s3:::q-*/data/*"],
            },
            {"Effect": "Allow", "Action": ["s3:DeleteObject"], "Resource": ["arn:aws:s3:::out-*", "arn:aws:s3:::q-*"]},
        ],
    }


def _without(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    return {**policy, "Statement": [s for s in policy["Statement"] if s.get("Sid") != sid]}


@pytest.fixture(scope="module")
def enforced() -> Iterator[tuple[dict[str, str], dict[str, Caller]]]:
    """An enforcing moto with the stack deployed; the batching role lacks its DynamoDB grants."""
    with _restored_environment(), moto_server(enforce_iam=True, execute_state_machines=False):
        logging.getLogger("moto").setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            outputs = deploy_to_endpoint(boto3.client("cloudformation"), stack_name(STAGE), {"Stage": STAGE})
        lacking = _without(chalice_policy(STAGE, "batching"), "CountClaimSeal")
        callers = create_callers(boto3.client("iam"), STAGE, {"batching": [("lacking", lacking)]})
        configure_handlers(outputs, RunOptions(input_dir=Path("."), output_dir=Path(".")))
        from chalicelib import aws

        aws.clients.session_factory = acting_session
        aws.clients.clear()
        yield outputs, callers


def _denied(call: Any) -> str:
    """moto's AccessDenied message. Its JSON-protocol services answer in XML, which botocore does
    not parse (the code reads "403"), so the message is taken from the raw error."""
    with pytest.raises(ClientError) as info:
        call()
    found = re.search(r"<Code>AccessDenied</Code><Message>([^<]*)</Message>", str(info.value))
    assert found, str(info.value)
    return found.group(1)


def test_handler_whose_policy_lacks_an_action_is_refused_naming_it(enforced: Any) -> None:
    from chalicelib.batching import flush_stale

    _, callers = enforced
    with acting_as(callers["batching"]):
        message = _denied(flush_stale)
    assert message == (
        "User: arn:aws:iam::123456789012:user/ndjson-parquet-local-batching is not authorized to perform: "
        "dynamodb:Query"
    )


def test_workflow_credentials_cannot_poll_the_ingest_queue_only_the_tracker_may(enforced: Any) -> None:
    outputs, callers = enforced
    sqs = acting_session().client("sqs")
    with acting_as(callers["workflow"]):
        message = _denied(lambda: sqs.receive_message(QueueUrl=outputs["IngestQueueUrl"]))
    assert message == (
        "User: arn:aws:iam::123456789012:user/ndjson-parquet-local-workflow is not authorized to perform: "
        "sqs:ReceiveMessage"
    )
    with acting_as(callers["tracker"]):  # the control: the tracker's role may (S3's test event waits there)
        got = sqs.receive_message(QueueUrl=outputs["IngestQueueUrl"]).get("Messages", [])
    assert [json.loads(m["Body"])["Event"] for m in got] == ["s3:TestEvent"]


def test_s3_grants_are_enforced_with_their_arns(enforced: Any) -> None:
    outputs, callers = enforced
    s3 = acting_session().client("s3")
    with acting_as(callers["batching"]):  # batching may write manifests, not output
        s3.put_object(Bucket=outputs["ManifestBucketName"], Key="manifests/x.json", Body=b"{}")
        with pytest.raises(ClientError) as info:
            s3.put_object(Bucket=outputs["OutputBucketName"], Key="x.parquet", Body=b"")
    assert info.value.response["Error"]["Code"] == "AccessDenied"


def test_a_call_where_no_role_acts_is_never_signed(enforced: Any) -> None:
    with pytest.raises(NoCallerError):
        acting_session().client("sqs").list_queues()


def test_operator_policy_comes_from_the_map_with_recover_and_no_lambda_only_grants() -> None:
    # The local operator user gets the map's policy (ndjson_parquet/iam/policies.py), the one
    # `ndjson-parquet iam operator-policy` prints: recover's table writes, no Lambda runtime grants.
    by_resource = {s["Resource"]: s["Action"] for s in operator_policy("dev")["Statement"]}
    assert by_resource["arn:aws:dynamodb:*:*:table/ndjson-parquet-dev-tracking"] == [
        "dynamodb:ConditionCheckItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ]
    actions = {a for s in operator_policy("dev")["Statement"] for a in s["Action"]}
    assert sorted(a for a in actions if a.split(":")[0] in ("logs", "xray", "ec2")) == []


def test_a_new_task_host_starts_unenforced(monkeypatch: pytest.MonkeyPatch) -> None:
    # An enforced run leaves its role users in moto's interpreter hook; a later, unenforced host
    # (another test's, on a fresh moto account) must not sign its task calls as those users.
    from ndjson_parquet.local import stepfunctions
    from ndjson_parquet.local.iam import Caller

    monkeypatch.setenv("MOTO_PORT", "5000")  # restored after: the host points it at its server
    old = stepfunctions.LocalTaskHost("http://127.0.0.1:5000")
    old.act_for_roles({"arn:aws:iam::123456789012:role/states": Caller("states", "AKIA", "secret")})
    assert stepfunctions._ROLE_CALLERS
    stepfunctions.LocalTaskHost("http://127.0.0.1:5000")
    assert stepfunctions._ROLE_CALLERS == {}


def test_the_operator_may_read_the_tables_metadata_with_schema_stage_and_a_handler_may_not(
    enforced: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # `schema --stage` calls glue:GetTable and s3:GetObject on the table's metadata, as the operator
    # policy the map derives allows (ndjson_parquet/iam/callmap.py operator_schema).
    import pyarrow as pa
    import pyarrow.parquet as pq

    from glue.storage import S3Config
    from glue.table import TableConfig, commit_manifest, open_catalog
    from ndjson_parquet.cli import main

    outputs, callers = enforced
    schema = pa.schema([("n", pa.int64()), ("_manifest_id", pa.string())])
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist([{"n": 1, "_manifest_id": "m1"}], schema=schema), sink)
    location = outputs["DatasetLocation"]
    bucket, prefix = location.removeprefix("s3://").split("/", 1)
    boto3.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/data/m1.parquet", Body=sink.getvalue().to_pybytes())
    config = TableConfig("glue", outputs["DatasetDatabaseName"], outputs["DatasetTableName"], location)
    # The administrator commits (the Glue job's role is exercised by the runtime's own tests).
    committed = commit_manifest(
        open_catalog(config, S3Config.from_env()), config, schema, [f"{location}/data/m1.parquet"], "m1", "tok"
    )

    with acting_as(callers["operator"]):
        assert main(["schema", "--stage", STAGE, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert [(s["snapshot_id"], s["manifest_id"]) for s in info["snapshots"]] == [(committed.snapshot_id, "m1")]

    with acting_as(callers["tracker"]), pytest.raises(ClientError) as info_denied:
        main(["schema", "--stage", STAGE])
    assert "glue:GetTable" in str(info_denied.value)


def test_the_converter_sandbox_signs_as_the_converter_role_and_a_missing_grant_fails(enforced: Any) -> None:
    # GIVEN the converter Lambda's sandbox configured as the local runtime configures it
    from ndjson_parquet.local.runtime import RunOptions, converter_config
    from ndjson_parquet.local.sandbox import FunctionConfig, FunctionError, SandboxPool

    outputs, callers = enforced
    config = converter_config(
        None, outputs, {}, RunOptions(input_dir=Path("."), output_dir=Path(".")), callers["converter"]
    )
    assert config.environment["AWS_ACCESS_KEY_ID"] == callers["converter"].access_key
    assert "AWS_SESSION_TOKEN" not in config.environment
    pool = SandboxPool(FunctionConfig(**{**config.__dict__, "handler": "tests.functional.local.sandbox_handlers:echo"}))
    try:
        # WHEN it writes where its role may (the output bucket) and where it may not (the manifests)
        pool.invoke({"put": [outputs["OutputBucketName"], "data/probe.parquet"]})
        with pytest.raises(FunctionError) as info:
            pool.invoke({"put": [outputs["ManifestBucketName"], "manifests/probe.json"]})
    finally:
        pool.close()
    # THEN the second is refused: its calls carry the converter role's policy, not the administrator's
    assert info.value.error_type == "ClientError"
    assert "AccessDenied" in str(info.value)
    assert (
        boto3.client("s3").get_object(Bucket=outputs["OutputBucketName"], Key="data/probe.parquet")["Body"].read()
        == b"x"
    )
