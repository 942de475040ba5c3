"""``ndjson-parquet schema OUT`` or ``schema --stage S``: the table's schema, how it evolved (which
manifest added or widened what) and its snapshots, from the table's metadata alone.

OUT reads the local run's SQL catalog; ``--stage`` reads the deployed stack's outputs
(ndjson_parquet/stack_env.py), the Glue table's ``metadata_location`` and that JSON file in S3,
nothing else (no data file, no pyiceberg). Both go through chalicelib/table_commits.py
``current_metadata`` and render with ndjson_parquet/table_metadata.py."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = "Show the table's schema, its evolution history and its snapshots (local OUT or a deployed --stage)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ndjson_parquet.stack_env import add_aws_options

    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("out", type=Path, nargs="?", help="the --output folder of `ndjson-parquet run`")
    where.add_argument("--stage", help="read the deployed table of this stage's stack (ndjson-parquet-<stage>)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    add_aws_options(parser, with_stage=False)


class SchemaError(RuntimeError):
    """Why there is nothing to show; the message says what to do."""


def _local(out: Path) -> tuple[Any, Any, Any, str]:
    from chalicelib.table_commits import TableRef
    from ndjson_parquet.local.dataset import DatasetError, LocalDataset

    try:
        config = LocalDataset.open(out).table
    except DatasetError as exc:
        raise SchemaError(str(exc)) from None
    ref = TableRef("sql", config.namespace, config.name, config.uri or "")
    return ref, None, None, f"{out} holds no table yet (no manifest was committed)"


def _deployed(args: argparse.Namespace) -> tuple[Any, Any, Any, str]:
    from chalicelib import aws
    from chalicelib.settings import Settings, SettingsError
    from ndjson_parquet.stack_env import StackNotFoundError, apply_aws_options

    try:
        apply_aws_options(args)
        ref = Settings.from_env().table_ref()
    except (StackNotFoundError, SettingsError) as exc:
        raise SchemaError(f"{exc}; pass --stage/--endpoint-url/--region of a deployed stack") from None
    if ref is None:
        raise SchemaError(
            f"no Iceberg table for stage {args.stage}: neither the stack's outputs (DatasetDatabaseName, "
            "DatasetTableName) nor ICEBERG_NAMESPACE/ICEBERG_TABLE in the environment name one"
        )
    empty = (
        f"table {ref.namespace}.{ref.name} of stage {args.stage} has no commit yet: "
        "the first manifest's commit creates it"
    )
    return ref, aws.client("s3"), aws.client("glue"), empty


def main(args: argparse.Namespace) -> int:
    from chalicelib.table_commits import MetadataMissingError, current_metadata
    from ndjson_parquet.table_metadata import describe, text

    try:
        ref, s3, glue, empty = _deployed(args) if args.stage else _local(args.out)
        found = current_metadata(ref, s3, glue)
        if found is None:
            raise SchemaError(empty)
    except (SchemaError, MetadataMissingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    location, metadata = found
    info = describe(metadata, f"{ref.namespace}.{ref.name}", location)
    print(json.dumps(info, indent=2) if args.json else text(info))
    return 0
