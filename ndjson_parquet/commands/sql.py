"""``ndjson-parquet sql OUT "select ... from dataset"``: DuckDB over the local table's current snapshot.

``dataset`` is the Iceberg table as of its current snapshot (read through pyiceberg, so no DuckDB
extension is downloaded and no file a later snapshot replaced is seen); ``quarantine`` holds the
lines set aside, with their reasons.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

HELP = "Query the local dataset with DuckDB: views `dataset` (the table's current snapshot) and `quarantine`."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="the --output folder of `ndjson-parquet run`")
    parser.add_argument("query", help='SQL, for example "select count(*) from dataset"')
    parser.add_argument("--json", action="store_true", help="one JSON object per row instead of a table")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def main(args: argparse.Namespace) -> int:
    import duckdb

    from ndjson_parquet.local.dataset import DatasetError, LocalDataset

    try:
        con = LocalDataset.open(args.out).connect()
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = con.sql(args.query)
    except duckdb.Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result is None:  # a statement without rows
        return 0
    if args.json:
        names = result.columns
        for row in result.fetchall():
            print(json.dumps({n: _plain(v) for n, v in zip(names, row, strict=True)}, ensure_ascii=False))
    else:
        result.show(max_rows=10_000, max_width=10_000)
    return 0
