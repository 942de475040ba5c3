"""Glue job entry point: NDJSON files of one manifest -> partitioned Parquet + quarantine + run summary.

Usage (Glue passes the same ``--NAME value`` pairs; locally a plain SparkSession is started)::

    python glue/ndjson_to_parquet.py --MANIFEST_PATH m.json --OUTPUT_PATH out/ --QUARANTINE_PATH q/ \
        [--COMPRESSION_TYPE snappy|gzip|zstd|lz4|brotli|none] [--SCHEMA_PATH schema.ddl] [--TARGET_FILE_MB 128]
        [--TABLE_NAME t --TABLE_NAMESPACE db --TABLE_LOCATION s3://bucket/table
         --TABLE_CATALOG glue|sql [--CATALOG_URI sqlite:////path/catalog.db]
         --SCHEMA_MODE addNewColumns|rescue|failOnNewColumns]

Stable API for callers that already hold a SparkSession (the local runtime keeps one warm)::

    from glue.ndjson_to_parquet import JobArgs, RunSummary, run_job
    summary: RunSummary = run_job(spark, JobArgs(manifest_path=..., output_path=..., quarantine_path=...))

``run_job`` raises ``JobError`` (``JobArgsError``), ``ReconciliationError`` (the workflow's, from
chalicelib/workflow/errors.py), ``MissingObjectError`` and ``ManifestError``; nothing is committed
when it raises. See
``glue/job.py`` for the guarantees and ``glue/schema.py`` for how type conflicts resolve.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path


# Locally the repo root holds the ``glue`` and ``chalicelib`` packages; on Glue they come from the
# --extra-py-files zip and this is a no-op.
def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


if not (_importable("chalicelib") and _importable("glue.job")):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chalicelib.manifest import ManifestError  # noqa: E402
from chalicelib.workflow.errors import ReconciliationError  # noqa: E402
from glue.job import JobArgs, JobArgsError, JobError, RunSummary, run_job  # noqa: E402
from glue.storage import MissingObjectError  # noqa: E402
from glue.table import TableConfig  # noqa: E402
from glue.table_schema import DEFAULT_MODE  # noqa: E402

__all__ = ["JobArgs", "JobError", "RunSummary", "main", "parse_args", "run_job"]

REQUIRED = ("MANIFEST_PATH", "OUTPUT_PATH", "QUARANTINE_PATH")
OPTIONAL = (
    "COMPRESSION_TYPE",
    "SCHEMA_PATH",
    "TARGET_FILE_MB",
    "LOG_LEVEL",
    # The Iceberg table output (glue/table.py); without TABLE_NAME the job writes manifest folders.
    "TABLE_CATALOG",
    "TABLE_NAMESPACE",
    "TABLE_NAME",
    "TABLE_LOCATION",
    "CATALOG_URI",
    "SCHEMA_MODE",
)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _to_job_args(values: dict[str, str | None]) -> JobArgs:
    raw_mb = values.get("TARGET_FILE_MB") or "128"
    try:
        target_mb = float(raw_mb)
    except ValueError:
        raise JobArgsError(f"--TARGET_FILE_MB must be a number, got {raw_mb!r}") from None
    return JobArgs(
        manifest_path=values.get("MANIFEST_PATH") or "",
        output_path=values.get("OUTPUT_PATH") or "",
        quarantine_path=values.get("QUARANTINE_PATH") or "",
        compression=(values.get("COMPRESSION_TYPE") or "snappy").lower(),
        schema_path=values.get("SCHEMA_PATH") or None,
        target_file_mb=target_mb,
        table=_table_config(values),
    ).validate()


def _table_config(values: dict[str, str | None]) -> TableConfig | None:
    if not values.get("TABLE_NAME"):
        return None
    return TableConfig(
        catalog=values.get("TABLE_CATALOG") or "glue",
        namespace=values.get("TABLE_NAMESPACE") or "",
        name=values.get("TABLE_NAME") or "",
        location=values.get("TABLE_LOCATION") or "",
        uri=values.get("CATALOG_URI") or None,
        mode=values.get("SCHEMA_MODE") or DEFAULT_MODE,
    )


def parse_args(argv: Sequence[str]) -> JobArgs:
    """Glue's getResolvedOptions when awsglue is importable, else argparse with the same names."""
    try:
        from awsglue.utils import getResolvedOptions
    except ImportError:
        parser = argparse.ArgumentParser(prog="ndjson_to_parquet.py", description=__doc__.splitlines()[0])
        for name in REQUIRED:
            parser.add_argument(f"--{name}", required=True)
        for name in (*OPTIONAL, "JOB_NAME"):
            parser.add_argument(f"--{name}")
        try:
            ns = parser.parse_args(list(argv))
        except SystemExit as exc:
            raise JobArgsError("invalid arguments (see usage above)") from exc
        values = vars(ns)
    else:  # on Glue: it ignores the service's own arguments (--TempDir, --JOB_ID, ...)
        present = [n for n in OPTIONAL if f"--{n}" in argv]
        values = getResolvedOptions(list(argv), [*REQUIRED, *present])
    _configure_logging(values.get("LOG_LEVEL"))
    return _to_job_args(values)


def _configure_logging(level: str | None) -> None:
    level = (level or "INFO").upper()
    if level not in LOG_LEVELS:
        raise JobArgsError(f"--LOG_LEVEL {level!r} is not one of {', '.join(LOG_LEVELS)}")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def spark_session():
    """Glue's session when running on Glue, else a local one (AQE on, UI off)."""
    try:
        from awsglue.context import GlueContext
        from pyspark.context import SparkContext

        return GlueContext(SparkContext.getOrCreate()).spark_session
    except ImportError:
        from glue.spark import local_session

        return local_session()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(argv)  # before Spark starts: a typo costs no JVM
    except JobArgsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    spark = spark_session()
    try:
        summary = run_job(spark, args)
    except (JobError, ReconciliationError, MissingObjectError, ManifestError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    totals = summary.totals
    print(
        json.dumps(
            {"manifest_id": summary.manifest_id, "output": summary.output_path, **totals, "timings": summary.timings}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
