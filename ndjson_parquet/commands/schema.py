"""``ndjson-parquet schema OUT``: the table's schema, how it evolved (which manifest added or widened
what) and its snapshots, from the table's metadata alone."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HELP = "Show the local table's schema, its evolution history and its snapshots."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="the --output folder of `ndjson-parquet run`")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def describe(table: Any) -> dict[str, Any]:
    """Schema, evolution and snapshots of a pyiceberg table, as plain data."""
    snapshots = []
    for snap in table.snapshots():
        summary = snap.summary
        extra = summary.additional_properties if summary else {}
        snapshots.append(
            {
                "snapshot_id": snap.snapshot_id,
                "at": datetime.fromtimestamp(snap.timestamp_ms / 1000, UTC).isoformat(timespec="seconds"),
                "operation": summary.operation.value if summary else None,
                "manifest_id": extra.get("manifest_id"),
                "run_token": extra.get("run_token"),
                "schema_id": snap.schema_id,
                "rows": int(extra.get("total-records", 0)),
                "schema_changes": [c for c in extra.get("schema_changes", "").split("; ") if c],
            }
        )
    evolution = [
        {"schema_id": s["schema_id"], "manifest_id": s["manifest_id"], "changes": s["schema_changes"]}
        for s in snapshots
        if s["schema_changes"]
    ]
    current = table.current_snapshot()
    return {
        "table": ".".join(table.name()),
        "location": table.location(),
        "schema_id": table.schema().schema_id,
        "schema": str(table.schema()),
        "evolution": evolution,
        "snapshots": snapshots,
        "current_snapshot_id": current.snapshot_id if current else None,
    }


def main(args: argparse.Namespace) -> int:
    from ndjson_parquet.local.dataset import DatasetError, LocalDataset

    try:
        table = LocalDataset.open(args.out).load()
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    info = describe(table)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"table {info['table']} at {info['location']} (schema {info['schema_id']})")
    print(info["schema"])
    print("evolution:")
    for step in info["evolution"] or [{"schema_id": 0, "manifest_id": None, "changes": ["(none since creation)"]}]:
        for change in step["changes"]:
            who = f"manifest {step['manifest_id']}" if step["manifest_id"] else ""
            print(f"  schema {step['schema_id']}: {change} {who}".rstrip())
    print("snapshots:")
    for s in info["snapshots"]:
        print(
            f"  {s['snapshot_id']}  {s['at']}  {s['operation']:<9} manifest {s['manifest_id']}  "
            f"rows {s['rows']:,}  schema {s['schema_id']}"
        )
    return 0
