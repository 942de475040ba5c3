"""`ndjson-parquet run` as a subprocess, as the README says: the whole pipeline on moto."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ndjson_parquet.local.dataset import LocalDataset
from tests.e2e.conftest import DATE, EXPECTED_QUARANTINE, EXPECTED_ROWS, cli

# One group: the module fixture runs the CLI once for all its tests (make test runs them on one worker).
pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.xdist_group("e2e-run-cli")]


def _key(uri: str) -> str:
    return uri.split("/", 3)[3]  # s3://bucket/<key>


def _read_rows(out: Path) -> list[dict]:
    """Every row of the table's current snapshot, with ``dt``: its manifest's date (run summary)."""
    dates = {p.stem: json.loads(p.read_text())["date_prefix"] for p in (out / "_runs").glob("*.json")}
    return [{**r, "dt": dates[r["_manifest_id"]]} for r in LocalDataset.open(out).rows()]


def _read_quarantine(q: Path) -> list[dict]:
    return [json.loads(line) for p in sorted(q.rglob("*.jsonl")) for line in p.read_text().splitlines() if line]


@pytest.fixture(scope="module")
def first_run(small_input: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    work = tmp_path_factory.mktemp("e2e-run")
    proc = cli(
        "run", "--input", str(small_input), "--output", str(work / "parquet"), "--quarantine",
        str(work / "quarantine"), "--summary-json", str(work / "summary.json"), "--batch-max-files", "2",
        "--shards", "2", "--idle-timeout", "120",
    )  # fmt: skip
    return work, proc


def test_run_exits_zero_and_reconciles(first_run: tuple[Path, object]) -> None:
    work, proc = first_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((work / "summary.json").read_text())
    # GIVEN 5 tracked files (one empty -> skipped), 16 lines of which 7 valid, 4 bad, 1 blank...
    assert summary["reconciled"] is True
    assert summary["files"] == 4 and summary["files_skipped"] == 1
    assert (summary["rows"], summary["quarantined"], summary["blank"]) == (7, 4, 1)
    assert summary["lines"] == 12
    # batches of at most 2 files: the control plane really batched, and every manifest it
    # reports has its own output partition
    sources: dict[str, set[str]] = {}
    for r in _read_rows(work / "parquet"):
        sources.setdefault(r["_manifest_id"], set()).add(r["_source_file"])
    assert len(sources) == summary["manifests"]
    assert all(1 <= len(files) <= 2 for files in sources.values()), sources
    assert sum(len(files) for files in sources.values()) == 4
    assert re.search(r"^\| reconciled\s+\|\s+yes \|$", proc.stdout, re.MULTILINE), proc.stdout
    assert "ignoring 1 file(s) without a tracked suffix" in proc.stderr


def test_every_valid_line_is_one_row_with_provenance(first_run: tuple[Path, object]) -> None:
    work, _ = first_run
    rows = _read_rows(work / "parquet")
    got = {(_key(r["_source_file"]), r["_source_line"]): r["id"] for r in rows}
    assert got == EXPECTED_ROWS
    assert len(rows) == len(EXPECTED_ROWS)  # exactly once: no duplicates hidden by the dict
    zoe = next(r for r in rows if r["id"] == 1)
    assert zoe["user"] == {"name": "Zoë", "tags": ["a", "b"]}
    assert zoe["amount"] == 12.5
    deep = next(r for r in rows if r["id"] == 31)
    # [1, {"y": null}] mixes a number and an object: each element is its JSON text (docs/json-shapes.md)
    assert deep["nested"] == {"deep": {"x": ["1", '{"y":null}']}}
    by_date = {r["dt"] for r in rows if _key(r["_source_file"]).startswith(DATE)}
    assert by_date == {DATE}  # the YYYY-MM-DD/ folder is the date partition


def test_sql_and_schema_commands_read_the_table(first_run: tuple[Path, object]) -> None:
    work, _ = first_run
    query = (
        "select (select count(*) from dataset) as n, (select count(distinct _manifest_id) from dataset) as m,"
        " (select count(*) from quarantine) as q"
    )
    sql = cli("sql", str(work / "parquet"), query, "--json")
    assert sql.returncode == 0, sql.stderr
    summary = json.loads((work / "summary.json").read_text())
    assert json.loads(sql.stdout) == {"n": len(EXPECTED_ROWS), "m": summary["manifests"], "q": len(EXPECTED_QUARANTINE)}
    schema = cli("schema", str(work / "parquet"), "--json")
    assert schema.returncode == 0, schema.stderr
    info = json.loads(schema.stdout)
    assert len(info["snapshots"]) == summary["manifests"]  # one snapshot per manifest
    assert {s["manifest_id"] for s in info["snapshots"]} == set(sources_of(work))
    bad = cli("sql", str(work / "parquet"), "select nope from dataset")
    assert bad.returncode == 2 and "nope" in bad.stderr


def sources_of(work: Path) -> set[str]:
    return {r["_manifest_id"] for r in _read_rows(work / "parquet")}


def test_every_bad_line_is_one_quarantine_record(first_run: tuple[Path, object]) -> None:
    work, _ = first_run
    records = _read_quarantine(work / "quarantine")
    got = {(_key(r["source_file"]), r["line_number"]): r["reason"].split(":")[0] for r in records}
    assert got == EXPECTED_QUARANTINE
    assert len(records) == len(EXPECTED_QUARANTINE)
    single = next(r for r in records if r["line_number"] == 2 and "orders" in r["source_file"])
    assert single["raw"] == "{'id': 2}"


def test_second_run_replaces_not_duplicates(first_run: tuple[Path, object], small_input: Path) -> None:
    work, _ = first_run
    proc = cli(
        "run", "--input", str(small_input), "--output", str(work / "parquet"), "--quarantine",
        str(work / "quarantine"), "--batch-max-files", "3", "--shards", "2", "--quiet",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(_read_rows(work / "parquet")) == len(EXPECTED_ROWS)
    assert len(_read_quarantine(work / "quarantine")) == len(EXPECTED_QUARANTINE)


def test_foreign_output_dir_is_never_wiped(small_input: Path, tmp_path: Path) -> None:
    precious = tmp_path / "out"
    precious.mkdir()
    (precious / "thesis.docx").write_text("years of work")
    proc = cli("run", "--input", str(small_input), "--output", str(precious), "--quiet", "--idle-timeout", "120")
    assert proc.returncode == 2
    assert "is not empty and was not written by `ndjson-parquet run`" in proc.stderr
    assert (precious / "thesis.docx").read_text() == "years of work"
