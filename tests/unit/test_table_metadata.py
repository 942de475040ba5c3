"""ndjson_parquet/table_metadata.py: what `ndjson-parquet schema` prints, from the metadata JSON alone."""

from __future__ import annotations

import json

import pytest
from pyiceberg.schema import Schema
from pyiceberg.types import (
    DecimalType,
    FixedType,
    ListType,
    LongType,
    MapType,
    NestedField,
    StringType,
    StructType,
    TimestamptzType,
)

from ndjson_parquet.table_metadata import current_schema, describe, schema_text, text

RICH = Schema(
    NestedField(1, "id", LongType(), required=True, doc="the key"),
    NestedField(
        2,
        "user",
        StructType(
            NestedField(3, "name", StringType(), required=False),
            NestedField(4, "tags", ListType(5, StringType(), element_required=False), required=False),
        ),
        required=False,
    ),
    NestedField(6, "m", MapType(7, StringType(), 8, DecimalType(10, 2), value_required=False), required=False),
    NestedField(9, "ts", TimestamptzType(), required=False),
    NestedField(10, "h", FixedType(16), required=False),
    NestedField(
        11,
        "rows",
        ListType(12, StructType(NestedField(13, "x", LongType(), required=False)), element_required=False),
        required=False,
    ),
    schema_id=3,
)


def test_schema_text_is_what_pyiceberg_prints_for_the_same_schema() -> None:
    as_json = json.loads(RICH.model_dump_json())
    assert schema_text(as_json) == str(RICH)


def _metadata() -> dict:
    s0 = {"type": "struct", "schema-id": 0, "fields": [{"id": 1, "name": "n", "type": "int", "required": False}]}
    s1 = {
        "type": "struct",
        "schema-id": 1,
        "fields": [
            {"id": 1, "name": "n", "type": "long", "required": False},
            {"id": 2, "name": "plan", "type": "string", "required": False},
        ],
    }
    return {
        "location": "s3://b/table",
        "current-schema-id": 1,
        "schemas": [s0, s1],
        "current-snapshot-id": 20,
        "snapshots": [
            {
                "snapshot-id": 10,
                "timestamp-ms": 1_714_521_600_000,
                "schema-id": 0,
                "summary": {"operation": "append", "manifest_id": "m1", "run_token": "t1", "total-records": "3"},
            },
            {
                "snapshot-id": 20,
                "parent-snapshot-id": 10,
                "timestamp-ms": 1_714_521_660_000,
                "schema-id": 1,
                "summary": {
                    "operation": "append",
                    "manifest_id": "m2",
                    "run_token": "t2",
                    "total-records": "5",
                    "schema_changes": "widened n long; added plan string",
                },
            },
        ],
    }


def test_describe_names_the_manifest_of_each_change_and_every_snapshot() -> None:
    info = describe(_metadata(), "db.t", "s3://b/table/metadata/2.json")
    assert info["table"] == "db.t" and info["location"] == "s3://b/table"
    assert info["metadata_location"] == "s3://b/table/metadata/2.json"
    assert info["schema_id"] == 1
    assert info["columns"] == [
        {"id": 1, "name": "n", "type": "long", "required": False},
        {"id": 2, "name": "plan", "type": "string", "required": False},
    ]
    assert info["evolution"] == [
        {"schema_id": 1, "manifest_id": "m2", "changes": ["widened n long", "added plan string"]}
    ]
    assert [(s["snapshot_id"], s["manifest_id"], s["rows"], s["at"]) for s in info["snapshots"]] == [
        (10, "m1", 3, "2024-05-01T00:00:00+00:00"),
        (20, "m2", 5, "2024-05-01T00:01:00+00:00"),
    ]
    assert info["current_snapshot_id"] == 20


def test_text_lists_schema_evolution_and_snapshots() -> None:
    out = text(describe(_metadata(), "db.t"))
    assert out.splitlines() == [
        "table db.t at s3://b/table (schema 1)",
        "table {",
        "  1: n: optional long",
        "  2: plan: optional string",
        "}",
        "evolution:",
        "  schema 1: widened n long manifest m2",
        "  schema 1: added plan string manifest m2",
        "snapshots:",
        "  10  2024-05-01T00:00:00+00:00  append    manifest m1  rows 3  schema 0",
        "  20  2024-05-01T00:01:00+00:00  append    manifest m2  rows 5  schema 1",
    ]


def test_a_table_without_snapshots_or_changes() -> None:
    metadata = {**_metadata(), "snapshots": [], "current-snapshot-id": -1}
    info = describe(metadata, "db.t")
    assert (info["snapshots"], info["evolution"], info["current_snapshot_id"]) == ([], [], None)
    assert "  schema 0: (none since creation)" in text(info).splitlines()


def test_a_v1_table_with_only_schema_and_a_dangling_schema_id() -> None:
    v1 = {"current-schema-id": 0, "schema": {"type": "struct", "fields": []}}
    assert current_schema(v1) == v1["schema"]
    with pytest.raises(ValueError, match="current schema 7"):
        current_schema({"current-schema-id": 7, "schemas": []})
