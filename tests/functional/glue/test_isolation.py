"""One file never takes down its manifest (docs/invariants.md #9), end to end in the shared
local SparkSession: a deterministic conversion failure sets the file aside whole while the other
19 files commit; a transient error fails the run with nothing committed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glue import isolation
from glue.job import JobArgs, run_job
from tests.functional.glue.conftest import read_quarantine, read_rows

pytestmark = [pytest.mark.spark, pytest.mark.slow]

MID = "m-isolate"
POISON = b"POISON-PILL"


def _twenty_files(tmp_path: Path, poison_index: int = 7) -> list[Path]:
    files = []
    for i in range(20):
        path = tmp_path / "in" / f"f{i:02d}.ndjson"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps({"id": n, "file": i}) for n in range(5)] + ["{broken", ""]
        if i == poison_index:
            lines[2] = json.dumps({"id": 2, "file": i, "note": POISON.decode()})
        path.write_text("\n".join(lines) + "\n")
        files.append(path)
    return files


def _args(tmp_path: Path, manifest: Path) -> JobArgs:
    # 1 MB target: the 20 files share the session's two tasks, so the poison has neighbours in its task
    return JobArgs(str(manifest), str(tmp_path / "out"), str(tmp_path / "q"), target_file_mb=1)


def test_a_poison_file_is_set_aside_and_the_other_19_commit(spark, tmp_path, make_manifest, monkeypatch):
    # GIVEN a 20-file manifest whose file 7 makes the conversion raise (a deterministic failure)
    files = _twenty_files(tmp_path)
    poison = str(files[7])
    monkeypatch.setattr(isolation, "INJECT", isolation.InjectedFault(POISON))
    manifest = make_manifest(MID, [str(f) for f in files])

    # WHEN the job runs
    summary = run_job(spark, _args(tmp_path, manifest))

    # THEN the 19 healthy files' rows are committed, each valid line once
    rows = read_rows(tmp_path / "out" / "dt=2024-05-01" / f"manifest={MID}")
    assert {r["_source_file"] for r in rows} == {str(f) for f in files} - {poison}
    assert len(rows) == 19 * 5
    assert len({(r["_source_file"], r["_source_line"]) for r in rows}) == 19 * 5
    # the poison file is ONE quarantine record naming the error; the others keep their bad lines
    records = read_quarantine(tmp_path / "q" / "dt=2024-05-01" / f"manifest={MID}")
    whole = [r for r in records if r["source_file"] == poison]
    assert [(r["line_number"], r["raw"], r["reason"]) for r in whole] == [
        (1, "", "conversion_error: RuntimeError: injected conversion failure for f07.ndjson")
    ]
    assert len(records) == 19 + 1
    # counts reconcile: the set-aside file is one unit (lines 1 = quarantined 1), with its reason
    written = json.loads((tmp_path / "out" / "_runs" / f"{MID}.json").read_text())
    assert written["files_set_aside"] == summary.files_set_aside == 1
    by_uri = {f["uri"]: f for f in written["files"]}
    assert {k: by_uri[poison][k] for k in ("lines", "rows", "quarantined", "blank")} == {
        "lines": 1,
        "rows": 0,
        "quarantined": 1,
        "blank": 0,
    }
    assert by_uri[poison]["set_aside"] == whole[0]["reason"]
    assert all("set_aside" not in f and (f["lines"], f["rows"]) == (7, 5) for u, f in by_uri.items() if u != poison)
    totals = written["totals"]
    assert totals["lines"] == totals["rows"] + totals["quarantined"] + totals["blank"] == 19 * 7 + 1
    assert (totals["rows"], totals["quarantined"]) == (95, 20)


def test_a_transient_error_fails_the_run_and_commits_nothing(spark, tmp_path, make_manifest, monkeypatch):
    # GIVEN the same manifest, where reading file 7 hits S3 SlowDown (after botocore's retries)
    files = _twenty_files(tmp_path)
    monkeypatch.setattr(isolation, "INJECT", isolation.InjectedFault(POISON, kind="transient"))
    manifest = make_manifest(MID, [str(f) for f in files])

    # WHEN the job runs THEN it fails (the usual retries apply), naming the throttle
    with pytest.raises(Exception, match="SlowDown"):
        run_job(spark, _args(tmp_path, manifest))
    # and nothing was committed or set aside: no output, no quarantine, no run summary
    assert not (tmp_path / "out" / "dt=2024-05-01").exists()
    assert not (tmp_path / "q" / "dt=2024-05-01").exists()
    assert not (tmp_path / "out" / "_runs" / f"{MID}.json").exists()
