"""The Iceberg table commit's cost per manifest on a table that already holds many manifests, next to
one 200-file manifest's conversion, in one run.

The table: pyiceberg's SQL catalog on sqlite in a temp dir (``glue/table.py``). A manifest is
FILES_PER_MANIFEST Parquet files of ROWS_PER_FILE rows in the job's column layout (data columns,
``_rescued_data``, ``_source_file``, ``_source_line``, ``_manifest_id``): the project's generated
events converted by ``glue.convert.convert_bytes`` (the job's own types), written with pyarrow
under ``<table>/data/dt=<date>/<manifest>-<token>/``.

The first REPS + 1 manifests go through ``commit_manifest`` (the commit at the start). The table
then grows to each measuring point (POINTS x MANIFESTS, default 100 and 500 manifests) by
``bulk_commit``: one catalog commit of many snapshots laid out as ``commit_manifest`` lays them out
(committing each would take O(n^2): the cost measured here grows with the table). At each point,
REPS times each, median and p95 (nearest rank: of 5 runs, the slowest): ``commit_manifest`` of a
new manifest; of a replay of an existing one (it must replace exactly that manifest's files and
leave the row count unchanged, else the bench fails); and, to tell where the time goes,
``catalog.load_table`` and ``manifest_files`` (finding one manifest's files) alone. Also: the
number of snapshots and of Iceberg manifests, the metadata JSON's size (every commit writes a new
one) and the manifest list's.

Then, unless ``--no-spark``, the conversion of one manifest of CONVERT_FILES generated files of
CONVERT_FILE_MB MB (2^20 bytes; 0.1% bad lines, seed 17) through ``run_job`` with the table output
on the same (full) table, in one local[2] SparkSession: a first run (JVM warm-up, and the schema
change the first converted manifest may bring), then CONVERT_ROUNDS new manifest(s) and one replay,
each reporting ``commit_s`` (quarantine folder move + table commit) as a share of ``total_s``.

``--expire-keep K`` (off by default): after the last point, expire all but the newest K snapshots
(pyiceberg's ExpireSnapshots, what the stack's retention optimizer does) and measure the point
again: commit cost on a table whose history was cut (``glue/table.py`` then looks up a new
manifest's earlier files too, as for a replay). ``--manifests 1440`` is a day of one-minute commits.

``python -m bench.table_commit [--manifests N] [--reps R] [--expire-keep K] [--no-spark] [--out PATH]``; ``make
bench`` runs the defaults. Results: ``bench/results/table_commit.json``. Figures are for reading:
only the correctness checks (replaced files, row counts) fail the bench.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "table_commit.json"
MANIFESTS, REPS = 500, 5
FILES_PER_MANIFEST, ROWS_PER_FILE = 2, 100
CONVERT_FILES, CONVERT_FILE_MB, CONVERT_ROUNDS, SEED = 200, 0.25, 1, 17
DATE = "2024-05-01"
# Measuring points: table sizes as fractions of MANIFESTS.
POINTS = (0.2, 1.0)


def _stats(seconds: list[float]) -> dict[str, Any]:
    """Median and p95 (nearest rank) in milliseconds, with the runs."""
    ordered = sorted(seconds)
    p95 = ordered[max(0, -(-95 * len(ordered) // 100) - 1)]
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(p95 * 1000, 1),
        "runs_ms": [round(s * 1000, 1) for s in seconds],
    }


def _template(work: Path) -> Any:
    """ROWS_PER_FILE generated events in the job's layout and types (``convert_bytes``)."""
    from glue.convert import convert_bytes
    from ndjson_parquet.sample_data import generate

    made = generate(work / "template", 1, 0.1, 0.0, SEED)
    table, _, _ = convert_bytes(str(made[0].path), made[0].path.read_bytes(), None, "template")
    if table.num_rows < ROWS_PER_FILE:
        raise RuntimeError(f"template: {table.num_rows} rows, need {ROWS_PER_FILE}")
    return table.slice(0, ROWS_PER_FILE)


class Writer:
    """Writes one manifest's data files where the job would, from the template rows."""

    def __init__(self, template: Any, location: Path) -> None:
        import pyarrow as pa

        self.template = template
        self.location = location
        self.zeros = pa.array([0] * template.num_rows, pa.int32())
        self.file_bytes = 0

    def write(self, manifest_id: str) -> list[str]:
        import pyarrow as pa

        from glue.convert import parquet_bytes
        from glue.rescue import MANIFEST_ID, SOURCE_FILE

        folder = self.location / "data" / f"dt={DATE}" / f"{manifest_id}-{uuid.uuid4().hex[:12]}"
        folder.mkdir(parents=True)
        paths = []
        for j in range(FILES_PER_MANIFEST):
            table = self.template
            for name, value in ((MANIFEST_ID, manifest_id), (SOURCE_FILE, f"s3://in/{manifest_id}/f{j}.ndjson")):
                i = table.schema.get_field_index(name)
                table = table.set_column(i, table.schema.field(i), pa.array([value], pa.string()).take(self.zeros))
            path = folder / f"part-{j:05d}.parquet"
            self.file_bytes = path.write_bytes(parquet_bytes(table, "snappy"))
            paths.append(str(path))
        return paths


def _metadata(table: Any) -> dict[str, Any]:
    snapshot = table.current_snapshot()
    summary = snapshot.summary if snapshot else None
    return {
        "snapshots": len(table.snapshots()),
        "iceberg_manifests_in_current_snapshot": len(snapshot.manifests(table.io)) if snapshot else 0,
        "total_data_files": int(summary["total-data-files"]) if summary else 0,
        "total_records": int(summary["total-records"]) if summary else 0,
        # Every commit writes a whole new metadata JSON of about this size.
        "metadata_json_bytes": Path(table.metadata_location.removeprefix("file://")).stat().st_size,
        "manifest_list_bytes": Path(snapshot.manifest_list.removeprefix("file://")).stat().st_size if snapshot else 0,
    }


def bulk_commit(catalog: Any, config: Any, writer: Writer, manifest_ids: list[str]) -> None:
    """Commit many manifests in ONE catalog commit, each as its own snapshot laid out as
    ``commit_manifest`` lays out a first commit of a manifest: an append snapshot (with the same
    summary: totals, ``manifest_id``, ``run_token``) whose manifest list holds one new Iceberg
    manifest of the manifest's files, added first, then every manifest of its parent. It skips
    the per-commit costs measured here (reading every manifest, rewriting the metadata JSON), so
    a table of hundreds of manifests builds in seconds, not in the O(n^2) of committing each."""
    from pyiceberg.io.pyarrow import parquet_file_to_data_file
    from pyiceberg.manifest import ManifestEntry, ManifestEntryStatus, write_manifest, write_manifest_list
    from pyiceberg.table import TableProperties
    from pyiceberg.table.refs import MAIN_BRANCH, SnapshotRefType
    from pyiceberg.table.snapshots import (
        Operation,
        Snapshot,
        SnapshotSummaryCollector,
        Summary,
        update_snapshot_summaries,
    )
    from pyiceberg.table.update import AddSnapshotUpdate, AssertRefSnapshotId, SetSnapshotRefUpdate

    table = catalog.load_table(config.identifier)
    meta, io = table.metadata, table.io
    schema, spec = meta.schema(), meta.spec()
    codec = meta.properties.get(TableProperties.WRITE_AVRO_COMPRESSION, TableProperties.WRITE_AVRO_COMPRESSION_DEFAULT)
    parent = meta.current_snapshot()
    if parent is None:
        raise RuntimeError("bulk_commit extends a table that has a snapshot")
    manifests = parent.manifests(io)
    previous, parent_id, sequence = parent.summary, parent.snapshot_id, meta.last_sequence_number
    used = {s.snapshot_id for s in meta.snapshots}
    updates: list[Any] = []
    for mid in manifest_ids:
        snapshot_id = meta.new_snapshot_id()
        while snapshot_id in used:
            snapshot_id = meta.new_snapshot_id()
        used.add(snapshot_id)
        sequence += 1
        commit_uuid = uuid.uuid4()
        files = [parquet_file_to_data_file(io, meta, p) for p in writer.write(mid)]
        manifest_path = table.location_provider().new_metadata_location(f"{commit_uuid}-m0.avro")
        with write_manifest(
            format_version=meta.format_version,
            spec=spec,
            schema=schema,
            output_file=io.new_output(manifest_path),
            snapshot_id=snapshot_id,
            avro_compression=codec,
        ) as manifest_writer:
            for f in files:
                entry = ManifestEntry.from_args(
                    status=ManifestEntryStatus.ADDED,
                    snapshot_id=snapshot_id,
                    sequence_number=None,
                    file_sequence_number=None,
                    data_file=f,
                )
                manifest_writer.add(entry)
        collector = SnapshotSummaryCollector()
        for f in files:
            collector.add_file(data_file=f, partition_spec=spec, schema=schema)
        properties = {"manifest_id": mid, "run_token": commit_uuid.hex[:12]}
        summary = update_snapshot_summaries(
            Summary(operation=Operation.APPEND, **collector.build(), **properties), previous
        )
        list_path = table.location_provider().new_metadata_location(f"snap-{snapshot_id}-0-{commit_uuid}.avro")
        with write_manifest_list(
            format_version=meta.format_version,
            output_file=io.new_output(list_path),
            snapshot_id=snapshot_id,
            parent_snapshot_id=parent_id,
            sequence_number=sequence,
            avro_compression=codec,
        ) as list_writer:
            manifests = [list_writer.prepare_manifest(manifest_writer.to_manifest_file()), *manifests]
            list_writer.add_manifests(manifests)
        snapshot = Snapshot(
            snapshot_id=snapshot_id,
            parent_snapshot_id=parent_id,
            manifest_list=list_path,
            sequence_number=sequence,
            summary=summary,
            schema_id=meta.current_schema_id,
        )
        updates.append(AddSnapshotUpdate(snapshot=snapshot))
        updates.append(
            SetSnapshotRefUpdate(
                snapshot_id=snapshot_id,
                parent_snapshot_id=parent_id,
                ref_name=MAIN_BRANCH,
                type=SnapshotRefType.BRANCH,
            )
        )
        previous, parent_id = summary, snapshot_id
    requirement = AssertRefSnapshotId(snapshot_id=parent.snapshot_id, ref=MAIN_BRANCH)
    catalog.commit_table(table, requirements=(requirement,), updates=tuple(updates))


def _point(catalog: Any, config: Any, writer: Writer, count: int, reps: int, shift: int) -> tuple[dict[str, Any], int]:
    """REPS commits of new manifests and REPS replays on a table of ``count`` manifests."""
    from glue.table import commit_manifest, manifest_files

    schema = writer.template.schema

    def commit(mid: str, paths: list[str]) -> tuple[float, Any]:
        started = time.perf_counter()
        result = commit_manifest(catalog, config, schema, paths, mid, uuid.uuid4().hex[:12])
        return time.perf_counter() - started, result

    before = _metadata(catalog.load_table(config.identifier))
    # What a commit's parts cost alone: loading the table, finding one manifest's files.
    load_s, plan_s = [], []
    for k in range(reps):
        t = time.perf_counter()
        table = catalog.load_table(config.identifier)
        load_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        found = manifest_files(table, _mid((k * count) // reps))
        plan_s.append(time.perf_counter() - t)
        if len(found) != FILES_PER_MANIFEST:
            raise RuntimeError(f"manifest_files found {len(found)} files of {_mid((k * count) // reps)}")

    new_s = []
    for k in range(reps):
        seconds, result = commit(_mid(count + k), writer.write(_mid(count + k)))
        if result.files_replaced != 0 or result.files_added != FILES_PER_MANIFEST:
            raise RuntimeError(f"new manifest {_mid(count + k)}: {result}")
        new_s.append(seconds)
    count += reps
    rows_before = _metadata(catalog.load_table(config.identifier))["total_records"]

    replay_s, replaced = [], []
    for k in range(reps):
        mid = _mid(min(count - 1, (k * count) // reps + shift))
        paths = writer.write(mid)
        seconds, result = commit(mid, paths)
        now = sorted(
            f.file_path.removeprefix("file://") for f in manifest_files(catalog.load_table(config.identifier), mid)
        )
        if result.files_replaced != FILES_PER_MANIFEST or now != sorted(paths):
            raise RuntimeError(f"replay of {mid} replaced {result.files_replaced} files; its files now {now}")
        replay_s.append(seconds)
        replaced.append(result.files_replaced)
    after = _metadata(catalog.load_table(config.identifier))
    if after["total_records"] != rows_before:
        raise RuntimeError(f"replays changed the row count: {rows_before} -> {after['total_records']}")
    point = {
        "table_manifests": before["total_data_files"] // FILES_PER_MANIFEST,
        "new": {"table_manifests": f"{count - reps}-{count - 1}", **_stats(new_s)},
        "replay": {
            "table_manifests": count,
            "files_replaced": replaced,
            "rows_before": rows_before,
            "rows_after": after["total_records"],
            **_stats(replay_s),
        },
        "parts": {"load_table": _stats(load_s), "manifest_files": _stats(plan_s)},
        "table_before": before,
        "table_after": after,
    }
    return point, count


def _mid(i: int) -> str:
    return f"base-{i:05d}"


def expire_to(catalog: Any, config: Any, keep: int) -> int:
    """Expire every snapshot but the newest ``keep`` (metadata only, as a retention run does)."""
    table = catalog.load_table(config.identifier)
    ordered = sorted(table.metadata.snapshots, key=lambda s: (s.timestamp_ms, s.sequence_number))
    old = [s.snapshot_id for s in ordered[: max(0, len(ordered) - keep)]]
    if old:
        table.maintenance.expire_snapshots().by_ids(old).commit()
    return len(old)


def _commit_bench(work: Path, manifests: int, reps: int, expire_keep: int = 0) -> tuple[dict[str, Any], Any]:
    from glue.table import TableConfig, commit_manifest, open_catalog

    location = work / "table"
    config = TableConfig("sql", "bench", "events", str(location), f"sqlite:///{work}/catalog.db")
    catalog = open_catalog(config)
    writer = Writer(_template(work), location)

    # The start: every commit through commit_manifest (the first one creates the table).
    start_s = []
    for i in range(reps + 1):
        started = time.perf_counter()
        commit_manifest(catalog, config, writer.template.schema, writer.write(_mid(i)), _mid(i), "start")
        start_s.append(time.perf_counter() - started)
    count = reps + 1
    points, bulk = [], []
    for shift, target in enumerate(sorted({max(count, int(manifests * f)) for f in POINTS})):
        if target > count:
            started = time.perf_counter()
            bulk_commit(catalog, config, writer, [_mid(i) for i in range(count, target)])
            bulk.append({"manifests": target - count, "seconds": round(time.perf_counter() - started, 2)})
            count = target
        point, count = _point(catalog, config, writer, count, reps, shift)
        points.append(point)
        new, replay = point["new"], point["replay"]
        print(
            f"  table of {point['table_manifests']} manifests: new {new['median_ms']} ms (p95 {new['p95_ms']}), "
            f"replay {replay['median_ms']} ms (p95 {replay['p95_ms']})",
            flush=True,
        )
    full = points[-1]
    expired: dict[str, Any] | None = None
    if expire_keep:
        started = time.perf_counter()
        removed = expire_to(catalog, config, expire_keep)
        expire_s = round(time.perf_counter() - started, 2)
        point, count = _point(catalog, config, writer, count, reps, len(points))
        expired = {"kept": expire_keep, "expired": removed, "expire_seconds": expire_s, **point}
        print(
            f"  after expiring {removed} snapshots (kept {expire_keep}): new {point['new']['median_ms']} ms "
            f"(p95 {point['new']['p95_ms']}), replay {point['replay']['median_ms']} ms",
            flush=True,
        )
    result = {
        "layout": {
            "files_per_manifest": FILES_PER_MANIFEST,
            "rows_per_file": ROWS_PER_FILE,
            "columns": len(writer.template.schema),
            "data_file_bytes": writer.file_bytes,
        },
        "first_commit_creates_table_ms": round(start_s[0] * 1000, 1),
        "commit_at_start": {"table_manifests": f"1-{reps}", **_stats(start_s[1:])},
        "commit_new_on_full_table": full["new"],
        "commit_replay_on_full_table": full["replay"],
        "points": points,
        "bulk_builds": bulk,
        "table_final": full["table_after"],
    }
    if expired is not None:
        result["after_expiry"] = expired
    return result, config


def _conversion(work: Path, config: Any, files: int, file_mb: float, rounds: int) -> dict[str, Any]:
    from chalicelib.manifest import Manifest, ManifestFile
    from glue.job import JobArgs, run_job
    from glue.spark import local_session
    from ndjson_parquet.sample_data import generate

    t = time.perf_counter()
    made = generate(work / "input", files, file_mb, 0.001, SEED)
    print(f"  generated {len(made)} files in {time.perf_counter() - t:.1f}s", flush=True)
    uris = tuple(ManifestFile(uri=str(f.path), size=f.size) for f in made)

    def manifest(mid: str) -> Path:
        path = work / f"{mid}.json"
        path.write_text(Manifest(mid, DATE, uris).to_json())
        return path

    spark = local_session("local[2]", "bench-table-commit", {"spark.sql.shuffle.partitions": "4"}, log_level="ERROR")
    runs = []
    try:
        plan = [("first", "convert-first")] + [("new", f"convert-{i:04d}") for i in range(rounds)]
        plan.append(("replay", "convert-0000"))
        for kind, mid in plan:
            args = JobArgs(str(manifest(mid)), str(work / "job-out"), str(work / "job-q"), table=config)
            summary = run_job(spark, args)
            timings = summary.timings
            runs.append(
                {
                    "kind": kind,
                    "manifest_id": mid,
                    "total_s": timings["total_s"],
                    "commit_s": timings["commit_s"],
                    "commit_share": round(timings["commit_s"] / timings["total_s"], 4),
                    "timings": timings,
                    "data_files": summary.data_files,
                    "rows": summary.totals["rows"],
                    "schema_changes": summary.schema_changes,
                }
            )
            print(f"  {kind} {mid}: total {timings['total_s']:.2f} s, commit {timings['commit_s']:.3f} s", flush=True)
    finally:
        spark.stop()
    measured = [r for r in runs if r["kind"] != "first"]
    return {
        "input": {
            "files": len(made),
            "file_mb": file_mb,
            "input_mb": round(sum(f.size for f in made) / 1e6, 2),
            "lines": sum(f.lines for f in made),
            "seed": SEED,
        },
        "runs": runs,
        "measured_runs": "the runs after the first (new manifests and a replay)",
        "median_total_s": round(statistics.median(r["total_s"] for r in measured), 3),
        "median_commit_s": round(statistics.median(r["commit_s"] for r in measured), 3),
        "median_commit_share": round(statistics.median(r["commit_share"] for r in measured), 4),
    }


def run(
    manifests: int, reps: int, spark: bool, files: int, file_mb: float, rounds: int, expire_keep: int = 0
) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    import pyiceberg

    load_start = [round(x, 2) for x in os.getloadavg()]
    work = Path(tempfile.mkdtemp(prefix="bench-table-"))
    try:
        started = time.perf_counter()
        commits, config = _commit_bench(work, manifests, reps, expire_keep)
        conversion = _conversion(work, config, files, file_mb, rounds) if spark else None
        return {
            "what": "Iceberg commit_manifest cost per manifest on a table holding many manifests (SQL catalog, "
            "sqlite, local files), next to a 200-file manifest's conversion with the table output, one run",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            # The machine is shared: the load average (1, 5, 15 min) at the start and the end of the run.
            "load_average": {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]},
            "pyiceberg": pyiceberg.__version__,
            "reps": reps,
            **commits,
            "conversion": conversion,
            "seconds": round(time.perf_counter() - started, 1),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.table_commit", description=__doc__.split("\n")[0])
    parser.add_argument("--manifests", type=int, default=MANIFESTS, help="manifests committed before measuring")
    parser.add_argument("--reps", type=int, default=REPS, help="repetitions of each measured commit")
    parser.add_argument("--no-spark", action="store_true", help="skip the conversion through run_job")
    parser.add_argument("--convert-files", type=int, default=CONVERT_FILES)
    parser.add_argument("--convert-file-mb", type=float, default=CONVERT_FILE_MB)
    parser.add_argument("--expire-keep", type=int, default=0, help="then expire all but K snapshots, measure again")
    parser.add_argument("--out", type=Path, default=RESULT, help="where the JSON goes")
    args = parser.parse_args([] if argv is None else argv)
    if args.manifests < 2 or args.reps < 1:
        parser.error("--manifests must be >= 2 and --reps >= 1")
    result = run(
        args.manifests,
        args.reps,
        not args.no_spark,
        args.convert_files,
        args.convert_file_mb,
        CONVERT_ROUNDS,
        args.expire_keep,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name in ("commit_at_start", "commit_new_on_full_table", "commit_replay_on_full_table"):
        r = result[name]
        print(f"  {name:28} table {r['table_manifests']}: median {r['median_ms']} ms, p95 {r['p95_ms']} ms")
    if result["conversion"]:
        c = result["conversion"]
        print(f"  conversion: median total {c['median_total_s']} s, commit {c['median_commit_s']} s")
        print(f"  commit share {c['median_commit_share']:.1%}")
    print(f"  written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
