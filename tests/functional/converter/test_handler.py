"""The converter Lambda's handler in-process against the session's moto server: a manifest in S3
converted by its worker processes and committed to the Glue Data Catalog's Iceberg table (moto's),
the workers kept warm for the next call, /tmp-style scratch emptied first, and the two error names
Step Functions routes to Glue raised by name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from converter import handler as h
from glue import isolation
from glue.table import TableConfig, open_catalog
from tests.conftest import client

pytestmark = [pytest.mark.slow]

BUCKET = "lake"
TABLE = TableConfig("glue", "analytics", "events", f"s3://{BUCKET}/table")


class Context:
    """What the handler uses of Lambda's context object."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def put_manifest(s3, manifest_id: str, bodies: dict[str, bytes], date: str = "2024-05-01") -> str:
    files = []
    for name, body in bodies.items():
        s3.put_object(Bucket=BUCKET, Key=f"in/{date}/{name}", Body=body)
        files.append({"uri": f"s3://{BUCKET}/in/{date}/{name}", "size": len(body), "etag": name})
    manifest = {"manifest_id": manifest_id, "date_prefix": date, "files": files}
    s3.put_object(Bucket=BUCKET, Key=f"manifests/{manifest_id}.json", Body=json.dumps(manifest).encode())
    return f"s3://{BUCKET}/manifests/{manifest_id}.json"


@pytest.fixture
def converter_env(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    client("s3").create_bucket(Bucket=BUCKET)
    client("glue").create_database(DatabaseInput={"Name": TABLE.namespace})  # the stack's, in AWS
    scratch = tmp_path / "scratch"
    env = {
        "OUTPUT_PATH": f"s3://{BUCKET}/parquet",
        "QUARANTINE_PATH": f"s3://{BUCKET}/quarantine",
        "TABLE_CATALOG": "glue",
        "TABLE_NAMESPACE": TABLE.namespace,
        "TABLE_NAME": TABLE.name,
        "TABLE_LOCATION": TABLE.location,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769",  # one worker
        "CONVERTER_SCRATCH_DIR": str(scratch),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    h.reset()
    yield scratch
    h.reset()


def table_rows(config: TableConfig = TABLE) -> tuple[int | None, list[dict]]:
    from glue.storage import S3Config

    table = open_catalog(config, S3Config.from_env()).load_table(config.identifier)
    rows = table.scan().to_arrow().to_pylist()
    return table.current_snapshot().snapshot_id, sorted(rows, key=lambda r: (r["_source_file"], r["_source_line"]))


def test_a_manifest_is_converted_and_committed_then_the_warm_workers_take_the_next(converter_env: Path) -> None:
    s3 = client("s3")
    bodies = {"a.ndjson": b'{"n": 1, "s": "x"}\nnot json\n{"n": 2}\n', "b.jsonl": b'{"n": 3}\n'}
    uri = put_manifest(s3, "m1", bodies)
    stale = converter_env / "pymp-killed-call"
    stale.mkdir(parents=True)
    (stale / "part-00000.parquet.tmp").write_bytes(b"\0" * 4096)  # a killed call's scratch

    out = h.handler({"manifest_id": "m1", "manifest_uri": uri, "execution_arn": "arn:x", "run": 1}, Context(120_000))

    assert list(converter_env.iterdir()) == []
    assert out["engine"] == "lambda" and out["manifest_id"] == "m1"
    assert out["totals"] == {
        "lines": 4,
        "rows": 3,
        "quarantined": 1,
        "blank": 0,
        "bytes": sum(map(len, bodies.values())),
    }
    summary = json.loads(s3.get_object(Bucket=BUCKET, Key="parquet/_runs/m1.json")["Body"].read())
    assert (summary["run_token"], summary["engine"], summary["snapshot_id"]) == (
        out["run_id"],
        "lambda",
        out["snapshot_id"],
    )
    snapshot, rows = table_rows()
    assert snapshot == out["snapshot_id"]
    assert [(r["n"], r["_source_line"], r["_manifest_id"]) for r in rows] == [(1, 1, "m1"), (2, 3, "m1"), (3, 1, "m1")]
    glue_table = boto3.client("glue").get_table(DatabaseName=TABLE.namespace, Name=TABLE.name)["Table"]
    assert glue_table["Parameters"]["table_type"].upper() == "ICEBERG"

    # the same container's next call: the same worker processes, the manifest's rows replaced
    pids = h._executor.pids()
    again = h.handler({"manifest_id": "m1", "manifest_uri": uri}, Context(120_000))
    assert h._executor.pids() == pids
    assert again["run_id"] != out["run_id"] and again["snapshot_id"] != out["snapshot_id"]
    assert len(table_rows()[1]) == 3


def test_too_little_time_left_is_converter_deadline_error_before_any_commit(converter_env: Path) -> None:
    uri = put_manifest(client("s3"), "m2", {"a.ndjson": b'{"n": 1}\n'})

    # 5 s left: under the 20 s the executor keeps for the commit and the reply
    with pytest.raises(h.ConverterDeadlineError) as info:
        h.handler({"manifest_id": "m2", "manifest_uri": uri}, Context(5_000))

    assert type(info.value).__name__ == "ConverterDeadlineError"  # the error name Step Functions sees
    assert "Contents" not in client("s3").list_objects_v2(Bucket=BUCKET, Prefix="table/")
    assert "Contents" not in client("s3").list_objects_v2(Bucket=BUCKET, Prefix="parquet/_runs/")


def test_a_worker_that_dies_is_worker_died_error_and_the_next_call_gets_a_new_one(
    converter_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = client("s3")
    uri = put_manifest(s3, "m3", {"a.ndjson": b'{"n": 1, "boom": "OOM-KILL-ME"}\n'})
    monkeypatch.setattr(isolation, "INJECT", isolation.InjectedFault(b"OOM-KILL-ME", "kill"))

    with pytest.raises(h.WorkerDiedError) as info:
        h.handler({"manifest_id": "m3", "manifest_uri": uri}, Context(120_000))
    assert type(info.value).__name__ == "WorkerDiedError"
    assert "exit code 137" in str(info.value)

    monkeypatch.setattr(isolation, "INJECT", None)
    out = h.handler({"manifest_id": "m3", "manifest_uri": uri}, Context(120_000))
    assert out["totals"]["rows"] == 1 and table_rows()[0] == out["snapshot_id"]


def test_a_configuration_error_names_the_variable_on_the_first_call(
    converter_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TABLE_LOCATION")
    with pytest.raises(h.ConverterConfigError, match="TABLE_LOCATION is required"):
        h.handler({"manifest_id": "m4", "manifest_uri": "s3://lake/manifests/m4.json"}, Context(120_000))
    assert h._executor is None
