"""The Iceberg table output: a drifting producer makes ONE table, replays replace a manifest's rows,
the schema modes, concurrent committers, and the Glue Data Catalog (moto's server) with S3 files.

The local catalog is pyiceberg's SQL catalog on sqlite; the table is read back through pyiceberg
(Arrow), DuckDB (over the current snapshot) and Spark 3.5 (the current snapshot's data files)."""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from glue.job import JobArgs, SchemaChangeError, run_job
from glue.table import TableConfig, commit_manifest, open_catalog
from glue.table_schema import evolve

pytestmark = [pytest.mark.spark, pytest.mark.slow]

ROWS_PER_FILE = 50


def _table(tmp_path: Path, mode: str = "addNewColumns") -> TableConfig:
    return TableConfig(
        "sql", "analytics", "events", str(tmp_path / "out" / "table"), f"sqlite:///{tmp_path}/catalog.db", mode
    )


def _args(tmp_path: Path, manifest: Path, table: TableConfig) -> JobArgs:
    return JobArgs(str(manifest), str(tmp_path / "out"), str(tmp_path / "q"), table=table)


def _drifting_files(tmp_path: Path) -> list[Path]:
    """One producer, four files: ``amount`` int -> double -> string, ``meta`` object -> string,
    ``user.id`` int -> string (file 4), plus a new nested field ``user.plan`` in file 3."""
    shapes = [
        lambda i: {"id": i, "amount": i, "meta": {"src": "web"}, "user": {"id": i}},
        lambda i: {"id": i, "amount": i + 0.5, "meta": {"src": "app"}, "user": {"id": i}},
        lambda i: {"id": i, "amount": f"{i} EUR", "meta": "legacy", "user": {"id": i, "plan": "pro"}},
        lambda i: {"id": i, "amount": i, "meta": {"src": "web"}, "user": {"id": f"u{i}"}},
    ]
    paths = []
    for n, shape in enumerate(shapes):
        path = tmp_path / f"part-{n}.ndjson"
        start = n * ROWS_PER_FILE
        path.write_text("".join(json.dumps(shape(start + i)) + "\n" for i in range(ROWS_PER_FILE)))
        paths.append(path)
    return paths


def _read(config: TableConfig) -> pa.Table:
    return open_catalog(config).load_table(config.identifier).scan().to_arrow()


def test_a_drifting_producer_makes_one_table_and_no_value_is_lost(spark, tmp_path, make_manifest):
    config = _table(tmp_path)
    files = _drifting_files(tmp_path)
    summaries = [run_job(spark, _args(tmp_path, make_manifest(f"m{n}", [str(f)]), config)) for n, f in enumerate(files)]

    rows = _read(config).to_pylist()
    assert len(rows) == 4 * ROWS_PER_FILE
    assert len({(r["_source_file"], r["_source_line"]) for r in rows}) == 4 * ROWS_PER_FILE
    table = open_catalog(config).load_table(config.identifier)
    types = {f.name: str(f.field_type) for f in table.schema().fields}
    # One schema: the first manifest's types stay; user.plan was added as a nested field.
    assert types["amount"] == "long"
    assert table.schema().find_field("meta").field_type.is_struct
    assert str(table.schema().find_type("meta.src")) == "string"
    assert str(table.schema().find_type("user.id")) == "long"
    assert str(table.schema().find_type("user.plan")) == "string"
    assert summaries[2].schema_changes == ["added user.plan string"]
    assert summaries[0].snapshot_id is not None and summaries[3].schema_id == summaries[2].schema_id

    # Every value that did not fit its column is in _rescued_data under its original key.
    by_source = {(Path(r["_source_file"]).name, r["_source_line"]): r for r in rows}
    for i in range(ROWS_PER_FILE):
        first = by_source[("part-0.ndjson", i + 1)]
        assert first["amount"] == i and first["_rescued_data"] is None
        second = by_source[("part-1.ndjson", i + 1)]
        start = ROWS_PER_FILE
        assert second["amount"] is None
        assert json.loads(second["_rescued_data"]) == {"/amount": start + i + 0.5}
        third = by_source[("part-2.ndjson", i + 1)]
        start = 2 * ROWS_PER_FILE
        assert third["amount"] is None and third["meta"] is None
        assert json.loads(third["_rescued_data"]) == {"/amount": f"{start + i} EUR", "/meta": "legacy"}
        assert third["user"] == {"id": start + i, "plan": "pro"}
        fourth = by_source[("part-3.ndjson", i + 1)]
        start = 3 * ROWS_PER_FILE
        assert fourth["amount"] == start + i and fourth["user"] == {"id": None, "plan": None}
        assert json.loads(fourth["_rescued_data"]) == {"/user/id": f"u{start + i}"}

    # DuckDB over the current snapshot, and Spark over its data files, read the same rows.
    con = table.scan().to_duckdb("dataset")
    assert con.sql("select count(*), count(amount), count(_rescued_data) from dataset").fetchone() == (200, 100, 150)
    paths = [t.file.file_path for t in table.scan().plan_files()]
    df = spark.read.option("mergeSchema", "true").parquet(*paths)
    assert df.count() == 200
    assert dict(df.dtypes)["amount"] == "bigint"


def test_a_replayed_manifest_replaces_its_rows_in_one_new_snapshot(spark, tmp_path, make_manifest):
    config = _table(tmp_path)
    files = _drifting_files(tmp_path)[:2]
    manifests = [make_manifest(f"m{n}", [str(f)]) for n, f in enumerate(files)]
    for m in manifests:
        run_job(spark, _args(tmp_path, m, config))
    table = open_catalog(config).load_table(config.identifier)
    before = {t.file.file_path for t in table.scan().plan_files()}
    snapshots = len(table.snapshots())

    summary = run_job(spark, _args(tmp_path, manifests[1], config))

    table = open_catalog(config).load_table(config.identifier)
    after = {t.file.file_path for t in table.scan().plan_files()}
    assert len(table.snapshots()) == snapshots + 1
    snap = table.current_snapshot()
    assert snap.summary.operation.value == "overwrite"
    assert snap.summary["manifest_id"] == "m1" and snap.summary["run_token"] == summary.run_token
    m1_before = {p for p in before if "/m1-" in p}
    m1_after = {p for p in after if "/m1-" in p}
    assert m1_before and m1_after and not (m1_before & m1_after)  # new files for m1
    assert after - m1_after == before - m1_before  # m0 untouched
    assert table.scan().to_arrow().num_rows == 2 * ROWS_PER_FILE
    # Superseded files stay on disk for older snapshots (time travel) until snapshots expire.
    assert all(Path(p.removeprefix("file://")).exists() for p in m1_before)
    assert json.loads((tmp_path / "out" / "_runs" / "m1.json").read_text())["snapshot_id"] == snap.snapshot_id


def test_the_table_is_partitioned_by_the_manifests_date_taken_from_each_files_statistics(
    spark, tmp_path, make_manifest
):
    from pyiceberg.expressions import EqualTo

    config = _table(tmp_path)
    files = _drifting_files(tmp_path)[:2]
    run_job(spark, _args(tmp_path, make_manifest("m0", [str(files[0])], date="2024-05-01"), config))
    run_job(spark, _args(tmp_path, make_manifest("m1", [str(files[1])], date="2024-05-02"), config))

    table = open_catalog(config).load_table(config.identifier)
    [field] = table.spec().fields
    assert (table.schema().find_column_name(field.source_id), str(field.transform)) == ("_ingest_date", "identity")
    assert len(table.metadata.partition_specs) == 1  # created partitioned, not evolved
    by_file = {t.file.file_path: t.file.partition[0] for t in table.scan().plan_files()}
    for path, days in by_file.items():
        # The value came from the file's own column statistics: the file's rows all hold it.
        dates = set(pq.ParquetFile(path).read(columns=["_ingest_date"]).column(0).to_pylist())
        assert dates == {datetime.date(1970, 1, 1) + datetime.timedelta(days=days)}
    assert sorted(p.split("/data/")[1].split("/")[0] for p in by_file) == [
        "dt=2024-05-01",
        "dt=2024-05-02",
    ]
    # A filter on the date prunes whole files from metadata: only the second manifest's remain.
    wanted = [t.file for t in table.scan(row_filter=EqualTo("_ingest_date", "2024-05-02")).plan_files()]
    assert {f.file_path.split("/")[-2].split("-")[0] for f in wanted} == {"m1"}
    con = table.scan().to_duckdb("dataset")
    assert con.sql("select _ingest_date::varchar, count(*) from dataset group by 1 order by 1").fetchall() == [
        ("2024-05-01", ROWS_PER_FILE),
        ("2024-05-02", ROWS_PER_FILE),
    ]
    df = spark.read.parquet(*by_file)
    assert dict(df.dtypes)["_ingest_date"] == "date"


def test_a_table_created_unpartitioned_gains_the_date_spec_on_its_next_commit(spark, tmp_path, make_manifest):
    config = _table(tmp_path)
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("_rescued_data", pa.string()),
            ("_source_file", pa.string()),
            ("_source_line", pa.int64()),
            ("_manifest_id", pa.string()),
        ]
    )
    data = tmp_path / "out" / "table" / "data"
    data.mkdir(parents=True)
    old = data / "old.parquet"
    rows = [{"id": 1, "_source_file": "old", "_source_line": 1, "_manifest_id": "old"}]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), old)
    commit_manifest(open_catalog(config), config, schema, [str(old)], "old", "t0")

    run_job(spark, _args(tmp_path, make_manifest("m0", [str(_drifting_files(tmp_path)[0])]), config))

    table = open_catalog(config).load_table(config.identifier)
    assert [table.schema().find_column_name(f.source_id) for f in table.spec().fields] == ["_ingest_date"]
    assert len(table.metadata.partition_specs) == 2
    got = table.scan().to_arrow()
    assert got.num_rows == 1 + ROWS_PER_FILE
    assert got.filter(pc.equal(got["_manifest_id"], "old"))["_ingest_date"].to_pylist() == [None]


def test_rescue_mode_never_changes_the_schema(spark, tmp_path, make_manifest):
    config = _table(tmp_path, "rescue")
    files = _drifting_files(tmp_path)
    run_job(spark, _args(tmp_path, make_manifest("m0", [str(files[0])]), config))
    schema_id = open_catalog(config).load_table(config.identifier).schema().schema_id

    summary = run_job(spark, _args(tmp_path, make_manifest("m2", [str(files[2])]), config))

    table = open_catalog(config).load_table(config.identifier)
    assert table.schema().schema_id == schema_id and summary.schema_changes == []
    rows = [r for r in table.scan().to_arrow().to_pylist() if r["_manifest_id"] == "m2"]
    assert len(rows) == ROWS_PER_FILE
    assert json.loads(rows[0]["_rescued_data"])["/user/plan"] == "pro"


def test_fail_on_new_columns_commits_nothing_and_names_the_field(spark, tmp_path, make_manifest):
    config = _table(tmp_path, "failOnNewColumns")
    files = _drifting_files(tmp_path)
    run_job(spark, _args(tmp_path, make_manifest("m0", [str(files[0])]), config))
    table = open_catalog(config).load_table(config.identifier)
    snapshot = table.current_snapshot().snapshot_id

    with pytest.raises(SchemaChangeError, match=r"added user\.plan string"):
        run_job(spark, _args(tmp_path, make_manifest("m2", [str(files[2])]), config))

    table = open_catalog(config).load_table(config.identifier)
    assert table.current_snapshot().snapshot_id == snapshot
    assert not list((tmp_path / "out" / "table" / "data").glob("dt=*/m2-*"))  # never committed: deleted
    # A manifest that brings nothing new still commits.
    run_job(spark, _args(tmp_path, make_manifest("m3", [str(files[0])]), config))


def test_parallel_committers_never_lose_or_double_a_manifest(tmp_path):
    """Many writers commit to one table at once. The SQL catalog swaps the metadata pointer only
    if it is unchanged (compare-and-swap), so a lost update would show here as a missing manifest.
    moto's Glue UpdateTable ignores VersionId and could not show one: this test is the proof."""
    config = _table(tmp_path)
    schema = pa.schema(
        [
            ("n", pa.int64()),
            ("_rescued_data", pa.string()),
            ("_source_file", pa.string()),
            ("_source_line", pa.int64()),
            ("_manifest_id", pa.string()),
        ]
    )
    data = tmp_path / "out" / "table" / "data"
    data.mkdir(parents=True)

    def write(mid: str) -> str:
        path = data / f"{mid}-{uuid.uuid4().hex[:8]}.parquet"
        rows = [{"n": i, "_source_file": mid, "_source_line": i + 1, "_manifest_id": mid} for i in range(3)]
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
        return str(path)

    writers, per_writer = 6, 4
    barrier = threading.Barrier(writers)
    results, errors = [], []

    def work(w: int) -> None:
        try:
            catalog = open_catalog(config)
            barrier.wait(timeout=60)
            for k in range(per_writer):
                mid = f"m{w}-{k}"
                results.append(commit_manifest(catalog, config, schema, [write(mid)], mid, "tok"))
            # and one replay each, racing the others' first commits
            mid = f"m{w}-0"
            results.append(commit_manifest(catalog, config, schema, [write(mid)], mid, "tok2"))
        except Exception as exc:  # reported below, with the others
            errors.append(repr(exc))
            barrier.abort()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    rows = _read(config)
    counts: dict[str, int] = {}
    for mid in rows.column("_manifest_id").to_pylist():
        counts[mid] = counts.get(mid, 0) + 1
    assert counts == {f"m{w}-{k}": 3 for w in range(writers) for k in range(per_writer)}
    assert len(results) == writers * (per_writer + 1)
    assert sum(r.attempts for r in results) > len(results)  # conflicts happened, and were retried


def test_the_glue_data_catalog_on_moto_with_files_in_s3(aws, tmp_path):
    import boto3

    from glue.storage import S3Config

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="lake")
    boto3.client("glue").create_database(DatabaseInput={"Name": "analytics"})  # the stack's, in AWS
    s3cfg = S3Config.from_env()
    config = TableConfig("glue", "analytics", "events", "s3://lake/table")
    catalog = open_catalog(config, s3cfg)
    schema = pa.schema(
        [
            ("n", pa.int64()),
            ("_rescued_data", pa.string()),
            ("_source_file", pa.string()),
            ("_source_line", pa.int64()),
            ("_manifest_id", pa.string()),
        ]
    )
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist([{"n": 1, "_manifest_id": "m1"}], schema=schema), sink)
    s3.put_object(Bucket="lake", Key="table/data/m1-a.parquet", Body=sink.getvalue().to_pybytes())
    final, changes = evolve(None, schema)

    result = commit_manifest(catalog, config, schema, ["s3://lake/table/data/m1-a.parquet"], "m1", "a", changes)

    glue = boto3.client("glue")
    got = glue.get_table(DatabaseName="analytics", Name="events")["Table"]
    assert got["Parameters"]["table_type"].upper() == "ICEBERG"
    assert got["Parameters"]["metadata_location"].startswith("s3://lake/table/metadata/")
    table = open_catalog(config, s3cfg).load_table(config.identifier)
    assert table.current_snapshot().snapshot_id == result.snapshot_id
    assert table.scan().to_arrow().to_pylist()[0]["n"] == 1
    assert [f.name for f in final] == ["n"]


_COMMIT_SCHEMA = pa.schema(
    [
        ("n", pa.int64()),
        ("_rescued_data", pa.string()),
        ("_source_file", pa.string()),
        ("_source_line", pa.int64()),
        ("_manifest_id", pa.string()),
    ]
)


def _data_writer(tmp_path: Path):
    data = tmp_path / "out" / "table" / "data"
    data.mkdir(parents=True, exist_ok=True)

    def write(*mids: str) -> str:
        path = data / f"{mids[0]}-{uuid.uuid4().hex[:8]}.parquet"
        rows = [{"n": i, "_source_file": m, "_source_line": i + 1, "_manifest_id": m} for m in mids for i in range(3)]
        pq.write_table(pa.Table.from_pylist(rows, schema=_COMMIT_SCHEMA), path)
        return str(path)

    return write


def _rows_per_manifest(config: TableConfig) -> dict[str, int]:
    counts: dict[str, int] = {}
    for mid in _read(config).column("_manifest_id").to_pylist():
        counts[mid] = counts.get(mid, 0) + 1
    return counts


def test_many_small_manifests_committing_at_once_all_succeed(tmp_path):
    """One-minute seals mean many small manifests committing to one table at the same moment:
    every one of them must land (conflicts retried in place), none charged a failure. sqlite's
    compare-and-swap on the metadata pointer stands in for Glue's UpdateTable VersionId check."""
    config = _table(tmp_path)
    write = _data_writer(tmp_path)
    commit_manifest(open_catalog(config), config, _COMMIT_SCHEMA, [write("m-first")], "m-first", "tok")  # the table
    writers = 12
    barrier = threading.Barrier(writers)
    results, errors = [], []

    def work(w: int) -> None:
        try:
            catalog = open_catalog(config)
            path = write(f"m{w}")
            barrier.wait(timeout=60)
            results.append(commit_manifest(catalog, config, _COMMIT_SCHEMA, [path], f"m{w}", "tok"))
        except Exception as exc:  # reported below, with the others
            errors.append(repr(exc))
            barrier.abort()

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert _rows_per_manifest(config) == {"m-first": 3, **{f"m{w}": 3 for w in range(writers)}}
    assert sum(r.attempts for r in results) > writers  # they did conflict, and retried in place
    table = open_catalog(config).load_table(config.identifier)
    assert len(table.metadata.snapshots) == writers + 1  # one snapshot per manifest, no more


def test_conflicts_that_outlast_the_deadline_raise_the_transient_error_and_commit_nothing(tmp_path):
    """A rival commits right before each of our attempts swaps the pointer, so every attempt loses
    the compare-and-swap for real. The commit gives up before its deadline with the named
    conflict error (the workflow requeues its files without an attempt), having committed nothing."""
    import time

    from pyiceberg.catalog.sql import SqlCatalog

    from chalicelib.commit_conflict import COMMIT_CONFLICT, ERROR_NAME, is_commit_conflict
    from glue.table import TableCommitConflictError, TableCommitError

    config = _table(tmp_path)
    write = _data_writer(tmp_path)
    commit_manifest(open_catalog(config), config, _COMMIT_SCHEMA, [write("r0")], "r0", "tok")
    rival_catalog = open_catalog(config)
    rivals: list[str] = []

    class RivalFirst(SqlCatalog):
        def commit_table(self, table, requirements, updates):
            mid = f"r{len(rivals) + 1}"
            commit_manifest(rival_catalog, config, _COMMIT_SCHEMA, [write(mid)], mid, "tok")
            rivals.append(mid)
            return super().commit_table(table, requirements, updates)

    contended = RivalFirst("local", uri=config.uri, warehouse=config.location)
    budget = 1.5
    started = time.monotonic()
    with pytest.raises(TableCommitConflictError) as caught:
        commit_manifest(contended, config, _COMMIT_SCHEMA, [write("mine")], "mine", "tok", deadline=started + budget)
    elapsed = time.monotonic() - started

    assert isinstance(caught.value, TableCommitError)  # callers catching the old error still do
    assert str(caught.value).startswith(COMMIT_CONFLICT) and "manifest mine" in str(caught.value)
    assert len(rivals) >= 2  # it retried in place before giving up
    assert elapsed < budget + 0.5  # stopped by the deadline (a Lambda ends before its timeout)
    assert _rows_per_manifest(config) == {"r0": 3, **{m: 3 for m in rivals}}  # nothing of "mine"
    # The names the workflow sees: the Lambda's error name, and a Glue run's ErrorMessage
    assert is_commit_conflict({"Error": ERROR_NAME, "Cause": "{}"})
    glue_cause = json.dumps({"JobRunState": "FAILED", "ErrorMessage": f"{ERROR_NAME}: {caught.value}"})
    assert is_commit_conflict({"Error": "States.TaskFailed", "Cause": glue_cause})


def test_a_deterministic_refusal_is_not_a_conflict(tmp_path):
    """A data file holding two manifests' rows cannot be replaced for one of them: that refusal
    is deterministic, raised at once as the plain TableCommitError, never retried as contention."""
    from chalicelib.commit_conflict import is_commit_conflict
    from glue.table import TableCommitConflictError, TableCommitError

    config = _table(tmp_path)
    write = _data_writer(tmp_path)
    catalog = open_catalog(config)
    commit_manifest(catalog, config, _COMMIT_SCHEMA, [write("m1", "m2")], "m1", "tok")
    with pytest.raises(TableCommitError, match="does not hold manifest m1 alone") as caught:
        commit_manifest(catalog, config, _COMMIT_SCHEMA, [write("m1")], "m1", "tok2")  # a replay of m1
    assert not isinstance(caught.value, TableCommitConflictError)
    assert not is_commit_conflict({"Error": "States.TaskFailed", "Cause": f"TableCommitError: {caught.value}"})


def test_a_replay_after_snapshot_expiry_still_replaces_its_rows(tmp_path):
    """Snapshot expiry (the stack's retention optimizer; here pyiceberg's ExpireSnapshots, which
    also clears the parent id of the oldest snapshot it keeps) cuts the history short: a replay
    of a manifest whose commit was expired must still find and replace its files, never append."""
    config = _table(tmp_path)
    write = _data_writer(tmp_path)
    catalog = open_catalog(config)
    for mid in ("m1", "m2", "m3"):
        commit_manifest(catalog, config, _COMMIT_SCHEMA, [write(mid)], mid, "tok")
    table = catalog.load_table(config.identifier)
    ordered = sorted(table.metadata.snapshots, key=lambda s: s.sequence_number)
    table.maintenance.expire_snapshots().by_ids([s.snapshot_id for s in ordered[:2]]).commit()  # m1's, m2's
    assert [s.parent_snapshot_id for s in catalog.load_table(config.identifier).metadata.snapshots] == [None]

    result = commit_manifest(catalog, config, _COMMIT_SCHEMA, [write("m1")], "m1", "replay")

    assert result.files_replaced == 1
    assert _rows_per_manifest(config) == {"m1": 3, "m2": 3, "m3": 3}
