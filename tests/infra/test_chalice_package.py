"""`chalice package --stage prod` of a copy of the app, with the stack outputs written the way
infra/deploy.sh writes them: roles use our policy files, event sources carry the batch sizes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ndjson_parquet import infra_template as it

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ACCOUNT, REGION = "111122223333", "us-east-1"


def _outputs(stage: str) -> dict[str, str]:
    n = f"ndjson-parquet-{stage}"
    return {
        "TableName": f"{n}-tracking",
        "TableStreamArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{n}-tracking/stream/2026-01-01T00:00:00.000",
        "ManifestBucketName": f"{n}-manifests-{ACCOUNT}-{REGION}",
        "EventBusName": n,
        "InputPrefix": "",
        "OutputPath": f"s3://{n}-output-{ACCOUNT}-{REGION}/data/",
        "QuarantinePath": f"s3://{n}-quarantine-{ACCOUNT}-{REGION}/quarantine/",
        "AlertsTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:{n}-alerts",
        "StateMachineArn": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{n}-convert-manifest",
        "IngestQueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{n}-ingest",
        "IngestQueueName": f"{n}-ingest",
        "IngestDlqUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{n}-ingest-dlq",
        "EventsDlqUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{n}-events-dlq",
        "TtlDays": "30",
        "LogLevel": "INFO",
        "SubnetIds": "",
        "SecurityGroupIds": "",
    }


def test_chalice_package_prod(tmp_path: Path) -> None:
    # GIVEN a copy of the project whose prod stage got the stack outputs, as deploy.sh does it
    project = tmp_path / "app"
    project.mkdir()
    shutil.copy(ROOT / "app.py", project)
    shutil.copy(ROOT / "requirements.txt", project)
    shutil.copytree(ROOT / "chalicelib", project / "chalicelib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / ".chalice", project / ".chalice", ignore=shutil.ignore_patterns("deployments", "*.json.*"))
    outputs = _outputs("prod")
    config_path = project / ".chalice" / "config.json"
    outputs_path = tmp_path / "outputs.json"
    outputs_path.write_text(json.dumps([{"OutputKey": k, "OutputValue": v} for k, v in outputs.items()]))
    assert (
        it.main(["chalice-config", "--stage", "prod", "--outputs", str(outputs_path), "--config", str(config_path)])
        == 0
    )
    env = {
        **os.environ,
        "AWS_DEFAULT_REGION": REGION,
        "INGEST_QUEUE_ARN": outputs["IngestQueueArn"],
        "TRACKING_STREAM_ARN": outputs["TableStreamArn"],
        "INGEST_BATCH_SIZE": "50",
        "STREAM_BATCH_SIZE": "25",
    }
    # WHEN it is packaged (offline)
    chalice = Path(sys.executable).parent / "chalice"
    proc = subprocess.run(
        [str(chalice), "package", "--stage", "prod", str(tmp_path / "out")],
        cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sam = json.loads((tmp_path / "out" / "sam.json").read_text())
    resources = sam["Resources"]

    # THEN the event sources have the configured batch sizes and the stack's ARNs
    events = {
        e["Type"]: e["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::Serverless::Function"
        for e in r["Properties"].get("Events", {}).values()
    }
    assert events["SQS"]["Queue"] == outputs["IngestQueueArn"] and events["SQS"]["BatchSize"] == 50
    assert events["DynamoDB"]["Stream"] == outputs["TableStreamArn"] and events["DynamoDB"]["BatchSize"] == 25
    # AND every function has its own role whose policy is its family's file, not an autogen policy
    # (SAM output leaves FunctionName to CloudFormation; `chalice deploy` names them ndjson-parquet-<stage>-<fn>.)
    functions = {
        r["Properties"]["Handler"].removeprefix("app."): r
        for r in resources.values()
        if r["Type"] == "AWS::Serverless::Function"
    }
    assert sorted(functions) == sorted(it.CHALICE_FUNCTIONS)
    for family, names in it.FUNCTION_FAMILIES.items():
        expected = it.chalice_policy("prod", family)
        for fn in names:
            role = resources[functions[fn]["Properties"]["Role"]["Fn::GetAtt"][0]]
            assert [p["PolicyDocument"] for p in role["Properties"]["Policies"]] == [expected], fn
    # AND the environment carries the outputs settings.py reads
    env_vars = functions["track_files"]["Properties"]["Environment"]["Variables"]
    assert env_vars["TABLE_NAME"] == outputs["TableName"]
    assert env_vars["STATE_MACHINE_ARN"] == outputs["StateMachineArn"]
    assert env_vars["LOG_LEVEL"] == "INFO"
    assert env_vars["POWERTOOLS_SERVICE_NAME"] == "ndjson-parquet-prod"  # the custom-metric alarms' dimension
    # AND X-Ray is on for every function
    assert {f["Properties"].get("Tracing") for f in functions.values()} == {"Active"}
