"""INPUT_BUCKET / INPUT_PREFIX scope on notifications S3 really produced, and the ingest DLQ's
redrive back to the ingest queue through the CLI."""

from __future__ import annotations

import json

import pytest

from chalicelib import keys, tracker
from chalicelib.tracking_table import from_item
from ndjson_parquet.cli import main
from tests.functional.control_plane.conftest import ControlPlane
from tests.functional.control_plane.resources import drain

OTHER = "someone-elses-bucket"


def _arn(cp: ControlPlane, url: str) -> str:
    return cp.clients["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _tracked_keys(cp: ControlPlane) -> set[str]:
    items = cp.clients["dynamodb"].scan(TableName=cp.res.table)["Items"]
    return {i["key"] for i in map(from_item, items) if i["sk"] == keys.FILE_SK}


def test_other_bucket_is_dead_lettered_outside_prefix_is_counted_and_redrive_returns_it(
    cp: ControlPlane, capsys: pytest.CaptureFixture[str]
) -> None:
    s3, sqs = cp.clients["s3"], cp.clients["sqs"]
    # GIVEN a second bucket wired to the ingest queue by mistake, and an object outside INPUT_PREFIX
    s3.create_bucket(Bucket=OTHER)
    s3.put_bucket_notification_configuration(
        Bucket=OTHER,
        NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": _arn(cp, cp.res.ingest_queue_url), "Events": ["s3:ObjectCreated:*"]}]
        },
    )
    s3.put_object(Bucket=cp.res.input_bucket, Key="in/2024-05-06/a.ndjson", Body=b"{}\n")
    s3.put_object(Bucket=cp.res.input_bucket, Key="other-team/2024-05-06/b.ndjson", Body=b"{}\n")
    s3.put_object(Bucket=OTHER, Key="in/2024-05-06/c.ndjson", Body=b"{}\n")
    bodies = [m["Body"] for m in drain(sqs, cp.res.ingest_queue_url)]
    settings = cp.settings(INPUT_PREFIX="in/")
    assert settings.input_bucket == cp.res.input_bucket  # declared for the test stage in .chalice/config.json

    # WHEN the tracker gets every notification
    result = tracker.track_messages([tracker.SqsMessage(f"m{i}", b) for i, b in enumerate(bodies)], settings=settings)

    # THEN only the input bucket's object under the prefix is tracked; the other prefix is counted,
    # the other bucket's message is in the ingest DLQ with reason unexpected_bucket
    assert _tracked_keys(cp) == {"in/2024-05-06/a.ndjson"}
    assert (result.tracked, result.ignored, result.outside_prefix, len(result.dead_lettered)) == (1, 1, 1, 1)
    got = sqs.receive_message(
        QueueUrl=cp.res.ingest_dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
    )["Messages"]
    [dead] = got
    assert dead["MessageAttributes"]["reason"]["StringValue"] == tracker.UNEXPECTED_BUCKET
    assert json.loads(dead["Body"])["Records"][0]["s3"]["bucket"]["name"] == OTHER

    # WHEN the wiring is understood and the ingest DLQ is redriven
    sqs.set_queue_attributes(
        QueueUrl=cp.res.ingest_queue_url,
        Attributes={
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": _arn(cp, cp.res.ingest_dlq_url), "maxReceiveCount": "5"}
            )
        },
    )
    assert main(["redrive", "--queue", "ingest"]) == 0

    # THEN the count is printed, the DLQ is empty and the message is back in the ingest queue, unchanged
    assert capsys.readouterr().out.strip() == "ingest: 1 messages moved back to the ingest queue"
    assert drain(sqs, cp.res.ingest_dlq_url) == []
    [back] = drain(sqs, cp.res.ingest_queue_url)
    assert back["Body"] == dead["Body"]
    # ...and a tracker that accepts that bucket (INPUT_BUCKET unset) tracks it
    again = tracker.track_messages([tracker.SqsMessage("r", back["Body"])], settings=cp.settings(INPUT_BUCKET=""))
    assert again.tracked == 1 and "in/2024-05-06/c.ndjson" in _tracked_keys(cp)
