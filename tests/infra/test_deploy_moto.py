"""The template deploys into moto (the local runtime's path) and yields what the runtime needs."""

from __future__ import annotations

import json
import time
import warnings
from urllib.parse import unquote_plus

import pytest

from ndjson_parquet import infra_template as it
from tests.conftest import client

pytestmark = [
    pytest.mark.slow,
    # moto warns once per resource type it skips; which ones it skipped is asserted exactly below
    # (EXPECTED_NOT_CREATED vs StackOutputs.not_created), so the warning itself says nothing more.
    pytest.mark.filterwarnings("ignore:Tried to parse AWS.*not supported by moto:UserWarning"),
]

# Types moto 5.2.5's CloudFormation skips (a warning, the stack still completes) and that no
# fix-up recreates. None of them changes how data flows locally; all are checked statically.
EXPECTED_NOT_CREATED = [
    "AWS::CloudWatch::Alarm",
    "AWS::Glue::SecurityConfiguration",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::QueuePolicy",
]


@pytest.fixture
def deployed(aws: str) -> it.StackOutputs:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # moto warns once per unsupported type
        return it.deploy_to_endpoint(
            client("cloudformation"),
            "ndjson-parquet-local",
            it.stack_parameters("local"),
            template_body=it.render_template("local", allow_placeholder=True),
        )


def test_outputs_and_what_moto_did_not_create(deployed: it.StackOutputs) -> None:
    assert deployed["TableName"] == "ndjson-parquet-local-tracking"
    assert deployed["EventBusName"] == "ndjson-parquet-local"
    assert deployed["GlueJobName"] == "ndjson-parquet-local-convert"
    assert deployed["StateMachineArn"].endswith(":stateMachine:ndjson-parquet-local-convert-manifest")
    assert set(it.OUTPUT_TO_ENV) <= set(deployed)
    assert deployed.not_created == EXPECTED_NOT_CREATED
    assert "InputBucket: notification to 4 queue rules" in deployed.fixups
    # moto's CloudFormation skips Glue databases: the deploy creates the table's through the Glue API.
    assert "IcebergDatabase: Glue database ndjson_parquet_local created through the Glue API" in deployed.fixups
    assert client("glue").get_database(Name=deployed["DatasetDatabaseName"])["Database"]["Name"] == (
        "ndjson_parquet_local"
    )
    assert deployed["DatasetTableName"] == "dataset"
    assert deployed["DatasetLocation"] == f"s3://{deployed['OutputBucketName']}/table"
    assert json.loads(json.dumps(deployed)) == dict(deployed)


def test_input_bucket_notifies_the_ingest_queue(deployed: it.StackOutputs) -> None:
    s3, sqs = client("s3"), client("sqs")
    bucket = deployed["InputBucketName"]
    assert client("s3").get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    # GIVEN the deployed wiring WHEN a matching and a non-matching object land
    put = s3.put_object(Bucket=bucket, Key="in/a b.ndjson", Body=b'{"a":1}\n')
    s3.put_object(Bucket=bucket, Key="in/readme.txt", Body=b"x")
    # THEN exactly the .ndjson object reaches the ingest queue (a TestEvent may precede it)
    records, deadline = [], time.monotonic() + 10
    while time.monotonic() < deadline and not records:
        for m in sqs.receive_message(QueueUrl=deployed["IngestQueueUrl"], MaxNumberOfMessages=10).get("Messages", []):
            records += json.loads(m["Body"]).get("Records", [])
    keys = [r["s3"]["object"]["key"] for r in records]
    # S3 event keys are URL-encoded (space as +); moto also encodes "/" (in%2Fa+b.ndjson), AWS does not.
    assert [unquote_plus(k) for k in keys] == ["in/a b.ndjson"]
    assert put["VersionId"]  # versioned bucket, yet moto 5.2.5's event omits versionId: trackers fall back to eTag
    assert records[0]["s3"]["object"]["eTag"] == put["ETag"].strip('"')


def test_table_queues_bus_rule_state_machine_topic(deployed: it.StackOutputs) -> None:
    ddb = client("dynamodb")
    table = ddb.describe_table(TableName=deployed["TableName"])["Table"]
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    assert table["LatestStreamArn"] == deployed["TableStreamArn"]
    assert [g["IndexName"] for g in table["GlobalSecondaryIndexes"]] == ["status-index"]
    assert [k["AttributeName"] for k in table["GlobalSecondaryIndexes"][0]["KeySchema"]] == ["gsi1pk", "gsi1sk"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = ddb.describe_time_to_live(TableName=deployed["TableName"])["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "ttl"

    attrs = client("sqs").get_queue_attributes(QueueUrl=deployed["IngestQueueUrl"], AttributeNames=["All"])[
        "Attributes"
    ]
    assert json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"] == deployed["IngestDlqArn"]
    assert int(attrs["VisibilityTimeout"]) == 360
    assert attrs.get("KmsMasterKeyId")

    events = client("events")
    rule_name = "ndjson-parquet-local-manifest-ready"
    rule = events.describe_rule(Name=rule_name, EventBusName=deployed["EventBusName"])
    assert json.loads(rule["EventPattern"]) == {"source": ["ndjson-parquet"], "detail-type": ["ManifestReady"]}
    (target,) = events.list_targets_by_rule(Rule=rule_name, EventBusName=deployed["EventBusName"])["Targets"]
    assert target["Arn"] == deployed["StateMachineArn"]
    assert target["DeadLetterConfig"]["Arn"] == deployed["EventsDlqArn"]
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 185
    assert events.describe_archive(ArchiveName="ndjson-parquet-local-manifests")["RetentionDays"] == 30
    (glue_alert,) = events.list_targets_by_rule(Rule="ndjson-parquet-local-glue-job-failed")["Targets"]
    assert glue_alert["Arn"] == deployed["AlertsTopicArn"]

    sm = client("stepfunctions").describe_state_machine(stateMachineArn=deployed["StateMachineArn"])
    definition = sm["definition"]
    assert "${" not in definition  # every substitution variable was resolved
    states = json.loads(definition)["States"]
    # the deployed definition is the repo's ASL with this stack's names, not a placeholder
    assert set(states) == set(json.loads(it.ASL_PATH.read_text())["States"])
    assert states["ConvertManifest"]["Parameters"]["JobName"] == deployed["GlueJobName"]
    assert states["ConvertManifest"]["Parameters"]["Arguments"]["--OUTPUT_PATH"] == deployed["OutputPath"]
    assert states["ClaimRun"]["Parameters"]["FunctionName"].endswith(":function:ndjson-parquet-local-claim_run")
    assert states["Alert"]["Parameters"]["TopicArn"] == deployed["AlertsTopicArn"]
    assert client("sns").get_topic_attributes(TopicArn=deployed["AlertsTopicArn"])["Attributes"]["KmsMasterKeyId"]

    job = client("glue").get_job(JobName=deployed["GlueJobName"])["Job"]
    assert job["DefaultArguments"]["--COMPRESSION_TYPE"] == "zstd"
    assert job["DefaultArguments"]["--OUTPUT_PATH"] == deployed["OutputPath"]
    table_args = {k: v for k, v in job["DefaultArguments"].items() if k.startswith(("--TABLE_", "--SCHEMA_MODE"))}
    assert table_args == {
        "--TABLE_CATALOG": "glue",
        "--TABLE_NAMESPACE": deployed["DatasetDatabaseName"],
        "--TABLE_NAME": deployed["DatasetTableName"],
        "--TABLE_LOCATION": deployed["DatasetLocation"],
        "--SCHEMA_MODE": "addNewColumns",
    }
    assert job["GlueVersion"] == "5.0"


def test_redeploy_is_an_idempotent_update(deployed: it.StackOutputs) -> None:
    again = it.deploy_to_endpoint(
        client("cloudformation"),
        "ndjson-parquet-local",
        it.stack_parameters("local"),
        template_body=it.render_template("local", allow_placeholder=True),
    )
    assert again["TableName"] == deployed["TableName"]
    assert not any("notification" in f for f in again.fixups)  # already in place: not re-applied
    assert not any("Glue database" in f for f in again.fixups)  # exists: not created again
    assert client("glue").get_database(Name="ndjson_parquet_local")


def test_vpc_variant_creates_the_endpoints(aws: str) -> None:
    # GIVEN a VPC with a private subnet, a security group and a route table
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    sg = ec2.create_security_group(GroupName="lambdas", Description="lambdas", VpcId=vpc)["GroupId"]
    rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    params = {
        "Stage": "vpc",
        "VpcId": vpc,
        "VpcCidr": "10.1.0.0/16",
        "SubnetIds": subnet["SubnetId"],
        "SecurityGroupIds": sg,
        "RouteTableIds": rt,
        "GlueAvailabilityZone": subnet["AvailabilityZone"],
    }
    # WHEN the stack is deployed with them
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = it.deploy_to_endpoint(client("cloudformation"), "ndjson-parquet-vpc", params)
    # THEN gateway and interface endpoints exist in that VPC and Chalice gets the subnets/groups
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
    services = sorted(e["ServiceName"].rsplit(".", 1)[-1] for e in endpoints)
    assert services == ["dynamodb", "events", "glue", "kms", "logs", "s3", "sns", "sqs", "states"]
    assert out["SubnetIds"] == subnet["SubnetId"] and out["SecurityGroupIds"] == sg
    assert "AWS::Glue::Connection" in out.not_created  # moto has no Glue connections in CloudFormation


def test_the_converter_function_is_created_once_its_artifact_is_uploaded(deployed: it.StackOutputs) -> None:
    """infra/deploy.sh's order: the stack without ConverterArtifactKey (no function: the code must
    exist at creation, in the stack's own scripts bucket), the upload, the stack with the key."""
    import io
    import zipfile

    lam, iam = client("lambda"), client("iam")
    # GIVEN the stack as first deployed: the converter's role and outputs, no function, ClaimRun told glue
    assert deployed["ConverterFunctionName"] == "ndjson-parquet-local-converter"
    assert deployed["ConverterFunctionArn"].endswith(":function:ndjson-parquet-local-converter")
    assert deployed["ConvertEngine"] == "glue" and int(deployed["LambdaMaxBytes"]) > 0
    assert iam.get_role(RoleName=deployed["ConverterRoleName"])["Role"]["RoleName"] == "ndjson-parquet-local-converter"
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert "ndjson-parquet-local-converter" not in names
    # WHEN the artifact is uploaded and the stack updated with its key
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("converter/handler.py", "def handler(event, context):\n    return event\n")
    key = "converter/converter-test.zip"
    client("s3").put_object(Bucket=deployed["ScriptsBucketName"], Key=key, Body=buf.getvalue())
    params = it.stack_parameters("local", {"ConverterArtifactKey": key})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        again = it.deploy_to_endpoint(
            client("cloudformation"),
            "ndjson-parquet-local",
            params,
            template_body=it.render_template("local", allow_placeholder=True),
        )
    # THEN the function exists as the template says, and ClaimRun is told the stack's rule
    fn = lam.get_function(FunctionName="ndjson-parquet-local-converter")
    config = fn["Configuration"]
    assert config["FunctionArn"] == again["ConverterFunctionArn"]
    assert (config["Runtime"], config["Handler"]) == ("python3.11", "converter.handler.handler")
    assert (config["MemorySize"], config["Timeout"]) == (3538, 300)
    assert config["Role"].endswith(":role/ndjson-parquet-local-converter")
    env = config["Environment"]["Variables"]
    assert env["OUTPUT_PATH"] == again["OutputPath"] and env["TABLE_LOCATION"] == again["DatasetLocation"]
    assert fn["Concurrency"]["ReservedConcurrentExecutions"] == 10
    assert again["ConvertEngine"] == "auto"
    assert "ConverterFunction" not in again.not_created
