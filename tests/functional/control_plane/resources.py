"""Reusable moto resources for control-plane tests (and anyone who needs the tracking table)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib import keys
from chalicelib.events import MANIFEST_READY, SOURCE

CONFIG = Path(__file__).resolve().parents[3] / ".chalice" / "config.json"


def create_tracking_table(client: Any, name: str) -> str:
    """The tracking table exactly as chalicelib.keys describes it; returns its stream ARN.

    pk/sk strings, GSI ``status-index`` on gsi1pk/gsi1sk with projection ALL, stream NEW_IMAGE,
    on-demand billing, TTL on ``ttl``."""
    client.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi1pk", "gsi1sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": keys.STATUS_INDEX,
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    client.update_time_to_live(TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"})
    return client.describe_table(TableName=name)["Table"]["LatestStreamArn"]


def stage_environment(stage: str = "test") -> dict[str, str]:
    """Environment variables Chalice gives the functions of ``stage`` (global, then stage)."""
    config = json.loads(CONFIG.read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


@dataclass
class ControlPlaneResources:
    table: str
    stream_arn: str
    input_bucket: str
    manifest_bucket: str
    ingest_queue_url: str
    ingest_dlq_url: str
    events_capture_url: str  # SQS target of a ManifestReady rule: what reached the bus


def create_control_plane(clients: dict[str, Any], env: dict[str, str], input_bucket: str = "ndjson-parquet-test-input"):
    """Table, buckets (input notifying the ingest queue, as S3 does), queues, bus and a capture rule."""
    ddb, s3, sqs, events = clients["dynamodb"], clients["s3"], clients["sqs"], clients["events"]
    stream_arn = create_tracking_table(ddb, env["TABLE_NAME"])
    ingest_url = sqs.create_queue(QueueName="ndjson-parquet-test-ingest")["QueueUrl"]
    dlq_name = env["INGEST_DLQ_URL"].rsplit("/", 1)[-1]
    dlq_url = sqs.create_queue(QueueName=dlq_name)["QueueUrl"]
    capture_url = sqs.create_queue(QueueName="ndjson-parquet-test-events-capture")["QueueUrl"]
    ingest_arn = sqs.get_queue_attributes(QueueUrl=ingest_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket=input_bucket)
    s3.create_bucket(Bucket=env["MANIFEST_BUCKET"])
    s3.put_bucket_notification_configuration(
        Bucket=input_bucket,
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": ingest_arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    events.create_event_bus(Name=env["EVENT_BUS_NAME"])
    events.put_rule(
        Name="capture-manifest-ready",
        EventBusName=env["EVENT_BUS_NAME"],
        EventPattern=json.dumps({"source": [SOURCE], "detail-type": [MANIFEST_READY]}),
    )
    events.put_targets(
        Rule="capture-manifest-ready", EventBusName=env["EVENT_BUS_NAME"], Targets=[{"Id": "q", "Arn": capture_arn}]
    )
    return ControlPlaneResources(
        table=env["TABLE_NAME"],
        stream_arn=stream_arn,
        input_bucket=input_bucket,
        manifest_bucket=env["MANIFEST_BUCKET"],
        ingest_queue_url=ingest_url,
        ingest_dlq_url=dlq_url,
        events_capture_url=capture_url,
    )


def drain(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message now in a queue (received, then deleted), with attributes."""
    out: list[dict[str, Any]] = []
    while True:
        got = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not got:
            return out
        out.extend(got)
        sqs.delete_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
        )
