"""`ndjson-parquet run` as a subprocess, as the README says: the whole pipeline on moto."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from ndjson_parquet.local.dataset import LocalDataset
from tests.e2e.conftest import BAD_MARKER, DATE, EXPECTED_QUARANTINE, EXPECTED_ROWS, MARKER, cli

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


@dataclass(frozen=True)
class FirstRun:
    """The first run and what it wrote, read right after it: the second run below replaces the
    output in place, so no test of the first run depends on running before it."""

    work: Path
    proc: subprocess.CompletedProcess[str]
    summary: dict
    rows: list[dict]
    quarantine: list[dict]
    sql: subprocess.CompletedProcess[str]
    schema: subprocess.CompletedProcess[str]


QUERY = (
    "select (select count(*) from dataset) as n, (select count(distinct _manifest_id) from dataset) as m,"
    " (select count(*) from quarantine) as q"
)


@pytest.fixture(scope="module")
def first_run(small_input: Path, tmp_path_factory: pytest.TempPathFactory) -> FirstRun:
    """``make run``'s engine rule (auto): every manifest of this small input goes to the converter
    Lambda, so the run needs no Java at all: it runs with none (JAVA_HOME points nowhere)."""
    work = tmp_path_factory.mktemp("e2e-run")
    proc = cli(
        "run", "--input", str(small_input), "--output", str(work / "parquet"), "--quarantine",
        str(work / "quarantine"), "--summary-json", str(work / "summary.json"), "--batch-max-files", "2",
        "--shards", "2", "--idle-timeout", "120",
        env_extra={"JAVA_HOME": str(work / "no-such-jdk")},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return FirstRun(
        work,
        proc,
        json.loads((work / "summary.json").read_text()),
        _read_rows(work / "parquet"),
        _read_quarantine(work / "quarantine"),
        cli("sql", str(work / "parquet"), QUERY, "--json"),
        cli("schema", str(work / "parquet"), "--json"),
    )


def test_run_exits_zero_and_reconciles(first_run: FirstRun) -> None:
    summary, proc = first_run.summary, first_run.proc
    # GIVEN 5 tracked files (one empty -> skipped), 16 lines of which 7 valid, 4 bad, 1 blank...
    assert summary["reconciled"] is True
    assert summary["files"] == 4 and summary["files_skipped"] == 1
    assert (summary["rows"], summary["quarantined"], summary["blank"]) == (7, 4, 1)
    assert summary["lines"] == 12
    # batches of at most 2 files: the control plane really batched, and every manifest it
    # reports has its own output partition
    sources: dict[str, set[str]] = {}
    for r in first_run.rows:
        sources.setdefault(r["_manifest_id"], set()).add(r["_source_file"])
    assert len(sources) == summary["manifests"]
    assert all(1 <= len(files) <= 2 for files in sources.values()), sources
    assert sum(len(files) for files in sources.values()) == 4
    assert re.search(r"^\| reconciled\s+\|\s+yes \|$", proc.stdout, re.MULTILINE), proc.stdout
    assert "ignoring 1 file(s) without a tracked suffix" in proc.stderr


def test_auto_sends_small_manifests_to_the_lambda_engine_and_starts_no_jvm(first_run: FirstRun) -> None:
    summary, proc = first_run.summary, first_run.proc
    # every manifest converted by the converter Lambda (the run summaries' engine), none by Glue
    assert summary["engines"] == {"lambda": summary["manifests"], "glue": 0}
    assert summary["spark_started"] is False  # and no SparkSession: the run had no Java to start one
    assert re.search(rf"^\| engines\s+\|\s+lambda {summary['manifests']}, glue 0 \(no JVM\) \|$", proc.stdout, re.M)
    engines = {json.loads(p.read_text())["engine"] for p in (first_run.work / "parquet" / "_runs").glob("*.json")}
    assert engines == {"lambda"}


def test_every_valid_line_is_one_row_with_provenance(first_run: FirstRun) -> None:
    rows = first_run.rows
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


def test_sql_and_schema_commands_read_the_table(first_run: FirstRun) -> None:
    sql, schema, summary = first_run.sql, first_run.schema, first_run.summary
    assert sql.returncode == 0, sql.stderr
    assert json.loads(sql.stdout) == {"n": len(EXPECTED_ROWS), "m": summary["manifests"], "q": len(EXPECTED_QUARANTINE)}
    assert schema.returncode == 0, schema.stderr
    info = json.loads(schema.stdout)
    assert len(info["snapshots"]) == summary["manifests"]  # one snapshot per manifest
    assert {s["manifest_id"] for s in info["snapshots"]} == {r["_manifest_id"] for r in first_run.rows}
    bad = cli("sql", str(first_run.work / "parquet"), "select nope from dataset")
    assert bad.returncode == 2 and "nope" in bad.stderr


def test_every_bad_line_is_one_quarantine_record(first_run: FirstRun) -> None:
    records = first_run.quarantine
    got = {(_key(r["source_file"]), r["line_number"]): r["reason"].split(":")[0] for r in records}
    assert got == EXPECTED_QUARANTINE
    assert len(records) == len(EXPECTED_QUARANTINE)
    single = next(r for r in records if r["line_number"] == 2 and "orders" in r["source_file"])
    assert single["raw"] == "{'id': 2}"


@pytest.fixture(scope="module")
def second_run(first_run: FirstRun, small_input: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The same input again into the first run's output, on the Glue engine, other batching,
    logging at INFO."""
    work = first_run.work
    proc = cli(
        "run", "--input", str(small_input), "--output", str(work / "parquet"), "--quarantine",
        str(work / "quarantine"), "--batch-max-files", "3", "--shards", "2", "--engine", "glue",
        "--summary-json", str(work / "summary-glue.json"),
        env_extra={"LOG_LEVEL": "INFO", "POWERTOOLS_LOG_LEVEL": "INFO"},
    )  # fmt: skip
    return work, proc


def test_second_run_replaces_not_duplicates(second_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    work, proc = second_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(_read_rows(work / "parquet")) == len(EXPECTED_ROWS)
    assert len(_read_quarantine(work / "quarantine")) == len(EXPECTED_QUARANTINE)


# Columns that name the run, not the data: the manifest (batching differs) and when it was ingested.
RUN_COLUMNS = {"_manifest_id", "_ingested_at", "_ingest_date", "dt"}


def _data(rows: list[dict]) -> list[str]:
    return sorted(
        json.dumps({k: v for k, v in r.items() if k not in RUN_COLUMNS}, sort_keys=True, default=str) for r in rows
    )


def test_the_glue_engine_gives_the_same_rows_as_the_lambda_engine(
    first_run: FirstRun, second_run: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    work, proc = second_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((work / "summary-glue.json").read_text())
    assert summary["engines"] == {"lambda": 0, "glue": summary["manifests"]} and summary["spark_started"] is True
    # the same rows, value for value, as the Lambda engine's run of the same input
    assert _data(_read_rows(work / "parquet")) == _data(first_run.rows)
    assert {(r["source_file"], r["line_number"], r["reason"]) for r in _read_quarantine(work / "quarantine")} == {
        (r["source_file"], r["line_number"], r["reason"]) for r in first_run.quarantine
    }


# What a whole event dump looks like, whichever logger printed it.
EVENT_SIGNATURES = (
    '"Records"', "'Records'", '"eventSource"', "'eventSource'", '"NewImage"', "'NewImage'",
    '"receiptHandle"', "'receiptHandle'", '"detail-type"', "'detail-type'",
)  # fmt: skip


def test_no_record_contents_or_event_dumps_in_info_logs(
    second_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    # GIVEN a run at INFO over an input with a marker in one record and one bad line
    work, proc = second_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    logs = (proc.stdout + "\n" + proc.stderr).splitlines()
    # the run did log at INFO (a test that sees no log lines proves nothing)
    assert any('"level":"INFO"' in line or " INFO " in line for line in logs), "no INFO log lines captured"
    # and the markers really reached the output: the table and the quarantine hold them, the logs must not
    assert [r["secret"] for r in _read_rows(work / "parquet") if r.get("secret")] == [MARKER]
    assert sum(BAD_MARKER in r["raw"] for r in _read_quarantine(work / "quarantine")) == 1
    # THEN no line carries record contents or a dumped event
    leaks = [line for line in logs if MARKER in line or BAD_MARKER in line]
    assert not leaks, f"{len(leaks)} log line(s) with record contents, e.g. {leaks[0][:300]}"
    dumps = [line for line in logs if any(sig in line for sig in EVENT_SIGNATURES)]
    assert not dumps, f"{len(dumps)} log line(s) with a whole event, e.g. {dumps[0][:300]}"


def test_foreign_output_dir_is_never_wiped(small_input: Path, tmp_path: Path) -> None:
    precious = tmp_path / "out"
    precious.mkdir()
    (precious / "thesis.docx").write_text("years of work")
    proc = cli("run", "--input", str(small_input), "--output", str(precious), "--quiet", "--idle-timeout", "120")
    assert proc.returncode == 2
    assert "is not empty and was not written by `ndjson-parquet run`" in proc.stderr
    assert (precious / "thesis.docx").read_text() == "years of work"
