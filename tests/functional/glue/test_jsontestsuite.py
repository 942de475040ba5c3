"""JSONTestSuite (y_ must parse, n_ must be rejected, i_ either way) through the whole job.

Each case becomes one line of one NDJSON file, in file-name order. Turning a case into a line:
- a final LF is dropped (it is the line's own terminator);
- y_ cases with an inner LF get it replaced by a space: in valid JSON a raw LF can only be
  whitespace between tokens, so the meaning is unchanged;
- n_ cases with an inner LF are left out (listed in EXCLUDED): in NDJSON an LF ends the line, and
  replacing it could turn an invalid case valid (``["new<LF>line"]``), so no one-line form exists;
- n_ cases that are empty or only whitespace become blank lines: the NDJSON rule (blank lines are
  counted, not errors) decides them, not the JSON one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glue.job import JobArgs, run_job
from tests.conversion_harness import corpus_missing
from tests.functional.glue.conftest import read_quarantine, read_rows

pytestmark = [pytest.mark.spark, pytest.mark.slow]

CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "jsontestsuite" / "test_parsing"
EXCLUDED = {
    "n_array_newlines_unclosed.json",
    "n_array_unclosed_with_new_lines.json",
    "n_string_unescaped_newline.json",
}
BLANK = {"n_single_space.json", "n_structure_no_data.json"}


def _cases() -> list[tuple[str, bytes]]:
    out = []
    for path in sorted(CORPUS.glob("*.json")):
        data = path.read_bytes()
        if data.endswith(b"\n"):
            data = data[:-1]
        if b"\n" in data:
            if path.name in EXCLUDED:
                continue
            assert path.name.startswith("y_"), f"{path.name} has an inner LF and no documented treatment"
            data = data.replace(b"\n", b" ")
        out.append((path.name, data))
    return out


def test_every_case_gets_its_documented_outcome(spark, tmp_path):
    reason = corpus_missing(CORPUS)  # NDJSON_PARQUET_REQUIRE_CORPUS=1 turns the skip into a failure
    if reason:
        pytest.skip(reason)
    # GIVEN one NDJSON file with a line per case
    cases = _cases()
    assert len(cases) == len(list(CORPUS.glob("*.json"))) - len(EXCLUDED)
    src = tmp_path / "jsontestsuite.ndjson"
    src.write_bytes(b"\n".join(data for _, data in cases) + b"\n")
    manifest = tmp_path / "m.json"
    manifest.write_text(
        json.dumps({"manifest_id": "m-jts", "date_prefix": "2024-05-01", "files": [{"uri": str(src), "size": 1}]})
    )

    # WHEN the job converts it (it must not crash)
    summary = run_job(
        spark,
        JobArgs(manifest_path=str(manifest), output_path=str(tmp_path / "o"), quarantine_path=str(tmp_path / "q")),
    )

    # THEN every line is accounted for exactly once, with the outcome its prefix demands
    folder = ("dt=2024-05-01", "manifest=m-jts")
    rows = {r["_source_line"] for r in read_rows(tmp_path.joinpath("o", *folder))}
    bad = {r["line_number"]: r["reason"] for r in read_quarantine(tmp_path.joinpath("q", *folder))}
    assert not rows & bad.keys()
    counts = summary.files[0]
    assert counts["lines"] == len(cases) == counts["rows"] + counts["quarantined"] + counts["blank"]
    assert counts["blank"] == len(BLANK)
    for line, (name, data) in enumerate(cases, 1):
        if name in BLANK:
            assert line not in rows and line not in bad, name
        elif name.startswith("y_"):
            value = json.loads(data.decode("utf-8"))
            if isinstance(value, dict):
                assert line in rows, f"{name} should be a row, got {bad.get(line)}"
            else:
                assert bad.get(line, "").startswith("not_an_object: "), f"{name}: {bad.get(line)}"
        elif name.startswith("n_"):
            assert line in bad, f"{name} was accepted as a row"
            # too_deep is decided before parsing (n_structure_100000_opening_arrays is both)
            assert bad[line].split(":")[0] in ("invalid_json", "invalid_utf8", "too_deep"), f"{name}: {bad[line]}"
        else:
            assert (line in rows) != (line in bad), name
    # a few outcomes pinned by value
    by_name = {name: line for line, (name, _) in enumerate(cases, 1)}
    assert bad[by_name["n_number_NaN.json"]].startswith("invalid_json")
    assert bad[by_name["n_string_invalid_utf8_after_escape.json"]].startswith("invalid_utf8")
    assert bad[by_name["y_array_empty.json"]] == "not_an_object: array"
    assert by_name["y_object_duplicated_key.json"] in rows
