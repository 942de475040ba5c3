"""backfill: objects already in the bucket become notifications with the same identity S3's own
notifications give them (bucket + key + version id), so backfilling tracked objects is a no-op."""

from __future__ import annotations

import json

from chalicelib.s3_events import parse_message
from ndjson_parquet.cli import main as cli_main
from tests.conftest import client


def _drain(sqs, url: str) -> list[str]:
    bodies = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not got:
            return bodies
        for m in got:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def _identities(bodies: list[str]) -> set[tuple[str, str, str | None, int]]:
    out = set()
    for body in bodies:
        for obj in parse_message(body).objects:
            out.add((obj.bucket, obj.key, obj.version_id, obj.size))
    return out


def test_backfill_matches_real_notifications(aws: str, capsys) -> None:
    # GIVEN a versioned, notified bucket with objects whose keys need URL-encoding
    s3, sqs = client("s3"), client("sqs")
    s3.create_bucket(Bucket="input-a")
    s3.put_bucket_versioning(Bucket="input-a", VersioningConfiguration={"Status": "Enabled"})
    real_q = sqs.create_queue(QueueName="real")["QueueUrl"]
    real_arn = sqs.get_queue_attributes(QueueUrl=real_q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(
        Bucket="input-a",
        NotificationConfiguration={"QueueConfigurations": [{"QueueArn": real_arn, "Events": ["s3:ObjectCreated:*"]}]},
    )
    keys = ["2026-11-20/a b+c.ndjson", "x/ünï.jsonl.gz", "plain.json"]
    for key in keys:
        s3.put_object(Bucket="input-a", Key=key, Body=b'{"a":1}\n')
    s3.put_object(Bucket="input-a", Key="plain.json", Body=b'{"a":2}\n')  # a second version: only the latest counts
    s3.put_object(Bucket="input-a", Key="notes.txt", Body=b"x")
    real = [b for b in _drain(sqs, real_q) if "TestEvent" not in b]
    backfill_q = sqs.create_queue(QueueName="backfill")["QueueUrl"]

    # WHEN backfill runs against the same endpoint, the way an operator would
    code = cli_main(
        ["backfill", "--endpoint-url", aws, "--bucket", "input-a", "--queue-url", backfill_q, "--prefix", ""]
    )

    # THEN every current version is enqueued once, keys decoded back exactly as from S3's own
    # notifications, and carrying the current version id as S3 does for a versioned bucket
    # (moto's notifications omit versionId, so ids are compared with HeadObject instead).
    assert code == 0
    assert "enqueued 3 object(s)" in capsys.readouterr().out
    backfilled = _drain(sqs, backfill_q)
    assert len(backfilled) == 3
    real_keys = {(b, k, size) for b, k, _v, size in _identities(real) if not k.endswith(".txt")}
    assert {(b, k, size) for b, k, _v, size in _identities(backfilled)} == real_keys
    for bucket, key, version, _size in _identities(backfilled):
        assert version == _latest_version(s3, bucket, key)
    record = json.loads(backfilled[0])["Records"][0]
    assert record["eventSource"] == "aws:s3" and record["eventName"].startswith("ObjectCreated")


def _latest_version(s3, bucket: str, key: str) -> str:
    return s3.head_object(Bucket=bucket, Key=key)["VersionId"]


def test_backfill_dry_run_sends_nothing(aws: str, capsys) -> None:
    s3, sqs = client("s3"), client("sqs")
    s3.create_bucket(Bucket="input-b")
    s3.put_object(Bucket="input-b", Key="a.ndjson", Body=b"{}\n")
    q = sqs.create_queue(QueueName="q2")["QueueUrl"]
    code = cli_main(["backfill", "--endpoint-url", aws, "--bucket", "input-b", "--queue-url", q, "--dry-run"])
    assert code == 0
    assert "would enqueue 1 object(s)" in capsys.readouterr().out
    assert _drain(sqs, q) == []


def test_operator_command_without_stack_is_one_clear_error(aws: str, capsys, monkeypatch) -> None:
    monkeypatch.delenv("TABLE_NAME", raising=False)
    code = cli_main(["status", "--endpoint-url", aws, "--stage", "nosuch"])
    assert code == 2
    assert "stack ndjson-parquet-nosuch not found" in capsys.readouterr().err
