"""Compensate's question "did this manifest commit?" (chalicelib/table_commits.py), answered from
the catalog pointer and the metadata JSON, against tables pyiceberg really committed: the SQL
catalog on sqlite, and the Glue Data Catalog with S3 on moto's server."""

from __future__ import annotations

from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq

from chalicelib.table_commits import TableRef, committed_snapshot, lineage
from glue.storage import S3Config
from glue.table import TableConfig, commit_manifest, open_catalog

SCHEMA = pa.schema(
    [
        ("n", pa.int64()),
        ("_rescued_data", pa.string()),
        ("_source_file", pa.string()),
        ("_source_line", pa.int64()),
        ("_manifest_id", pa.string()),
    ]
)


def _bytes(mid: str) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist([{"n": 1, "_manifest_id": mid}], schema=SCHEMA), sink)
    return sink.getvalue().to_pybytes()


def test_sql_catalog_commits_are_found_by_manifest(tmp_path: Path) -> None:
    config = TableConfig("sql", "ns", "t", str(tmp_path / "table"), f"sqlite:///{tmp_path}/catalog.db")
    ref = TableRef("sql", "ns", "t", config.uri or "")
    assert committed_snapshot(ref, "m1", None, None) is None  # no catalog yet
    catalog = open_catalog(config)
    data = tmp_path / "table" / "data"
    data.mkdir(parents=True)
    results = {}
    for mid in ("m1", "m2"):
        path = data / f"{mid}.parquet"
        path.write_bytes(_bytes(mid))
        results[mid] = commit_manifest(catalog, config, SCHEMA, [str(path)], mid, "tok")

    assert committed_snapshot(ref, "m1", None, None) == results["m1"].snapshot_id
    assert committed_snapshot(ref, "m2", None, None) == results["m2"].snapshot_id
    assert committed_snapshot(ref, "m3", None, None) is None
    assert committed_snapshot(TableRef("sql", "ns", "other", ref.catalog_uri), "m1", None, None) is None


def test_glue_catalog_and_s3_on_moto(aws: str) -> None:
    s3, glue = boto3.client("s3"), boto3.client("glue")
    s3.create_bucket(Bucket="lake")
    glue.create_database(DatabaseInput={"Name": "ns"})
    ref = TableRef("glue", "ns", "t")
    assert committed_snapshot(ref, "m1", s3, glue) is None  # the table does not exist yet
    config = TableConfig("glue", "ns", "t", "s3://lake/table")
    catalog = open_catalog(config, S3Config.from_env())
    s3.put_object(Bucket="lake", Key="table/data/m1.parquet", Body=_bytes("m1"))

    result = commit_manifest(catalog, config, SCHEMA, ["s3://lake/table/data/m1.parquet"], "m1", "tok")

    assert committed_snapshot(ref, "m1", s3, glue) == result.snapshot_id
    assert committed_snapshot(ref, "m2", s3, glue) is None


def test_lineage_follows_parents_from_the_current_snapshot_only() -> None:
    metadata = {
        "current-snapshot-id": 3,
        "snapshots": [
            {"snapshot-id": 1, "summary": {"manifest_id": "a"}},
            {"snapshot-id": 2, "parent-snapshot-id": 1, "summary": {"manifest_id": "b"}},
            {"snapshot-id": 9, "parent-snapshot-id": 1, "summary": {"manifest_id": "lost"}},  # not current
            {"snapshot-id": 3, "parent-snapshot-id": 2, "summary": {"manifest_id": "c"}},
        ],
    }
    assert [s["snapshot-id"] for s in lineage(metadata)] == [3, 2, 1]
    assert lineage({"snapshots": []}) == []
