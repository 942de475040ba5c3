"""`ndjson-parquet schema --stage S` against a stack deployed into moto: two manifests committed by
glue/table.py to the Glue table the stack's outputs name, read back from metadata only; its
errors; and `schema OUT` on a local SQL catalog, which renders the same metadata the same way."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from glue.storage import S3Config
from glue.table import TableConfig, commit_manifest, open_catalog
from glue.table_schema import evolve
from ndjson_parquet import infra_template as it
from ndjson_parquet.cli import main
from ndjson_parquet.local.dataset import LocalDataset, local_table_config
from ndjson_parquet.local.runtime import _restored_environment
from tests.conftest import client

PROVENANCE = [("_rescued_data", pa.string()), ("_source_file", pa.string()), ("_source_line", pa.int64())]
FIRST = pa.schema(
    [("n", pa.int32()), ("user", pa.struct([("id", pa.int64())])), *PROVENANCE, ("_manifest_id", pa.string())]
)
# The second manifest widens n and brings a new nested field.
SECOND = pa.schema(
    [
        ("n", pa.int64()),
        ("user", pa.struct([("id", pa.int64()), ("plan", pa.string())])),
        *PROVENANCE,
        ("_manifest_id", pa.string()),
    ]
)
DATA_FIELDS = ("n", "user")


@pytest.fixture(autouse=True)
def restored_environment() -> Iterator[None]:
    # The CLI points boto3 and the settings at the stack through os.environ, as every operator command does.
    with _restored_environment():
        yield


def _parquet(schema: pa.Schema, mid: str) -> bytes:
    row = {"n": 1, "user": {"id": 7, "plan": "pro"}, "_manifest_id": mid}
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist([row], schema=schema), sink)
    return sink.getvalue().to_pybytes()


def _data(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f for f in schema if f.name in DATA_FIELDS])


def _commit_two(config: TableConfig, catalog: object, put: object) -> list[int]:
    """m1 creates the table, m2 widens n and adds user.plan (changes as glue/table_schema.py finds them)."""
    ids = []
    table_schema = None
    for mid, schema in (("m1", FIRST), ("m2", SECOND)):
        _, changes = evolve(table_schema, _data(schema), "addNewColumns")
        uri = put(f"data/{mid}.parquet", _parquet(schema, mid))
        result = commit_manifest(catalog, config, schema, [uri], mid, f"tok-{mid}", changes if table_schema else None)
        ids.append(result.snapshot_id)
        table_schema = _data(schema)
    return ids


def _schema(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(["schema", *argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


COLUMNS = [
    {"id": 1, "name": "n", "type": "long", "required": False},
    # user.plan (8) came with m2, after the first schema's last column id (7).
    {"id": 2, "name": "user", "type": "struct<7: id: optional long, 8: plan: optional string>", "required": False},
    {"id": 3, "name": "_rescued_data", "type": "string", "required": False},
    {"id": 4, "name": "_source_file", "type": "string", "required": False},
    {"id": 5, "name": "_source_line", "type": "long", "required": False},
    {"id": 6, "name": "_manifest_id", "type": "string", "required": False},
]
EVOLUTION = [{"schema_id": 1, "manifest_id": "m2", "changes": ["widened n int32 -> int64", "added user.plan string"]}]


@pytest.fixture
def deployed(aws: str) -> it.StackOutputs:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # moto warns once per unsupported resource type
        return it.deploy_to_endpoint(
            client("cloudformation"),
            it.stack_name("local"),
            it.stack_parameters("local"),
            template_body=it.render_template("local", allow_placeholder=True),
        )


@pytest.mark.slow
def test_stage_reads_the_deployed_tables_metadata(
    deployed: it.StackOutputs, aws: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the stack's table without any commit: a clear error, no traceback
    rc, out, err = _schema(capsys, "--stage", "local", "--endpoint-url", aws)
    assert rc == 2 and out == ""
    assert err == (
        "error: table ndjson_parquet_local.dataset of stage local has no commit yet: "
        "the first manifest's commit creates it\n"
    )

    # WHEN two manifests commit to the table the outputs name, the second changing its schema
    location = deployed["DatasetLocation"]
    bucket, prefix = urlparse(location).netloc, urlparse(location).path.strip("/")
    s3 = client("s3")

    def put(key: str, body: bytes) -> str:
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{key}", Body=body)
        return f"{location}/{key}"

    config = TableConfig("glue", deployed["DatasetDatabaseName"], deployed["DatasetTableName"], location)
    snapshot_ids = _commit_two(config, open_catalog(config, S3Config.from_env()), put)

    # THEN schema --stage prints the current columns, which manifest changed what, and both snapshots
    rc, out, err = _schema(capsys, "--stage", "local", "--endpoint-url", aws, "--region", "us-east-1", "--json")
    assert rc == 0, err
    info = json.loads(out)
    assert info["table"] == "ndjson_parquet_local.dataset"
    assert info["location"] == location
    pointer = client("glue").get_table(DatabaseName="ndjson_parquet_local", Name="dataset")["Table"]["Parameters"]
    assert info["metadata_location"] == pointer["metadata_location"]
    assert info["schema_id"] == 1
    assert info["columns"] == COLUMNS
    assert info["evolution"] == EVOLUTION
    assert [s["snapshot_id"] for s in info["snapshots"]] == snapshot_ids
    assert info["current_snapshot_id"] == snapshot_ids[-1]
    assert [(s["manifest_id"], s["run_token"], s["schema_id"], s["rows"]) for s in info["snapshots"]] == [
        ("m1", "tok-m1", 0, 1),
        ("m2", "tok-m2", 1, 2),
    ]
    rc, out, _ = _schema(capsys, "--stage", "local", "--endpoint-url", aws)
    assert rc == 0
    assert "  schema 1: added user.plan string manifest m2" in out.splitlines()
    assert f"  {snapshot_ids[1]}  " in out

    # AND a catalog pointer to a metadata file that is gone is reported as such
    metadata_key = urlparse(pointer["metadata_location"]).path.lstrip("/")
    s3.delete_object(Bucket=bucket, Key=metadata_key)
    rc, out, err = _schema(capsys, "--stage", "local", "--endpoint-url", aws)
    assert rc == 2 and out == ""
    assert err == f"error: the catalog points at {pointer['metadata_location']}, which does not exist\n"


def test_stage_without_a_stack_says_so(aws: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _schema(capsys, "--stage", "nope", "--endpoint-url", aws)
    assert rc == 2 and out == ""
    assert err.startswith("error: stack ndjson-parquet-nope not found (")
    assert err.rstrip().endswith("pass --stage/--endpoint-url/--region of a deployed stack")


def test_local_out_renders_the_same_metadata_as_pyiceberg_sees_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "parquet"
    config = local_table_config(out_dir)
    rc, _, err = _schema(capsys, str(out_dir))
    assert rc == 2 and "is not a dataset written by `ndjson-parquet run`" in err
    out_dir.mkdir()
    LocalDataset(out_dir, config, None).write_marker()
    rc, _, err = _schema(capsys, str(out_dir))
    assert (rc, err) == (2, f"error: {out_dir} holds no table yet (no manifest was committed)\n")

    data = Path(config.location) / "data"
    data.mkdir(parents=True)

    def put(key: str, body: bytes) -> str:
        (Path(config.location) / key).write_bytes(body)
        return str(Path(config.location) / key)

    catalog = open_catalog(config)
    snapshot_ids = _commit_two(config, catalog, put)

    rc, out, err = _schema(capsys, str(out_dir), "--json")
    assert rc == 0, err
    info = json.loads(out)
    table = catalog.load_table(config.identifier)
    assert info["table"] == ".".join(table.name()) == "ndjson_parquet.dataset"
    assert info["location"] == table.location()
    assert info["metadata_location"] == table.metadata_location
    assert info["schema"] == str(table.schema())
    assert info["schema_id"] == table.schema().schema_id == 1
    assert info["columns"] == COLUMNS
    assert info["evolution"] == EVOLUTION
    assert [s["snapshot_id"] for s in info["snapshots"]] == [s.snapshot_id for s in table.snapshots()] == snapshot_ids

    Path(table.metadata_location).unlink()
    rc, out, err = _schema(capsys, str(out_dir))
    assert (rc, out) == (2, "")
    assert err == f"error: the catalog points at {table.metadata_location}, which does not exist\n"
