"""One conversion core, two engines (glue/executors.py): Spark (the Glue job) and the process pool
(the Lambda converter). For the same manifest both give the same rows, quarantine records, per-file
summary counts and committed table contents, on tests/data and on the peer corpus. The pool's own
fault handling: transient task errors retried (as Spark's task retries), a deterministic error sets
the file aside, a killed worker raises WorkerDiedError and is replaced, a deadline stops the run
with nothing committed; its workers stay warm across runs. And the pool's path imports no pyspark."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from chalicelib.workflow.summary import reconcile
from glue import isolation
from glue.executors import ConverterDeadlineError, ProcessExecutor, WorkerDiedError
from glue.job import JobArgs, run_job
from glue.table import TableConfig, open_catalog
from tests.conversion_harness import corpus_missing
from tests.functional.glue.conftest import read_quarantine, read_rows, write_manifest

REPO = Path(__file__).resolve().parents[3]
SHAPES = REPO / "tests" / "data" / "shapes"
PEERS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "peers"
DATE = "2024-05-01"
# What differs between two runs of one manifest whatever the engine: the run's own token (and the
# folder named after it), its timings, the snapshot id, and the engine itself.
RUN_SPECIFIC = {"run_token", "timings", "engine", "snapshot_id", "output_path"}


@pytest.fixture(scope="module")
def pool():
    """Two warm workers shared by this module's tests (a fault test leaves it working)."""
    with ProcessExecutor(2, margin=0) as executor:
        yield executor


def _files(tmp_path: Path, n: int = 6, marker: bytes | None = None, at: int = 2) -> list[str]:
    out = []
    for i in range(n):
        path = tmp_path / "in" / f"f{i}.ndjson"
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [json.dumps({"id": k, "file": i}) for k in range(4)] + ["{broken"]
        if marker is not None and i == at:
            lines[1] = json.dumps({"id": 1, "note": marker.decode()})
        path.write_text("\n".join(lines) + "\n")
        out.append(str(path))
    return out


def _table(root: Path) -> TableConfig:
    return TableConfig("sql", "engines", "events", str(root / "out" / "table"), f"sqlite:///{root}/catalog.db")


def _run(engine, root: Path, uris: list[str], table: bool, mid: str = "m-engines"):
    root.mkdir(parents=True, exist_ok=True)
    manifest = write_manifest(root / f"{mid}.json", mid, uris, DATE)
    config = _table(root) if table else None
    summary = run_job(engine, JobArgs(str(manifest), str(root / "out"), str(root / "q"), table=config))
    if table:
        rows = open_catalog(config).load_table(config.identifier).scan().to_arrow().to_pylist()
        rows.sort(key=lambda r: (r["_source_file"], r["_source_line"]))
    else:
        rows = read_rows(root / "out" / f"dt={DATE}" / f"manifest={mid}")
    quarantine = read_quarantine(root / "q" / f"dt={DATE}" / f"manifest={mid}")
    written = json.loads((root / "out" / "_runs" / f"{mid}.json").read_text())
    return summary, rows, quarantine, written


def _same_on_both_engines(spark, pool, tmp_path: Path, uris: list[str], table: bool) -> tuple:
    glue_run = _run(spark, tmp_path / "glue", uris, table)
    lambda_run = _run(pool, tmp_path / "lambda", uris, table)
    (s_glue, rows_glue, q_glue, w_glue), (s_lambda, rows_lambda, q_lambda, w_lambda) = glue_run, lambda_run
    assert (s_glue.engine, s_lambda.engine) == ("glue", "lambda")
    assert (w_glue["engine"], w_lambda["engine"], w_glue["committed"], w_lambda["committed"]) == (
        "glue",
        "lambda",
        True,
        True,
    )
    assert rows_lambda == rows_glue  # row for row (sorted by provenance: the order is not the contract)
    assert q_lambda == q_glue
    assert {k: v for k, v in w_lambda.items() if k not in RUN_SPECIFIC} == {
        k: v for k, v in w_glue.items() if k not in RUN_SPECIFIC
    }
    return s_glue, rows_glue, q_glue


@pytest.mark.spark
@pytest.mark.slow
def test_engines_agree_on_tests_data_in_a_table(spark, pool, tmp_path):
    # GIVEN the shapes files of tests/data as one manifest, committed to a table by each engine
    uris = sorted(str(p) for p in SHAPES.iterdir() if p.name != "expected.json")
    # WHEN both engines convert it THEN rows, records, summary and table contents are the same
    summary, rows, records = _same_on_both_engines(spark, pool, tmp_path, uris, table=True)
    expected = json.loads((SHAPES / "expected.json").read_text())
    assert len(rows) == summary.totals["rows"] > 0 and len(records) == summary.totals["quarantined"] > 0
    assert len(summary.files) == len(uris) and summary.tasks == 2 and expected


@pytest.mark.spark
@pytest.mark.slow
def test_engines_agree_on_the_peer_corpus(spark, pool, tmp_path):
    reason = corpus_missing(PEERS)
    if reason:
        pytest.skip(reason)
    # GIVEN the 97 peer files (read where they are) as one manifest, folder output
    uris = sorted(str(p) for p in PEERS.rglob("*") if p.is_file() and p.parent != PEERS)
    # WHEN both engines convert it THEN the same 623 rows, records and per-file counts
    summary, rows, _ = _same_on_both_engines(spark, pool, tmp_path, uris, table=False)
    want = json.loads((PEERS / "expected.json").read_text("utf-8"))
    got = {f["uri"]: (f["lines"], f["blank"], f["rows"], f["quarantined"]) for f in summary.files}
    assert got == {str(PEERS / n): (e["lines"], e["blank"], e["valid"], e["bad"]) for n, e in want.items()}
    assert len(rows) == 623


def test_a_transient_error_is_retried_and_the_run_succeeds(pool, tmp_path, monkeypatch):
    # GIVEN a file whose conversion hits S3 SlowDown twice, then reads fine (a passing throttle)
    tally = tmp_path / "tally"
    tally.mkdir()
    fault = isolation.InjectedFault(b"FLAKY", kind="transient", times=2, tally=str(tally))
    monkeypatch.setattr(isolation, "INJECT", fault)
    uris = _files(tmp_path, marker=b"FLAKY")
    # WHEN the pool runs it THEN the task was retried twice and every row is there once
    summary, rows, records, written = _run(pool, tmp_path, uris, table=False)
    assert len(os.listdir(tally)) == 2
    assert summary.files_set_aside == 0 and len(rows) == 6 * 4 and len(records) == 6
    assert len({(r["_source_file"], r["_source_line"]) for r in rows}) == 24
    assert written["engine"] == "lambda" and reconcile(written, uris)


def test_a_transient_error_that_persists_fails_the_run_after_four_attempts(pool, tmp_path, monkeypatch):
    # GIVEN a file whose conversion always hits S3 SlowDown
    tally = tmp_path / "tally"
    tally.mkdir()
    fault = isolation.InjectedFault(b"THROTTLED", kind="transient", times=100, tally=str(tally))
    monkeypatch.setattr(isolation, "INJECT", fault)
    uris = _files(tmp_path, marker=b"THROTTLED")
    # WHEN the pool runs it THEN the run fails naming the throttle, after 4 attempts (not set aside)
    with pytest.raises(Exception, match="SlowDown") as caught:
        _run(pool, tmp_path, uris, table=False)
    assert "in worker process" in "\n".join(getattr(caught.value, "__notes__", []))
    assert len(os.listdir(tally)) == 4
    _nothing_committed(tmp_path)


def test_a_deterministic_error_sets_the_file_aside(pool, tmp_path, monkeypatch):
    # GIVEN a file whose conversion raises a bug-like error
    monkeypatch.setattr(isolation, "INJECT", isolation.InjectedFault(b"POISON"))
    uris = _files(tmp_path, marker=b"POISON")
    # WHEN the pool runs it THEN that file alone is set aside (one record), the others commit
    summary, rows, records, _ = _run(pool, tmp_path, uris, table=False)
    assert summary.files_set_aside == 1
    assert {r["_source_file"] for r in rows} == set(uris) - {uris[2]} and len(rows) == 5 * 4
    whole = [r for r in records if r["source_file"] == uris[2]]
    assert [(r["line_number"], r["reason"]) for r in whole] == [
        (1, "conversion_error: RuntimeError: injected conversion failure for f2.ndjson")
    ]


def test_a_killed_worker_raises_worker_died_and_the_pool_works_for_the_next_run(pool, tmp_path, monkeypatch):
    # GIVEN a file that kills the worker converting it (as the OOM killer would)
    before = pool.pids()
    monkeypatch.setattr(isolation, "INJECT", isolation.InjectedFault(b"KILL-THE-WORKER", kind="kill"))
    uris = _files(tmp_path / "a", marker=b"KILL-THE-WORKER")
    # WHEN the pool runs it THEN WorkerDiedError, naming the exit code, and nothing committed
    with pytest.raises(WorkerDiedError, match="exit code 137"):
        _run(pool, tmp_path / "a", uris, table=False)
    _nothing_committed(tmp_path / "a")
    # AND the next run on the same executor succeeds with a replaced worker
    monkeypatch.setattr(isolation, "INJECT", None)
    summary, rows, _, _ = _run(pool, tmp_path / "b", _files(tmp_path / "b"), table=False)
    assert len(rows) == 24 and summary.engine == "lambda"
    assert len(pool.pids()) == 2 and pool.pids() != before


def test_workers_stay_warm_across_runs(pool, tmp_path):
    # GIVEN a pool that has run once
    _run(pool, tmp_path / "one", _files(tmp_path / "one"), table=True)
    pids = pool.pids()
    # WHEN it runs another manifest (another table) THEN the same worker processes did it
    summary, rows, _, _ = _run(pool, tmp_path / "two", _files(tmp_path / "two"), table=True)
    assert pool.pids() == pids and len(pids) == 2
    assert len(rows) == 24 and summary.snapshot_id is not None


class _DeadlineAt:
    """An executor whose deadline arrives at one stage: the pool's, with its check at ``stage``."""

    name = "lambda"

    def __init__(self, pool: ProcessExecutor, stage: str) -> None:
        self.pool, self.stage, self.checked = pool, stage, []

    @property
    def parallelism(self) -> int:
        return self.pool.parallelism

    def map(self, fn, items):
        return self.pool.map(fn, items)

    def check_deadline(self, stage: str) -> None:
        self.checked.append(stage)
        if stage == self.stage:
            raise ConverterDeadlineError(f"{stage}: 0.0 s left")


def test_the_deadline_before_the_commit_commits_nothing(pool, tmp_path):
    # GIVEN a run whose deadline arrives once the conversion is done
    engine = _DeadlineAt(pool, "commit")
    uris = _files(tmp_path)
    # WHEN it runs THEN ConverterDeadlineError, and no table snapshot, no quarantine, no summary
    with pytest.raises(ConverterDeadlineError, match="commit"):
        _run(engine, tmp_path, uris, table=True)
    assert engine.checked == ["unify", "commit"]
    assert not open_catalog(_table(tmp_path)).table_exists(_table(tmp_path).identifier)  # made by a commit
    _nothing_committed(tmp_path)
    assert not list((tmp_path / "out" / "table" / "data").rglob("*.parquet"))  # staged parts deleted


def test_a_deadline_mid_conversion_aborts_the_map(pool, tmp_path):
    # GIVEN a pool whose deadline is 0.3 s away and tasks that take longer
    pool.deadline = time.monotonic() + 0.3
    try:
        started = time.monotonic()
        # WHEN it maps THEN it stops at the deadline, not when the tasks end
        with pytest.raises(ConverterDeadlineError, match="convert"):
            pool.map(time.sleep, [5, 5, 5])
        assert time.monotonic() - started < 2
        # and a run started past the deadline stops before converting
        with pytest.raises(ConverterDeadlineError):
            _run(pool, tmp_path, _files(tmp_path), table=False)
        _nothing_committed(tmp_path)
    finally:
        pool.deadline = None
    assert pool.map(abs, [-1, -2]) == [1, 2]  # its workers were replaced


def test_the_summary_is_staged_before_the_commit(pool, tmp_path, monkeypatch):
    # GIVEN a commit that looks for the run summary when it starts (a run killed right after the
    # commit never writes another one)
    from glue import job

    seen = {}
    real = job.commit_manifest

    def commit(catalog, config, *args, **kwargs):
        seen.update(json.loads((tmp_path / "out" / "_runs" / "m-engines.json").read_text()))
        return real(catalog, config, *args, **kwargs)

    monkeypatch.setattr(job, "commit_manifest", commit)
    uris = _files(tmp_path)
    # WHEN the run commits THEN the staged summary was there, and Finalize can read it
    summary, _, _, written = _run(pool, tmp_path, uris, table=True)
    assert seen["committed"] is False and seen["snapshot_id"] is None and seen["run_token"] == summary.run_token
    assert reconcile(seen, uris) == reconcile(written, uris)
    assert written["committed"] is True and written["snapshot_id"] == summary.snapshot_id


def test_order_errors_and_unpicklable_replies(pool):
    assert pool.map(abs, list(range(-20, 0))) == list(range(20, 0, -1))
    assert pool.map(abs, []) == []
    with pytest.raises(ValueError, match="invalid literal"):  # deterministic: not retried
        pool.map(int, ["1", "x"])
    with pytest.raises(RuntimeError, match="could not be pickled"):
        pool.map(open, [os.devnull])
    assert pool.map(abs, [-3]) == [3]
    with pytest.raises(ValueError, match="workers"):
        ProcessExecutor(0)


def _nothing_committed(root: Path) -> None:
    assert not (root / "out" / f"dt={DATE}").exists()
    assert not (root / "q" / f"dt={DATE}").exists()
    assert not (root / "out" / "_runs").exists() or not list((root / "out" / "_runs").iterdir())
    assert not list((root / "out").rglob("*.parquet"))


_NO_PYSPARK = """
import json, sys
from glue.executors import ProcessExecutor
from glue.job import JobArgs, run_job
with ProcessExecutor(1) as pool:
    s = run_job(pool, JobArgs(sys.argv[1], sys.argv[2], sys.argv[3], schema_path=sys.argv[4]))
print(json.dumps({"rows": s.totals["rows"], "engine": s.engine, "schema": s.schema,
                  "spark": sorted(m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j"))}))
"""


def test_the_process_pool_path_imports_no_pyspark(tmp_path):
    # GIVEN pyspark and py4j made unimportable for the driver AND its worker processes (a package
    # of the same name first on PYTHONPATH that refuses to import, as if it were not installed)
    blocked = tmp_path / "blocked"
    for name in ("pyspark", "py4j"):
        (blocked / name).mkdir(parents=True)
        (blocked / name / "__init__.py").write_text(f"raise ImportError('{name} is not in the Lambda artifact')\n")
    uris = _files(tmp_path)
    manifest = write_manifest(tmp_path / "m.json", "m-nospark", uris, DATE)
    schema = tmp_path / "schema.ddl"
    schema.write_text("id BIGINT NOT NULL, file INT COMMENT 'which file'")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked), str(REPO)])}
    # WHEN the job runs on the process pool, with a DDL schema file
    args = [str(manifest), str(tmp_path / "out"), str(tmp_path / "q"), str(schema)]
    done = subprocess.run(
        [sys.executable, "-c", _NO_PYSPARK, *args], env=env, capture_output=True, text=True, timeout=120
    )
    # THEN it converts everything and neither package was ever imported
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {
        "rows": 24,
        "engine": "lambda",
        "schema": {
            "type": "struct",
            "fields": [
                {"name": "id", "type": "long", "nullable": True, "metadata": {}},
                {"name": "file", "type": "integer", "nullable": True, "metadata": {}},
            ],
        },
        "spark": [],
    }
    parts = sorted((tmp_path / "out" / f"dt={DATE}" / "manifest=m-nospark").glob("*.parquet"))
    assert sum(pq.read_metadata(p).num_rows for p in parts) == 24
