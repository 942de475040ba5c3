"""Files larger than a block through the whole job: blocks of one file that infer different types,
parts that roll at TARGET_FILE_MB, a multi-member gzip, all conformed to the manifest's one schema."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import glue.blocks as glue_blocks
import glue.parts as glue_parts
from glue.job import JobArgs, run_job
from tests.functional.glue.conftest import read_quarantine, read_rows

pytestmark = [pytest.mark.spark, pytest.mark.slow]


def test_big_files_stream_in_blocks_into_rolling_parts(spark, tmp_path, make_manifest, monkeypatch):
    # GIVEN blocks of ~4 KB and a flush per block (the driver hands both sizes to its tasks)
    monkeypatch.setattr(glue_blocks, "BLOCK_BYTES", 4096)
    monkeypatch.setattr(glue_parts, "FLUSH_BYTES", 1)
    # a file whose early blocks see "a" as a number and later ones as text, with a new field late
    first = [f'{{"i": {i}, "a": {i}}}' for i in range(1, 1001)]
    later = [f'{{"i": {i}, "a": "t{i}", "late": true}}' for i in range(1001, 2001)]
    lines = first + later
    lines[1499] = "{'bad': 1}"  # line 1500
    big = tmp_path / "big.ndjson"
    big.write_text("\r\n".join(lines))  # CRLF, no final newline
    # a multi-member gzip inflating to many blocks, and a small file
    text = "".join(f'{{"i": {i}, "a": {i}}}\n' for i in range(1, 3001)).encode()
    gz = tmp_path / "many.ndjson.gz"
    gz.write_bytes(gzip.compress(text[: len(text) // 2]) + gzip.compress(text[len(text) // 2 :]))
    small = tmp_path / "small.ndjson"
    small.write_text('{"i": 1, "a": 1}\n')
    manifest = make_manifest("m-stream", [str(big), str(gz), str(small)])

    # WHEN parts roll at ~20 KB
    args = JobArgs(str(manifest), str(tmp_path / "out"), str(tmp_path / "q"), target_file_mb=0.02)
    summary = run_job(spark, args)

    # THEN every line is counted once, every row kept with its line number, in one schema
    assert [(f["lines"], f["rows"], f["quarantined"], f["blank"]) for f in summary.files] == [
        (2000, 1999, 1, 0),
        (3000, 3000, 0, 0),
        (1, 1, 0, 0),
    ]
    assert summary.data_files > summary.tasks  # parts rolled inside tasks
    folder = tmp_path / "out" / "dt=2024-05-01" / "manifest=m-stream"
    parts = sorted(folder.glob("part-*.parquet"))
    assert len(parts) == summary.data_files and not list(folder.glob("*.arrow"))
    assert len({pq.read_schema(p) for p in parts}) == 1  # conformed to the manifest's schema
    rows = read_rows(folder)
    by_file = {}
    for r in rows:
        by_file.setdefault(Path(r["_source_file"]).name, []).append(r)
    assert [r["_source_line"] for r in by_file["big.ndjson"]] == [n for n in range(1, 2001) if n != 1500]
    assert by_file["big.ndjson"][0]["a"] == "1" and by_file["big.ndjson"][-1]["a"] == "t2000"  # number|string
    assert by_file["big.ndjson"][0]["late"] is None and by_file["big.ndjson"][-1]["late"] is True
    assert [r["i"] for r in by_file["many.ndjson.gz"]] == list(range(1, 3001))
    types = {f["name"]: f["type"] for f in summary.schema["fields"]}
    assert types == {"a": "string", "i": "long", "late": "boolean"}
    bad = read_quarantine(tmp_path / "q" / "dt=2024-05-01" / "manifest=m-stream")
    assert [(Path(b["source_file"]).name, b["line_number"]) for b in bad] == [("big.ndjson", 1500)]
    df = spark.read.parquet(str(folder))
    assert df.count() == 1999 + 3000 + 1
