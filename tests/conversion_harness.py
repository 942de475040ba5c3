"""The job's conversion of one manifest without Spark, for tests that compare it with the oracle."""

from __future__ import annotations

import functools
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import glue.convert as convert
import glue.lines as lines
from glue.schema import final_schema

REQUIRE_CORPUS = "NDJSON_PARQUET_REQUIRE_CORPUS"


def corpus_missing(path: Path) -> str | None:
    """Why a corpus outside the repository cannot be used (None: it can). With
    NDJSON_PARQUET_REQUIRE_CORPUS=1 (CI) a missing corpus fails instead of skipping."""
    if path.is_dir():
        return None
    reason = f"corpus not found at {path} (a fresh clone without ../shared)"
    if os.environ.get(REQUIRE_CORPUS) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_CORPUS}=1 requires it")
    return reason


@contextmanager
def variant(slow: bool = False, stdlib: bool = False) -> Iterator[None]:
    """Force the slow path (Python values) and/or the standard-library parser."""
    with pytest.MonkeyPatch.context() as mp:
        if slow:
            mp.setattr(convert, "_fast", lambda *a, **k: None)
        if stdlib:
            mp.setattr(convert, "parse_lines", functools.partial(lines.parse_lines, use_orjson=False))
            mp.setattr(lines, "_ORJSON", False)
        yield


def convert_manifest(files: list[tuple[str, bytes]], manifest_id: str = "m-prop") -> tuple[pa.Table, list[dict]]:
    """What run_job does for one manifest, in-process: convert_bytes per file (manifest order), the
    manifest's schema from the files' schemas, conform, Parquet bytes, read back with pyarrow."""
    tables, bad = [], []
    for uri, raw in files:
        table, quarantined, counts = convert.convert_bytes(uri, raw, None, manifest_id)
        assert counts.reconciles(), counts
        tables.append((table, counts))
        bad.extend({"source_file": uri, "line_number": q.line_number, "reason": q.reason} for q in quarantined)
    final = final_schema([convert.data_fields(t.schema) for t, c in tables if c.rows])
    target = convert.with_provenance(final)
    source = convert.SourceLines(dict(files).__getitem__)
    table = pa.concat_tables([convert.conform_table(t, target, source) for t, _ in tables])
    back = pq.read_table(io.BytesIO(convert.parquet_bytes(table, "snappy")))
    return back, bad
