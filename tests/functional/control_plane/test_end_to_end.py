"""The issue's "done when": objects in → full manifests, flush → remainder, one event each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chalice.test import Client

from app import app
from chalicelib import keys
from chalicelib.events import MANIFEST_READY, SOURCE
from chalicelib.manifest import Manifest
from chalicelib.tracking_table import from_item
from ndjson_parquet.local.pumps import StreamPump, pump_sqs
from tests.events import ddb_stream_event, sqs_event
from tests.functional.control_plane.conftest import ControlPlane
from tests.functional.control_plane.resources import drain

ROOT = str(Path(__file__).resolve().parents[3])


@pytest.mark.slow
def test_objects_become_full_manifests_then_flush_seals_the_rest(cp: ControlPlane) -> None:
    # GIVEN N objects dropped into the input bucket (BATCH_MAX_FILES=20 in the test stage)
    max_files = int(cp.env["BATCH_MAX_FILES"])
    n = 3 * max_files + 7
    expected = {f"s3://{cp.res.input_bucket}/2024-05-06/part-{i:04d}.ndjson" for i in range(n)}
    for i in range(n):
        cp.clients["s3"].put_object(
            Bucket=cp.res.input_bucket, Key=f"2024-05-06/part-{i:04d}.ndjson", Body=b'{"i":%d}\n' % i
        )

    with Client(app, stage_name="test", project_dir=ROOT) as client:
        # WHEN SQS and the stream are pumped through the Chalice handlers
        pump_sqs(
            cp.clients["sqs"],
            cp.res.ingest_queue_url,
            lambda msgs: client.lambda_.invoke("track_files", sqs_event([m.body for m in msgs])),
            batch_size=10,
        )
        stream = StreamPump(
            cp.clients["dynamodbstreams"],
            cp.res.stream_arn,
            lambda recs: client.lambda_.invoke("count_arrivals", ddb_stream_event(recs)),
            batch_size=25,
        )
        stream.pump()
        before_flush = _manifests(cp)

        # THEN floor(N / BATCH_MAX_FILES) full manifests
        assert [m.file_count for m in before_flush] == [max_files] * (n // max_files)

        # WHEN flush_stale runs (2024-05-06 is before today: every shard is closed)
        client.lambda_.invoke("flush_stale", client.events.generate_cw_event("aws.events", "Scheduled Event", {}, []))
        stream.pump()  # the claims' MODIFY records must not count or seal anything

    # THEN one more manifest holds the remainder, every object is in exactly one manifest
    manifests = _manifests(cp)
    assert sorted(m.file_count for m in manifests) == sorted([max_files] * (n // max_files) + [n % max_files])
    listed = [f.uri for m in manifests for f in _read(cp, m).files]
    assert len(listed) == n and set(listed) == expected

    # AND one ManifestReady per manifest reached the bus, with the documented detail
    events = [json.loads(m["Body"]) for m in drain(cp.clients["sqs"], cp.res.events_capture_url)]
    assert all(e["source"] == SOURCE and e["detail-type"] == MANIFEST_READY for e in events)
    details = sorted((e["detail"] for e in events), key=lambda d: d["manifest_id"])
    assert details == [
        {
            "manifest_id": m.manifest_id,
            "manifest_uri": m.manifest_uri,
            "date_prefix": "2024-05-06",
            "file_count": m.file_count,
            "bytes": m.bytes,
        }
        for m in sorted(manifests, key=lambda m: m.manifest_id)
    ]

    # AND nothing is left pending; every file is claimed by the manifest that lists it
    items = [from_item(i) for i in cp.clients["dynamodb"].scan(TableName=cp.res.table)["Items"]]
    files = [i for i in items if i["sk"] == keys.FILE_SK]
    assert {f["status"] for f in files} == {keys.CLAIMED}
    by_manifest = {m.manifest_id: {f.uri for f in _read(cp, m).files} for m in manifests}
    assert all(f"s3://{f['bucket']}/{f['key']}" in by_manifest[f["manifest_id"]] for f in files)
    seal = next(i for i in items if i["sk"] == keys.SEAL_SK)
    assert (seal["seq"], seal["sealed_files"]) == (len(manifests), n)
    assert "gsi1pk" not in seal  # a drained past date is closed


class _M:
    def __init__(self, item: dict) -> None:
        self.manifest_id = item["manifest_id"]
        self.manifest_uri = item["manifest_uri"]
        self.file_count = item["file_count"]
        self.bytes = item["bytes"]
        self.status = item["status"]
        self.emitted = "emitted_at" in item


def _manifests(cp: ControlPlane) -> list[_M]:
    items = [from_item(i) for i in cp.clients["dynamodb"].scan(TableName=cp.res.table)["Items"]]
    found = [_M(i) for i in items if i["sk"] == keys.MANIFEST_SK]
    assert all(m.status == keys.MANIFEST_SEALED and m.emitted for m in found)
    return sorted(found, key=lambda m: m.manifest_id)


def _read(cp: ControlPlane, m: _M) -> Manifest:
    bucket, key = m.manifest_uri.removeprefix("s3://").split("/", 1)
    return Manifest.from_json(cp.clients["s3"].get_object(Bucket=bucket, Key=key)["Body"].read())
