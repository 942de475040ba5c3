"""Captured samples (what moto really emits) and factories that build Lambda events from them.

- s3_object_created.json: an S3 → SQS notification body from moto (key URL-encoded by S3).
- s3_test_event.json: the s3:TestEvent moto sends when the notification is configured.
- ddb_stream_file_insert.json: moto's stream record of a tracker FILE put, Lambda-shaped.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

HERE = Path(__file__).resolve().parent


def load(name: str) -> dict[str, Any]:
    return json.loads((HERE / name).read_text())


def s3_notification_body(
    key: str, size: int = 10, bucket: str = "ndjson-parquet-test-input", etag: str = "e" * 32, **obj: Any
) -> str:
    """The captured notification with another object in it (key encoded as S3 encodes it)."""
    event = copy.deepcopy(load("s3_object_created.json"))
    record = event["Records"][0]
    record["s3"]["bucket"] = {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"}
    record["s3"]["object"] = {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag, **obj}
    return json.dumps(event)


def sns_wrapped(body: str) -> str:
    return json.dumps({"Type": "Notification", "MessageId": "sns-1", "TopicArn": "arn:aws:sns:::t", "Message": body})


def sqs_event(bodies: list[str], first_id: int = 0) -> dict[str, Any]:
    """A Lambda SQS event (distinct message ids, unlike chalice's generate_sqs_event)."""
    return {
        "Records": [
            {
                "messageId": f"msg-{first_id + i}",
                "receiptHandle": f"rh-{first_id + i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ndjson-parquet-test-ingest",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


def ddb_stream_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A Lambda DynamoDB-stream event from records already Lambda-shaped (pumps.to_lambda_record)."""
    return {"Records": records}
