"""The job against S3 (the session's moto server): s3:// manifest and inputs read with boto3 inside
Spark tasks, honouring AWS_ENDPOINT_URL; outputs local (what the local runtime uses) or on S3."""

from __future__ import annotations

import gzip
import io
import json

import pyarrow.parquet as pq
import pytest

from glue.job import JobArgs, run_job
from glue.storage import MissingObjectError
from tests.conftest import client

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def _put_inputs(s3) -> str:
    s3.create_bucket(Bucket="in-bucket")
    s3.put_object(Bucket="in-bucket", Key="2024/a b.ndjson", Body=b'{"a": 1}\nnope\n{"a": 2}\n')
    s3.put_object(Bucket="in-bucket", Key="2024/c.jsonl.gz", Body=gzip.compress(b'{"a": 3, "b": "x"}\n'))
    manifest = {
        "manifest_id": "m-s3",
        "date_prefix": "2024-05-02",
        "files": [
            {"uri": "s3://in-bucket/2024/a b.ndjson", "size": 27, "etag": "e1"},
            {"uri": "s3://in-bucket/2024/c.jsonl.gz", "size": 40, "etag": "e2"},
        ],
    }
    s3.put_object(Bucket="in-bucket", Key="manifests/m-s3.json", Body=json.dumps(manifest).encode())
    return "s3://in-bucket/manifests/m-s3.json"


def test_s3_manifest_and_inputs_to_local_output(spark, aws, tmp_path):
    s3 = client("s3")
    manifest = _put_inputs(s3)
    summary = run_job(
        spark, JobArgs(manifest_path=manifest, output_path=str(tmp_path / "o"), quarantine_path=str(tmp_path / "q"))
    )
    folder = tmp_path / "o" / "dt=2024-05-02" / "manifest=m-s3"
    rows = sorted(
        (r["_source_file"], r["_source_line"], r["a"], r["b"])
        for p in folder.glob("*.parquet")
        for r in pq.ParquetFile(p).read().to_pylist()
    )
    assert rows == [
        ("s3://in-bucket/2024/a b.ndjson", 1, 1, None),
        ("s3://in-bucket/2024/a b.ndjson", 3, 2, None),
        ("s3://in-bucket/2024/c.jsonl.gz", 1, 3, "x"),
    ]
    assert summary.totals["quarantined"] == 1


def test_s3_output_and_rerun_replaces(spark, aws):
    s3 = client("s3")
    manifest = _put_inputs(s3)
    s3.create_bucket(Bucket="out-bucket")
    args = JobArgs(
        manifest_path=manifest, output_path="s3://out-bucket/parquet", quarantine_path="s3://out-bucket/quarantine"
    )
    run_job(spark, args)
    # a stale part from an imagined earlier run must disappear on rerun
    s3.put_object(Bucket="out-bucket", Key="parquet/dt=2024-05-02/manifest=m-s3/part-09999.parquet", Body=b"stale")
    run_job(spark, args)

    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="out-bucket")["Contents"])
    data = [k for k in keys if k.startswith("parquet/dt=")]
    assert data and all(k.startswith("parquet/dt=2024-05-02/manifest=m-s3/part-") for k in data)
    assert "parquet/dt=2024-05-02/manifest=m-s3/part-09999.parquet" not in keys
    assert "parquet/_runs/m-s3.json" in keys
    assert not [k for k in keys if "_staging" in k]
    total = sum(
        pq.read_table(io.BytesIO(s3.get_object(Bucket="out-bucket", Key=k)["Body"].read())).num_rows for k in data
    )
    assert total == 3
    q = [k for k in keys if k.startswith("quarantine/dt=2024-05-02/manifest=m-s3/")]
    record = json.loads(s3.get_object(Bucket="out-bucket", Key=q[0])["Body"].read())
    assert (record["source_file"], record["line_number"], record["raw"]) == (
        "s3://in-bucket/2024/a b.ndjson",
        2,
        "nope",
    )


def test_missing_s3_object_is_named(spark, aws, tmp_path):
    s3 = client("s3")
    manifest = _put_inputs(s3)
    s3.delete_object(Bucket="in-bucket", Key="2024/c.jsonl.gz")
    with pytest.raises(MissingObjectError, match=r"s3://in-bucket/2024/c\.jsonl\.gz"):
        run_job(
            spark, JobArgs(manifest_path=manifest, output_path=str(tmp_path / "o"), quarantine_path=str(tmp_path / "q"))
        )
    assert not (tmp_path / "o").exists()


def test_versioned_object_reads_the_tracked_version(spark, aws, tmp_path):
    # GIVEN a versioned bucket where the key was overwritten after the manifest was sealed
    s3 = client("s3")
    s3.create_bucket(Bucket="ver-bucket")
    s3.put_bucket_versioning(Bucket="ver-bucket", VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket="ver-bucket", Key="k.ndjson", Body=b'{"v": "tracked"}\n')["VersionId"]
    s3.put_object(Bucket="ver-bucket", Key="k.ndjson", Body=b'{"v": "overwritten"}\n')
    manifest = tmp_path / "m.json"
    files = [{"uri": "s3://ver-bucket/k.ndjson", "size": 17, "version_id": first}]
    manifest.write_text(json.dumps({"manifest_id": "m-ver", "date_prefix": "2024-05-02", "files": files}))

    # WHEN / THEN the job converts the version the manifest names
    run_job(spark, JobArgs(str(manifest), str(tmp_path / "o"), str(tmp_path / "q")))
    folder = tmp_path / "o" / "dt=2024-05-02" / "manifest=m-ver"
    assert [r["v"] for p in folder.glob("*.parquet") for r in pq.ParquetFile(p).read().to_pylist()] == ["tracked"]

    # and a version that does not exist is a missing object, named
    files[0]["version_id"] = "no-such-version"
    manifest.write_text(json.dumps({"manifest_id": "m-ver", "date_prefix": "2024-05-02", "files": files}))
    with pytest.raises(MissingObjectError, match="ver-bucket/k.ndjson"):
        run_job(spark, JobArgs(str(manifest), str(tmp_path / "o2"), str(tmp_path / "q2")))
