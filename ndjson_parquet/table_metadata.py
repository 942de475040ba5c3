"""The table's schema, its evolution and its snapshots, from the Iceberg metadata JSON alone (pure).

``ndjson-parquet schema`` reads that JSON through chalicelib/table_commits.py ``current_metadata``
(the local SQL catalog's file, or the deployed Glue table's file in S3) and renders it here, so
both print the same thing. Types are written as pyiceberg writes them (``str(Schema)``), which
tests/unit/test_table_metadata.py checks against pyiceberg itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def type_text(kind: Any) -> str:
    """An Iceberg type of the metadata JSON as text: ``long``, ``struct<3: a: optional string>``,
    ``list<string>``, ``map<string, long>`` (primitive types are already text there)."""
    if isinstance(kind, str):
        return kind
    if kind["type"] == "struct":
        return f"struct<{', '.join(field_text(f) for f in kind['fields'])}>"
    if kind["type"] == "list":
        return f"list<{type_text(kind['element'])}>"
    if kind["type"] == "map":
        return f"map<{type_text(kind['key'])}, {type_text(kind['value'])}>"
    raise ValueError(f"unknown Iceberg type {kind!r}")


def field_text(field: dict[str, Any]) -> str:
    doc = f" ({field['doc']})" if field.get("doc") else ""
    required = "required" if field.get("required") else "optional"
    return f"{field['id']}: {field['name']}: {required} {type_text(field['type'])}{doc}"


def schema_text(schema: dict[str, Any]) -> str:
    return "table {\n" + "".join(f"  {field_text(f)}\n" for f in schema["fields"]) + "}"


def current_schema(metadata: dict[str, Any]) -> dict[str, Any]:
    """The current schema (format v2 ``schemas``; v1 tables may carry only ``schema``)."""
    schema_id = metadata.get("current-schema-id")
    for schema in metadata.get("schemas", []):
        if schema.get("schema-id") == schema_id:
            return schema
    if "schema" in metadata:
        return metadata["schema"]
    raise ValueError(f"the metadata names current schema {schema_id}, but holds no such schema")


def _snapshot(snap: dict[str, Any]) -> dict[str, Any]:
    summary = snap.get("summary") or {}
    return {
        "snapshot_id": snap["snapshot-id"],
        "at": datetime.fromtimestamp(snap["timestamp-ms"] / 1000, UTC).isoformat(timespec="seconds"),
        "operation": summary.get("operation"),
        "manifest_id": summary.get("manifest_id"),
        "run_token": summary.get("run_token"),
        "schema_id": snap.get("schema-id"),
        "rows": int(summary.get("total-records", 0)),
        # glue/table.py commit_manifest joins a commit's changes with "; ".
        "schema_changes": [c for c in summary.get("schema_changes", "").split("; ") if c],
    }


def describe(metadata: dict[str, Any], table: str, metadata_location: str = "") -> dict[str, Any]:
    """Schema, evolution (which manifest added or widened what) and snapshots, as plain data."""
    schema = current_schema(metadata)
    current = metadata.get("current-snapshot-id")
    snapshots = [_snapshot(s) for s in metadata.get("snapshots", [])]
    evolution = [
        {"schema_id": s["schema_id"], "manifest_id": s["manifest_id"], "changes": s["schema_changes"]}
        for s in snapshots
        if s["schema_changes"]
    ]
    return {
        "table": table,
        "location": metadata.get("location"),
        "metadata_location": metadata_location,
        "schema_id": schema.get("schema-id", metadata.get("current-schema-id")),
        "schema": schema_text(schema),
        "columns": [
            {"id": f["id"], "name": f["name"], "type": type_text(f["type"]), "required": bool(f.get("required"))}
            for f in schema["fields"]
        ],
        "evolution": evolution,
        "snapshots": snapshots,
        "current_snapshot_id": None if current in (None, -1) else current,  # v1 writes -1 for none
    }


def text(info: dict[str, Any]) -> str:
    """``describe``'s result as the command prints it without ``--json``."""
    lines = [f"table {info['table']} at {info['location']} (schema {info['schema_id']})", info["schema"], "evolution:"]
    for step in info["evolution"] or [{"schema_id": 0, "manifest_id": None, "changes": ["(none since creation)"]}]:
        for change in step["changes"]:
            who = f"manifest {step['manifest_id']}" if step["manifest_id"] else ""
            lines.append(f"  schema {step['schema_id']}: {change} {who}".rstrip())
    lines.append("snapshots:")
    for s in info["snapshots"]:
        lines.append(
            f"  {s['snapshot_id']}  {s['at']}  {s['operation'] or '':<9} manifest {s['manifest_id']}  "
            f"rows {s['rows']:,}  schema {s['schema_id']}"
        )
    return "\n".join(lines)
