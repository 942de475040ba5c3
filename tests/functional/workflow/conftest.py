"""A moto-backed convert-manifest: tracking table, buckets, alerts topic, bus + rule + archive,
the ASL file deployed with its substitutions, and LocalTaskHost serving the chalicelib tasks and a
small Glue runner that writes a valid run summary (or fails on demand)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from chalicelib import aws, keys
from chalicelib.events import MANIFEST_READY, SOURCE
from chalicelib.manifest import Manifest, ManifestFile, manifest_object_key
from chalicelib.settings import get_settings
from chalicelib.workflow import paths, tasks
from ndjson_parquet.infra_template import render_definition
from ndjson_parquet.local.stepfunctions import LocalTaskHost, deploy_state_machine, wait_for_execution
from tests.conftest import client
from tests.functional.control_plane.resources import create_tracking_table, drain

TABLE = "wf-tracking"
MANIFESTS = "wf-manifests"
DATA = "wf-data"
BUS = "wf-bus"
RULE = "wf-manifest-ready"
OUTPUT = f"s3://{DATA}/parquet"
QUARANTINE = f"s3://{DATA}/quarantine"
DATE = "2025-01-15"


@dataclass
class GlueDouble:
    """Stands in for the Glue job: per file 10 lines = 7 rows + 2 quarantined + 1 blank; the
    manifest's partition is replaced (deleted, then written) as the real job's overwrite does."""

    s3: Any
    fail_with: str | None = None
    runs: list[dict[str, str]] = field(default_factory=list)
    summary_override: dict[str, Any] | None = None

    def __call__(self, args: dict[str, str]) -> None:
        self.runs.append(args)
        manifest = Manifest.from_json(paths.read_text(args["--MANIFEST_PATH"], self.s3) or "")
        out = args["--OUTPUT_PATH"]
        part = paths.manifest_partition(out, manifest.date_prefix, manifest.manifest_id)
        paths.delete_tree(part, self.s3)
        bucket, key = part[len("s3://") :].split("/", 1)
        self.s3.put_object(Bucket=bucket, Key=f"{key}part-{len(self.runs):04d}.parquet", Body=b"PAR1")
        if self.fail_with:
            raise RuntimeError(self.fail_with)
        files = [{"uri": f.uri, "lines": 10, "rows": 7, "quarantined": 2, "blank": 1} for f in manifest.files]
        summary = self.summary_override or {"manifest_id": manifest.manifest_id, "files": files}
        sbucket, skey = paths.run_summary_path(out, manifest.manifest_id)[len("s3://") :].split("/", 1)
        self.s3.put_object(Bucket=sbucket, Key=skey, Body=json.dumps(summary).encode())


@dataclass
class ConverterDouble:
    """Stands in for the converter function (converter/handler.py): the Glue double's output, then the
    converter's answer; ``fail_with`` raises that exception instead (Step Functions sees its class name)."""

    glue: GlueDouble
    fail_with: BaseException | None = None
    events: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        self.events.append(event)
        if self.fail_with is not None:
            raise self.fail_with
        self.glue({"--MANIFEST_PATH": event["manifest_uri"], "--OUTPUT_PATH": OUTPUT, "--QUARANTINE_PATH": QUARANTINE})
        self.glue.runs.pop()  # a Lambda run, not a Glue one
        run_id = f"lambda-run-{len(self.events)}"
        return {"engine": "lambda", "run_id": run_id, "manifest_id": event["manifest_id"], "totals": {}}


@dataclass
class Workflow:
    host: LocalTaskHost
    state_machine_arn: str
    glue: GlueDouble
    converter: ConverterDouble
    ddb: Any
    s3: Any
    sqs: Any
    sfn: Any
    events: Any
    alerts_url: str
    events_dlq_url: str

    def seed_manifest(
        self,
        manifest_id: str,
        n_files: int = 3,
        attempts: int = 0,
        status: str = keys.MANIFEST_SEALED,
        sealed_at: str = "2025-01-15T00:00:00.000000Z",
    ) -> list[str]:
        """A sealed manifest as the control plane leaves it: claimed FILE items, the manifest
        JSON in S3, the MANIFEST item. Returns the file pks."""
        files, pks = [], []
        for i in range(n_files):
            fid = f"{manifest_id}-f{i}"
            key = f"in/{DATE}/{fid}.ndjson"
            files.append(ManifestFile(uri=f"s3://input/{key}", size=100, etag="e"))
            pks.append(keys.file_pk(fid))
            item = {
                "pk": keys.file_pk(fid),
                "sk": keys.FILE_SK,
                "file_id": fid,
                "bucket": "input",
                "key": key,
                "size": 100,
                "date_prefix": DATE,
                "shard": i % 4,
                "status": keys.CLAIMED,
                "gsi1pk": keys.claimed_status_key(manifest_id),
                "gsi1sk": f"2025-01-15T00:00:0{i}#{fid}",
                "manifest_id": manifest_id,
                "claimed_at": sealed_at,
            }
            if attempts:
                item["attempts"] = attempts
            self.ddb.put_item(TableName=TABLE, Item=_to_item(item))
        manifest = Manifest(manifest_id, DATE, tuple(files), created_at=sealed_at)
        key = manifest_object_key("manifests", DATE, manifest_id)
        self.s3.put_object(Bucket=MANIFESTS, Key=key, Body=manifest.to_json().encode())
        self.ddb.put_item(
            TableName=TABLE,
            Item=_to_item(
                {
                    "pk": keys.manifest_pk(manifest_id),
                    "sk": keys.MANIFEST_SK,
                    "manifest_id": manifest_id,
                    "date_prefix": DATE,
                    "seq": int(manifest_id.rsplit("-", 1)[1]),
                    "status": status,
                    "gsi1pk": keys.manifest_status_key(status),
                    "gsi1sk": f"{sealed_at}#{manifest_id}",
                    "manifest_uri": f"s3://{MANIFESTS}/{key}",
                    "file_count": n_files,
                    "bytes": 100 * n_files,
                    "sealed_at": sealed_at,
                    "created_at": sealed_at,
                    "owner": "test",
                }
            ),
        )
        return pks

    def set_owner(self, manifest_id: str, execution_arn: str) -> None:
        """Name ``execution_arn`` as the execution running the manifest (a stuck state on purpose)."""
        self.ddb.update_item(
            TableName=TABLE,
            Key=_to_item({"pk": keys.manifest_pk(manifest_id), "sk": keys.MANIFEST_SK}),
            UpdateExpression="SET execution_arn = :a",
            ExpressionAttributeValues=_to_item({":a": execution_arn}),
        )

    def use_engine(self, setting: str, monkeypatch: pytest.MonkeyPatch, lambda_max_bytes: int | None = None) -> None:
        """ClaimRun's engine rule for the next claims (CONVERT_ENGINE, LAMBDA_MAX_BYTES)."""
        monkeypatch.setenv("CONVERT_ENGINE", setting)
        if lambda_max_bytes is not None:
            monkeypatch.setenv("LAMBDA_MAX_BYTES", str(lambda_max_bytes))
        get_settings.cache_clear()

    def put_manifest_ready(self, manifest_id: str) -> None:
        resp = self.events.put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": MANIFEST_READY,
                    "EventBusName": BUS,
                    "Detail": json.dumps({"manifest_id": manifest_id, "date_prefix": DATE}),
                }
            ]
        )
        assert resp["FailedEntryCount"] == 0

    def executions(self) -> list[dict[str, Any]]:
        return self.sfn.list_executions(stateMachineArn=self.state_machine_arn)["executions"]

    def wait_all(self, expected: int, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.executions()) < expected:
            assert time.monotonic() < deadline, f"only {len(self.executions())} executions started"
            time.sleep(0.1)
        return [wait_for_execution(self.sfn, e["executionArn"], timeout=timeout) for e in self.executions()]

    def failures(self, execution_arn: str) -> list[tuple[str, Any]]:
        """Failure events of an execution's history (for assertion messages)."""
        events = self.sfn.get_execution_history(executionArn=execution_arn)["events"]
        return [(e["type"], v) for e in events for k, v in e.items() if k.endswith("FailedEventDetails")]

    def manifest(self, manifest_id: str) -> dict[str, Any]:
        return tasks.store().get_manifest(manifest_id) or {}

    def file(self, pk: str) -> dict[str, Any]:
        from chalicelib.tracking_table import from_item

        return from_item(self.ddb.get_item(TableName=TABLE, Key=_to_item({"pk": pk, "sk": keys.FILE_SK}))["Item"])

    def alerts(self) -> list[dict[str, Any]]:
        return [json.loads(json.loads(m["Body"])["Message"]) for m in drain(self.sqs, self.alerts_url)]

    def outputs(self, manifest_id: str) -> list[str]:
        prefix = f"parquet/dt={DATE}/manifest={manifest_id}/"
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=DATA, Prefix=prefix).get("Contents", [])]


def _to_item(data: dict[str, Any]) -> dict[str, Any]:
    from chalicelib.tracking_table import to_item

    return to_item(data)


@pytest.fixture
def workflow(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workflow]:
    requests.post(f"{aws}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=30)
    ddb, s3, sqs, sns, events, sfn = (client(n) for n in ("dynamodb", "s3", "sqs", "sns", "events", "stepfunctions"))
    create_tracking_table(ddb, TABLE)
    for bucket in (MANIFESTS, DATA):
        s3.create_bucket(Bucket=bucket)
    topic = sns.create_topic(Name="wf-alerts")["TopicArn"]
    alerts_url = sqs.create_queue(QueueName="wf-alerts-inbox")["QueueUrl"]
    alerts_arn = sqs.get_queue_attributes(QueueUrl=alerts_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=alerts_arn)
    dlq_url = sqs.create_queue(QueueName="wf-events-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    env = {
        "TABLE_NAME": TABLE,
        "MANIFEST_BUCKET": MANIFESTS,
        "EVENT_BUS_NAME": BUS,
        "OUTPUT_PATH": OUTPUT,
        "QUARANTINE_PATH": QUARANTINE,
        "ALERTS_TOPIC_ARN": topic,
        "SHARD_COUNT": "4",
        "MAX_ATTEMPTS": "3",
        "BREAKER_THRESHOLD": "3",
        "EVENTS_DLQ_URL": dlq_url,
        "RECOVER_AFTER_SECONDS": "60",
        # Glue unless a test chooses the rule (CONVERT_ENGINE=auto): these tests' manifests are small.
        "CONVERT_ENGINE": "glue",
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    aws_clients_reset()

    host = LocalTaskHost(aws)
    glue = GlueDouble(s3)
    converter = ConverterDouble(glue)
    arns = {
        "ConverterFunctionArn": host.serve_lambda("wf-converter", converter),
        "ClaimRunFunctionArn": host.serve_lambda("wf-claim_run", tasks.claim_run_task),
        "FinalizeFunctionArn": host.serve_lambda("wf-finalize", tasks.finalize_task),
        "CompensateFunctionArn": host.serve_lambda("wf-compensate", tasks.compensate_task),
    }
    host.serve_glue_job("wf-convert", glue)
    definition = render_definition(
        {
            **arns,
            "GlueJobName": "wf-convert",
            "TableName": TABLE,
            "AlertsTopicArn": topic,
            "OutputPath": OUTPUT,
            "QuarantinePath": QUARANTINE,
            "ManifestBucket": MANIFESTS,
        }
    )
    role = host._role_arn("wf-states")
    sm_arn = deploy_state_machine(sfn, "wf-convert-manifest", definition, role)
    monkeypatch.setenv("STATE_MACHINE_ARN", sm_arn)
    get_settings.cache_clear()
    events.create_event_bus(Name=BUS)
    bus_arn = events.describe_event_bus(Name=BUS)["Arn"]
    events.put_rule(
        Name=RULE, EventBusName=BUS, EventPattern=json.dumps({"source": [SOURCE], "detail-type": [MANIFEST_READY]})
    )
    events.put_targets(
        Rule=RULE,
        EventBusName=BUS,
        Targets=[
            {
                "Id": "sfn",
                "Arn": sm_arn,
                "RoleArn": role,
                "RetryPolicy": {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 10},
                "DeadLetterConfig": {"Arn": dlq_arn},
            }
        ],
    )
    events.create_archive(ArchiveName="wf-archive", EventSourceArn=bus_arn, RetentionDays=7)
    host.route_rule(BUS, RULE)
    wf = Workflow(host, sm_arn, glue, converter, ddb, s3, sqs, sfn, events, alerts_url, dlq_url)
    yield wf
    # Executions run in moto's threads: let them end before the reset, or they would run on into
    # the next test's resources (same names).
    for e in wf.executions():
        wait_for_execution(sfn, e["executionArn"], timeout=60)
    get_settings.cache_clear()
    aws_clients_reset()
    requests.post(f"{aws}/moto-api/config", json={"stepfunctions": {"execute_state_machine": False}}, timeout=30)


def aws_clients_reset() -> None:
    aws.clients.clear()
