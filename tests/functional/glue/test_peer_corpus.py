"""Other projects' JSON test files (../shared/corpus/peers: duckdb, polars, arrow-rs, ...) through the job.

The files are read where they are, never copied into the repository. Per file: counts against the
corpus's expected.json and every row against the oracle of docs/json-shapes.md; once, the whole
corpus as one manifest through run_job in Spark, and every Parquet file it writes opened in Spark 3.5,
DuckDB and pyarrow. Without the corpus the tests skip; NDJSON_PARQUET_REQUIRE_CORPUS=1 makes that a failure.
"""

from __future__ import annotations

import json
import re
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


def _plain_json(node):
    """A value parsed with ``("obj", pairs)`` objects back as plain JSON (the last duplicate wins)."""
    if isinstance(node, tuple):
        return {k: _plain_json(v) for k, v in node[1]}
    if isinstance(node, list):
        return [_plain_json(v) for v in node]
    return node


@pytest.mark.spark
@pytest.mark.slow
def test_whole_corpus_into_one_table_in_four_manifests(spark, tmp_path):
    """Other projects' files, four manifests of about 25 files, committed to ONE table: their
    shapes disagree (the same key is a number here, an object there), yet every valid line is
    exactly one row, a value that does not fit its column is in ``_rescued_data`` under its key,
    and the current snapshot's files open in Spark, DuckDB and pyarrow."""
    _skip_without_corpus()
    import duckdb

    from glue.table import TableConfig, open_catalog
    from tests.functional.glue.conftest import write_manifest

    names = sorted(EXPECTED)
    config = TableConfig("sql", "peers", "dataset", str(tmp_path / "o" / "table"), f"sqlite:///{tmp_path}/c.db")
    for n in range(4):
        uris = [str(PEERS / name) for name in names[n::4]]
        manifest = write_manifest(tmp_path / f"m{n}.json", f"m-peers-{n}", uris)
        run_job(spark, JobArgs(str(manifest), str(tmp_path / "o"), str(tmp_path / "q"), table=config))

    table = open_catalog(config).load_table(config.identifier)
    rows = table.scan().to_arrow().to_pylist()
    valid = sum(e["valid"] for e in EXPECTED.values())
    assert len(rows) == valid == 623
    assert len({(r["_source_file"], r["_source_line"]) for r in rows}) == valid
    assert {(r["_source_file"], r["_manifest_id"]) for r in rows} <= {
        (str(PEERS / name), f"m-peers-{i % 4}") for i, name in enumerate(names)
    }
    # Every rescued value is the source line's own value under that JSON Pointer.
    rescued = [r for r in rows if r["_rescued_data"]]
    assert rescued, "four manifests of other projects' files must disagree somewhere"
    for r in rescued:
        line = Path(r["_source_file"]).read_bytes().splitlines()[r["_source_line"] - 1]
        # Every value of a key, duplicates included (an earlier duplicate key is rescued too).
        source = json.loads(line.decode("utf-8-sig"), object_pairs_hook=lambda pairs: ("obj", pairs))
        for pointer, value in json.loads(r["_rescued_data"]).items():
            pointer = re.sub(r"#\d+$", "", pointer)  # the 2nd, 3rd... value rescued at one pointer
            nodes = [source]
            for part in pointer.split("/")[1:]:
                key = part.replace("~1", "/").replace("~0", "~")
                nodes = [
                    v
                    for node in nodes
                    for v in (
                        [val for k, val in node[1] if k == key]
                        if isinstance(node, tuple)
                        else [node[int(key)]]
                        if isinstance(node, list) and key.isdigit() and int(key) < len(node)
                        else []
                    )
                ]
            assert any(_plain_json(n) == value for n in nodes), (pointer, value, r["_source_file"])
    # The table reads the same through DuckDB, and its current files open everywhere.
    assert table.scan().to_duckdb("dataset").sql("select count(*) from dataset").fetchone() == (valid,)
    paths = [Path(t.file.file_path.removeprefix("file://")) for t in table.scan().plan_files()]
    open_everywhere(spark, paths, valid)
    assert duckdb.sql(f"select count(*) from read_parquet({[str(p) for p in paths]})").fetchone() == (valid,)
