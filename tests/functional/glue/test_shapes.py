"""tests/data/shapes: one small file per shape class of docs/json-shapes.md, with expected counts.

Each file converts on the fast and the slow path to the oracle's rows (tests/json_shapes_oracle.py);
all of them (plus a 3000-key object and a ~5 MB line generated here) go through run_job as one
manifest, and every Parquet file written opens in Spark 3.5 (case-insensitive), DuckDB and pyarrow.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from glue.job import JobArgs, run_job
from tests.conversion_harness import convert_manifest, variant
from tests.functional.glue.conftest import read_quarantine
from tests.functional.glue.engines import open_everywhere
from tests.json_shapes_oracle import check, expect

SHAPES = Path(__file__).resolve().parents[2] / "data" / "shapes"
EXPECTED: dict[str, dict] = json.loads((SHAPES / "expected.json").read_text("utf-8"))
DEEP_TEXT = "deep_40.ndjson"  # values beyond 32 levels become JSON text: also checked by reconstruction below


def _counts(want: dict) -> dict[str, int]:
    return {"lines": want["lines"], "blank": want["blank"], "rows": want["valid"], "quarantined": want["bad"]}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_shape_file_on_both_paths(name):
    manifest = [(f"s3://in/{name}", (SHAPES / name).read_bytes())]
    exp = expect(manifest)
    assert exp.counts[manifest[0][0]] == _counts(EXPECTED[name]), "the oracle disagrees with expected.json"
    tables = []
    for slow in (False, True):
        with variant(slow=slow):
            table, bad = convert_manifest(manifest)
        assert (table.num_rows, len(bad)) == (EXPECTED[name]["valid"], EXPECTED[name]["bad"]), f"slow={slow}"
        problems = check(exp, table, bad)
        assert not problems, f"slow={slow}:\n" + "\n".join(problems[:10])
        tables.append(table)
    assert tables[0].to_pylist() == tables[1].to_pylist(), "fast and slow paths differ"


def _depth(t: pa.DataType) -> int:
    if pa.types.is_struct(t):
        return 1 + max((_depth(f.type) for f in t), default=0)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return 1 + _depth(t.value_type)
    return 0


@pytest.mark.parametrize("source_name", [DEEP_TEXT, "deep_512.ndjson"])
@pytest.mark.parametrize("slow", [False, True])
def test_values_beyond_32_levels_are_json_text_that_rebuilds_the_source(source_name, slow):
    # GIVEN a 40-level (or 512-level) object
    line = (SHAPES / source_name).read_bytes().splitlines()[0]
    with variant(slow=slow):
        table, bad = convert_manifest([("s3://in/deep.ndjson", line)])
    assert not bad and table.num_rows == 1
    # THEN the column holds exactly 32 levels (its value is level 1), and the object at level 33 is
    # JSON text that is the source subtree, character for character
    assert _depth(table.schema.field("d").type) == 32
    value, source, levels = table.column("d").to_pylist()[0], json.loads(line)["d"], 0
    while isinstance(value, dict):
        value, source, levels = value["a"], source["a"], levels + 1
    assert levels == 32 and isinstance(value, str)
    assert value == json.dumps(source, separators=(",", ":"))


def _generated(tmp_path: Path) -> list[Path]:
    wide = tmp_path / "wide_3000_keys.ndjson"
    wide.write_text(json.dumps({f"k{i:04d}": i for i in range(3000)}) + "\n" + json.dumps({"k0001": 1}) + "\n")
    big = tmp_path / "one_5mb_line.ndjson"
    big.write_text(json.dumps({"blob": "x" * (5 * 1024 * 1024), "n": 1}) + '\n{"n": 2}\n')
    return [wide, big]


@pytest.mark.spark
@pytest.mark.slow
def test_all_shapes_through_run_job_open_in_spark_duckdb_pyarrow(spark, tmp_path):
    # GIVEN every shape file (the 40-level one has its own test) and two generated ones, as one manifest
    uris = [str(SHAPES / n) for n in sorted(EXPECTED) if n != DEEP_TEXT] + [str(p) for p in _generated(tmp_path)]
    manifest = tmp_path / "m.json"
    files = [{"uri": u, "size": 1} for u in uris]
    manifest.write_text(json.dumps({"manifest_id": "m-shapes", "date_prefix": "2024-05-01", "files": files}))
    # WHEN the job runs
    summary = run_job(
        spark,
        JobArgs(manifest_path=str(manifest), output_path=str(tmp_path / "o"), quarantine_path=str(tmp_path / "q")),
    )
    # THEN counts, rows and quarantine records are the oracle's
    exp = expect([(u, Path(u).read_bytes()) for u in uris])
    got = {f["uri"]: {k: f[k] for k in ("lines", "blank", "rows", "quarantined")} for f in summary.files}
    assert got == exp.counts
    folder = ("dt=2024-05-01", "manifest=m-shapes")
    parts = sorted(tmp_path.joinpath("o", *folder).glob("*.parquet"))
    # partitioning=None: the folder's dt=/manifest= names are not data columns of the check
    table = pa.concat_tables([pq.read_table(p, partitioning=None) for p in parts])
    problems = check(exp, table, read_quarantine(tmp_path.joinpath("q", *folder)))
    assert not problems, "\n".join(problems[:15])
    # AND every Parquet file opens in Spark, DuckDB and pyarrow
    open_everywhere(spark, parts, sum(c["rows"] for c in exp.counts.values()))


@pytest.mark.spark
@pytest.mark.slow
def test_spark_reads_a_file_made_from_case_colliding_keys(spark, tmp_path):
    # GIVEN keys that differ only by case (top level, nested, in a list of structs)
    src = SHAPES / "case_collisions.ndjson"
    manifest = tmp_path / "m.json"
    manifest.write_text(
        json.dumps({"manifest_id": "m-case", "date_prefix": "2024-05-01", "files": [{"uri": str(src), "size": 1}]})
    )
    run_job(
        spark,
        JobArgs(manifest_path=str(manifest), output_path=str(tmp_path / "o"), quarantine_path=str(tmp_path / "q")),
    )
    # WHEN Spark 3.5 reads the output with default (case-insensitive) settings
    folder = tmp_path.joinpath("o", "dt=2024-05-01", "manifest=m-case")
    df = spark.read.parquet(str(folder))
    rows = sorted(df.collect(), key=lambda r: r["_source_line"])  # [COLUMN_ALREADY_EXISTS] before the fix
    # THEN the first casing is the column and the others are in _rescued_data
    assert [r["id"] for r in rows] == [1, None, None]
    assert [item.asDict() for item in rows[2]["items"]] == [{"Id": 1}, {"Id": None}]
    assert [json.loads(r["_rescued_data"]) for r in rows] == [
        {"/Id": 2, "/ID": 3},
        {"/Id": 4, "/user/name": "b"},
        {"/items/0/id": 2, "/items/1/ID": 3, "/USER": {"name": "c"}},
    ]
    lowered = [c.lower() for c in df.columns]
    assert len(lowered) == len(set(lowered))
