"""Open Parquet output the way users do: Spark 3.5 with default settings (case-insensitive), DuckDB, pyarrow."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq


def open_everywhere(spark, parts: list[Path], rows: int) -> None:
    """Every part opens in each engine, and together they hold ``rows`` rows."""
    assert parts, "no Parquet file written"
    got_pa = sum(pq.read_table(p).num_rows for p in parts)
    got_duck = sum(duckdb.sql(f"select count(*) from read_parquet('{p}')").fetchone()[0] for p in parts)
    for p in parts:
        duckdb.sql(f"select * from read_parquet('{p}')").fetchall()
    df = spark.read.parquet(*[str(p) for p in parts])
    got_spark = len(df.collect())  # reads every column, nested ones included
    assert (got_pa, got_duck, got_spark) == (rows, rows, rows)
