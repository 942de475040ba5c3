"""Other projects' JSON test files (../shared/corpus/peers: duckdb, polars, arrow-rs, ...) through the job.

The files are read where they are, never copied into the repository. Per file: counts against the
corpus's expected.json and every row against the oracle of docs/json-shapes.md; once, the whole
corpus as one manifest through run_job in Spark, and every Parquet file it writes opened in Spark 3.5,
DuckDB and pyarrow. Without the corpus the tests skip; NDJSON_PARQUET_REQUIRE_CORPUS=1 makes that a failure.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glue.job import JobArgs, run_job
from tests.conversion_harness import convert_manifest, corpus_missing, variant
from tests.functional.glue.conftest import read_quarantine, read_rows
from tests.functional.glue.engines import open_everywhere
from tests.json_shapes_oracle import check, expect

PEERS = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "peers"


def _expected() -> dict[str, dict]:
    return json.loads((PEERS / "expected.json").read_text("utf-8")) if PEERS.is_dir() else {}


EXPECTED = _expected()
NAMES = sorted(EXPECTED) or ["<corpus missing>"]


def _skip_without_corpus() -> None:
    reason = corpus_missing(PEERS)
    if reason:
        pytest.skip(reason)


def test_corpus_is_complete():
    _skip_without_corpus()
    assert len(EXPECTED) == 97
    on_disk = sorted(str(p.relative_to(PEERS)) for p in PEERS.rglob("*") if p.is_file() and p.parent != PEERS)
    assert on_disk == sorted(EXPECTED)


@pytest.mark.parametrize("name", NAMES)
def test_each_file_counts_and_values(name):
    _skip_without_corpus()
    # GIVEN one peer file and its expected counts
    want = EXPECTED[name]
    manifest = [(str(PEERS / name), (PEERS / name).read_bytes())]
    exp = expect(manifest)
    assert exp.counts[manifest[0][0]] == {
        "lines": want["lines"],
        "blank": want["blank"],
        "rows": want["valid"],
        "quarantined": want["bad"],
    }, "the oracle disagrees with expected.json"
    # WHEN the job converts it, on the fast path and on the forced slow path
    for slow in (False, True):
        with variant(slow=slow):
            table, bad = convert_manifest(manifest)
        # THEN valid lines are rows, bad lines quarantine records, values as the contract says
        assert table.num_rows == want["valid"] and len(bad) == want["bad"], f"slow={slow}"
        problems = check(exp, table, bad)
        assert not problems, f"slow={slow}:\n" + "\n".join(problems[:10])


@pytest.mark.spark
@pytest.mark.slow
def test_whole_corpus_through_run_job_opens_everywhere(spark, tmp_path):
    _skip_without_corpus()
    # GIVEN the 97 files as one manifest (in the corpus's order)
    uris = [str(PEERS / n) for n in sorted(EXPECTED)]
    manifest = tmp_path / "m.json"
    manifest.write_text(
        json.dumps(
            {"manifest_id": "m-peers", "date_prefix": "2024-05-01", "files": [{"uri": u, "size": 1} for u in uris]}
        )
    )
    # WHEN the job runs
    summary = run_job(
        spark,
        JobArgs(manifest_path=str(manifest), output_path=str(tmp_path / "o"), quarantine_path=str(tmp_path / "q")),
    )
    # THEN per-file counts match expected.json
    got = {f["uri"]: (f["lines"], f["blank"], f["rows"], f["quarantined"]) for f in summary.files}
    want = {str(PEERS / n): (e["lines"], e["blank"], e["valid"], e["bad"]) for n, e in EXPECTED.items()}
    assert got == want
    # AND every row and quarantine record is what the oracle expects over the whole manifest
    folder = ("dt=2024-05-01", "manifest=m-peers")
    parts = sorted(tmp_path.joinpath("o", *folder).glob("*.parquet"))
    import pyarrow as pa
    import pyarrow.parquet as pq

    # partitioning=None: the folder's dt=/manifest= names are not data columns of the check
    table = pa.concat_tables([pq.read_table(p, partitioning=None) for p in parts])
    exp = expect([(u, Path(u).read_bytes()) for u in uris])
    problems = check(exp, table, read_quarantine(tmp_path.joinpath("q", *folder)))
    assert not problems, "\n".join(problems[:15])
    assert len(read_rows(tmp_path.joinpath("o", *folder))) == sum(e["valid"] for e in EXPECTED.values()) == 623
    # AND every Parquet file opens in Spark (case-insensitive defaults), DuckDB and pyarrow
    open_everywhere(spark, parts, 623)
