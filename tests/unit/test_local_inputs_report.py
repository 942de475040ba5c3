from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path

import pytest

from ndjson_parquet.local.inputs import InputError, count_lines, scan_input
from ndjson_parquet.local.report import RunReport

SUFFIXES = (".ndjson", ".jsonl", ".json", ".ndjson.gz", ".jsonl.gz", ".json.gz")


def test_scan_keeps_relative_paths_and_flags_untrackable(tmp_path: Path) -> None:
    # GIVEN a dated folder, a nested file, an unknown suffix and an OS dropping
    (tmp_path / "2026-11-20").mkdir()
    (tmp_path / "2026-11-20" / "a b+c.ndjson").write_text('{"a":1}\n')
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".DS_Store").write_text("x")
    # WHEN
    files = scan_input(tmp_path, "incoming", SUFFIXES)
    # THEN
    assert [(f.key, f.trackable, f.size) for f in files] == [
        ("incoming/notes.txt", False, 1),
        ("incoming/2026-11-20/a b+c.ndjson", True, 8),
    ]


def test_scan_errors_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        scan_input(tmp_path / "missing", "", SUFFIXES)
    with pytest.raises(InputError, match="holds no files"):
        scan_input(tmp_path, "", SUFFIXES)
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(InputError, match="no file ending in"):
        scan_input(tmp_path, "", SUFFIXES)
    afile = tmp_path / "x.txt"
    with pytest.raises(InputError, match="not a directory"):
        scan_input(afile, "", SUFFIXES)


def test_scan_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "ok.ndjson").write_text("{}\n")
    os.symlink(tmp_path / "gone.ndjson", tmp_path / "dangling.ndjson")
    with pytest.raises(InputError, match="dangling.ndjson is not readable"):
        scan_input(tmp_path, "", SUFFIXES)


@pytest.mark.parametrize(
    ("data", "expected"),
    [(b"", 0), (b"{}", 1), (b"{}\n", 1), (b"{}\r\n{}\r\n", 2), (b"{}\n\n{}", 3), (b"\n", 1)],
)
def test_count_lines_matches_job_rules(tmp_path: Path, data: bytes, expected: int) -> None:
    plain = tmp_path / "f.ndjson"
    plain.write_bytes(data)
    zipped = tmp_path / "f.ndjson.gz"
    zipped.write_bytes(gzip.compress(data))
    assert count_lines(plain) == expected
    assert count_lines(zipped) == expected


def test_count_lines_of_broken_gzip_is_unknown(tmp_path: Path) -> None:
    bad = tmp_path / "f.ndjson.gz"
    bad.write_bytes(b"not gzip at all")
    assert count_lines(bad) is None


def test_report_reconciles_only_when_counts_add_up(tmp_path: Path) -> None:
    report = RunReport(
        files=2, bytes=2_000_000, lines=10, rows=7, table_rows=7, quarantined=2, blank=1, manifests=1, elapsed_seconds=2
    )
    assert report.reconciled
    assert report.mb_per_second == pytest.approx(1.0)
    table = report.render_table()
    assert re.search(r"^\| reconciled\s+\|\s+yes \|$", table, re.MULTILINE), table
    report.rows = 6
    assert not report.reconciled
    report.rows = 7
    report.table_rows = 8  # the table holds a row the summaries do not count: not reconciled
    assert not report.reconciled
    report.table_rows = 7
    report.problems.append("file x left pending")
    assert not report.reconciled
    assert "problem: file x left pending" in report.render_table()
    out = tmp_path / "s.json"
    report.write_json(out)
    data = json.loads(out.read_text())
    assert data["reconciled"] is False and data["rows"] == 7 and data["problems"] == ["file x left pending"]
