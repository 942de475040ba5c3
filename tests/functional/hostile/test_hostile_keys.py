"""Hostile object keys and hostile queue messages through the whole local pipeline.

Keys with ``../``, unicode, spaces, ``+``, a 1000-byte key; notifications about another
bucket, bodies that are not JSON or not S3 events, and a 255 KB body. Each key is converted
exactly once (its lines checked one by one against a strict reading), each poison message ends
in the ingest DLQ with a reason, and nothing is written outside the configured output,
quarantine and manifest prefixes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from ndjson_parquet.local.dataset import LocalDataset
from ndjson_parquet.local.inputs import InputFile
from ndjson_parquet.local.runtime import LocalPipeline, SharedServices, shared_services
from tests.chaos.invariants import check_invariants, scenario_options, write_scenario_input

pytestmark = [pytest.mark.slow, pytest.mark.spark]

HOSTILE_KEYS = (
    "dir/../2026-01-01/escape.ndjson",
    "../../etc/passwd.ndjson",
    "2026-01-01/ünïcödé ☃ 日本.ndjson",
    "2026-01-01/with space+plus%20and%2Bescapes.ndjson",
    "2026-01-01/" + "k" * 1000 + ".ndjson",
)
PART = re.compile(r"^(data|quarantine)/dt=\d{4}-\d{2}-\d{2}/manifest=[A-Za-z0-9._-]+/part-[^/]+$")
RUN_SUMMARY = re.compile(r"^data/_runs/[A-Za-z0-9._-]+\.json$")


@pytest.fixture(scope="module")
def services() -> Iterator[SharedServices]:
    with shared_services() as shared:
        yield shared


class HostilePipeline(LocalPipeline):
    """The local run, plus hostile keys put straight into the input bucket and poison messages
    sent to the ingest queue before the pollers start."""

    poison: tuple[str, ...] = ()

    def _upload(self, files: list[InputFile], bucket: str, prefix: str) -> None:
        super()._upload(files, bucket, prefix)
        s3 = boto3.client("s3")
        for n, key in enumerate(HOSTILE_KEYS):
            path = self.opts.input_dir.parent / f"hostile-{n}.ndjson"
            path.write_bytes(b'{"n": %d}\n{"bad": \n\n{"n": 2}\n' % n)
            s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
            self.uploaded[f"s3://{bucket}/{key}"] = InputFile(
                path=path, key=key, size=path.stat().st_size, trackable=True
            )
        other = {
            "Records": [
                {
                    "eventSource": "aws:s3",
                    "eventName": "ObjectCreated:Put",
                    "eventTime": "2026-01-01T00:00:00.000Z",
                    "s3": {
                        "bucket": {"name": "someone-elses-bucket"},
                        "object": {"key": "x.ndjson", "size": 5, "eTag": "e"},
                    },
                }
            ]
        }
        poison = [
            "not json at all",
            json.dumps({"Records": "not a list"}),
            json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]}),
            "x" * 255_000,  # close to SQS's 256 KB limit: the DLQ copy must still fit
            json.dumps(other),  # INPUT_BUCKET is set in a stage: another bucket is a wiring error
        ]
        self.poison = tuple(poison)
        sqs = boto3.client("sqs")
        for body in self.poison:
            sqs.send_message(QueueUrl=self.outputs["IngestQueueUrl"], MessageBody=body)


def test_hostile_keys_and_messages(services: SharedServices, tmp_path: Path) -> None:
    # GIVEN a small normal input, hostile keys and poison messages
    write_scenario_input(tmp_path / "in", seed=3)
    opts = scenario_options(tmp_path, batch_max_files=4, recover_idle_seconds=2.0, max_recovers=100)
    run = HostilePipeline(opts)
    # WHEN the pipeline runs
    run.run(shared=services)

    # THEN every file (hostile keys included) is converted exactly once, line by line, and the
    # ingest DLQ holds exactly the poison messages that are not S3 events of our bucket
    sqs = boto3.client("sqs")
    dlq = run.outputs["IngestDlqUrl"]
    bodies, reasons = [], []
    while True:
        got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
            "Messages", []
        )
        if not got:
            break
        for m in got:
            bodies.append(m["Body"])
            reasons.append(m.get("MessageAttributes", {}).get("reason", {}).get("StringValue", ""))
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=m["ReceiptHandle"])
    assert sorted(bodies) == sorted(run.poison), [b[:80] for b in bodies]
    assert all(reasons), reasons
    violations = check_invariants(run, None, poison_messages=0)  # DLQ emptied above, after checking it
    assert not violations, "\n".join(violations)
    # each hostile key's own lines, read back from the output: rows at lines 1 and 4 with their
    # values, the bad line 2 in the quarantine (line 3 is blank)
    bucket = run.outputs["InputBucketName"]
    rows: dict[str, list[tuple[int, int]]] = {}
    # through the table's current snapshot (ndjson_parquet/local/dataset.py)
    for r in LocalDataset.open(run.opts.output_dir).rows(("_source_file", "_source_line", "n")):
        rows.setdefault(r["_source_file"], []).append((r["_source_line"], r["n"]))
    bad: dict[str, list[int]] = {}
    for part in sorted(run.opts.quarantine.rglob("*.jsonl")):
        for line in part.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            bad.setdefault(record["source_file"], []).append(record["line_number"])
    for n, key in enumerate(HOSTILE_KEYS):
        uri = f"s3://{bucket}/{key}"
        assert sorted(rows.get(uri, [])) == [(1, n), (4, 2)], (key, rows.get(uri))
        assert bad.get(uri) == [2], (key, bad.get(uri))

    # and nothing is written outside the configured prefixes
    s3 = boto3.client("s3")
    written = {
        run.outputs["OutputBucketName"]: [],
        run.outputs["QuarantineBucketName"]: [],
    }
    for bucket, found in written.items():
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            found.extend(o["Key"] for o in page.get("Contents", []))
    stray = [(b, k) for b, ks in written.items() for k in ks if not (PART.match(k) or RUN_SUMMARY.match(k))]
    assert not stray, stray[:5]
    assert written[run.outputs["OutputBucketName"]], "no output at all"
