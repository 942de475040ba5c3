"""Hostile input files through the Glue job: each line ends as a row or a quarantine record with a
reason (or is blank), the job never dies on them, and no line is dropped silently.

The accounting is checked line by line: for every file the Parquet rows' ``_source_line`` and the
quarantine records' ``line_number`` are disjoint, and with the blank lines they cover every line
the run summary counted, which must be the number of physical lines of the input.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from glue.job import JobArgs, run_job
from glue.lines import split_lines
from tests.functional.glue.conftest import read_quarantine, read_rows

pytestmark = [pytest.mark.spark, pytest.mark.slow]

DATE = "2024-05-01"
DEEP = 10_000


def _hostile_files(folder: Path) -> dict[str, bytes]:
    """name -> bytes as stored in S3 (the .gz ones compressed)."""
    big = b'{"big": "' + b"x" * (20 * 1024 * 1024) + b'"}'
    return {
        "invalid_utf8.ndjson": b'{"a": "ok"}\n{"a": "\xff\xfe bad"}\n{"a": "\xc3\x28"}\n',
        "lone_surrogate.ndjson": b'{"a": "\\ud800"}\n{"a": "pair \\ud83d\\ude00"}\n{"a": "\\udc00x"}\n',
        "nul_bytes.ndjson": b'{"a": "x\x00y"}\n{"a": "esc \\u0000 ok"}\n\x00\x00\x00\n',
        "huge_line.ndjson": big + b"\n" + b'{"a": 1}\n',
        "deep_nesting.ndjson": b'{"d": '
        + b"[" * DEEP
        + b"]" * DEEP
        + b"}\n"
        + b'{"d": '
        + b'{"x":' * DEEP
        + b"1"
        + b"}" * DEEP
        + b"}\n",
        "big_numbers.ndjson": (
            b'{"n": 123456789012345678901234567890}\n{"n": -99999999999999999999}\n'
            b'{"n": 1e400}\n{"n": 9223372036854775807}\n{"n": 1.7976931348623157e308}\n'
        ),
        "duplicate_keys.ndjson": b'{"k": 1, "k": 2}\n{"k": 3}\n',
        "odd_keys.ndjson": b'{"a.b": 1, "c d": 2, "": 3, "\xc3\xa9t\xc3\xa9": 4}\n{"a.b": 5}\n',
        "not_objects.ndjson": b'[1, 2, 3]\n"just a string"\n42\nnull\ntrue\n{"ok": 1}\n',
        "truncated.ndjson.gz": gzip.compress(b'{"a": 1}\n{"a": 2}\n' * 200)[:-20],
        "not_really.ndjson.gz": b'{"a": 1}\n{"a": 2}\n',
        "blank_only.ndjson": b"\n   \n\t\n\n",
        "crlf_bom.ndjson": b'\xef\xbb\xbf{"a": 1}\r\n{"a": 2}\r\n\r\n{"a": 3}',
    }


def _write(folder: Path) -> dict[str, Path]:
    out = {}
    for name, data in _hostile_files(folder).items():
        path = folder / name
        path.write_bytes(data)
        out[name] = path
    return out


def test_every_hostile_line_ends_as_a_row_or_a_quarantine_record(spark, tmp_path, make_manifest):
    # GIVEN one manifest with every hostile file
    (tmp_path / "in").mkdir()
    files = _write(tmp_path / "in")
    manifest = make_manifest("m-hostile", [str(p) for p in files.values()], DATE)
    args = JobArgs(manifest_path=str(manifest), output_path=str(tmp_path / "out"), quarantine_path=str(tmp_path / "q"))

    # WHEN the job runs THEN it does not die
    summary = run_job(spark, args)

    rows = read_rows(tmp_path / "out" / f"dt={DATE}" / "manifest=m-hostile")
    quarantine = read_quarantine(tmp_path / "q" / f"dt={DATE}" / "manifest=m-hostile")
    per_file = {Path(f["uri"]).name: f for f in summary.files}
    assert set(per_file) == set(files)
    for name, path in files.items():
        entry = per_file[name]
        if not name.endswith(".gz"):  # the job's line count is the input's physical line count
            assert entry["lines"] == len(split_lines(path.read_bytes())), name
        uri = entry["uri"]
        row_lines = [r["_source_line"] for r in rows if r["_source_file"] == uri]
        q_lines = [q["line_number"] for q in quarantine if q["source_file"] == uri]
        # each line once, in exactly one place, and the summary adds up
        assert len(row_lines) == len(set(row_lines)) == entry["rows"], name
        assert len(q_lines) == len(set(q_lines)) == entry["quarantined"], name
        assert not set(row_lines) & set(q_lines), name
        assert entry["lines"] == entry["rows"] + entry["quarantined"] + entry["blank"], name
        for q in quarantine:
            if q["source_file"] == uri:
                assert q["reason"] and ":" in q["reason"], (name, q)
    # the expected outcome of the clear cases
    by_name = {n: (per_file[n]["rows"], per_file[n]["quarantined"], per_file[n]["blank"]) for n in per_file}
    assert by_name["invalid_utf8.ndjson"] == (1, 2, 0)
    assert by_name["not_objects.ndjson"] == (1, 5, 0)
    assert by_name["blank_only.ndjson"] == (0, 0, 4)
    assert by_name["crlf_bom.ndjson"] == (3, 0, 1)
    assert by_name["huge_line.ndjson"][0] + by_name["huge_line.ndjson"][1] == 2
    assert by_name["duplicate_keys.ndjson"] == (2, 0, 0)
    assert by_name["nul_bytes.ndjson"][0] >= 1 and sum(by_name["nul_bytes.ndjson"]) == 3
    assert sum(by_name["deep_nesting.ndjson"]) == 2
    assert sum(by_name["big_numbers.ndjson"]) == 5
    for name in ("truncated.ndjson.gz", "not_really.ndjson.gz"):  # set aside whole, named, not a dead job
        assert by_name[name] == (0, 1, 0), name
        (record,) = [q for q in quarantine if q["source_file"] == per_file[name]["uri"]]
        assert record["reason"].startswith("invalid_gzip:"), record
    assert sum(summary.totals[k] for k in ("rows", "quarantined", "blank")) == summary.totals["lines"]
