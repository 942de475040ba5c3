"""``bench.table_commit`` at a tiny size (no Spark): the JSON it writes and the sanity of its figures."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import bench.run_all as run_all
import bench.table_commit as tc
from glue.table import TableConfig, commit_manifest, manifest_files, open_catalog

MANIFESTS, REPS = 20, 3
PER_MANIFEST_ROWS = tc.FILES_PER_MANIFEST * tc.ROWS_PER_FILE


def _stats_ok(figures: dict) -> None:
    assert figures["n"] == REPS == len(figures["runs_ms"])
    assert 0 < figures["median_ms"] <= figures["p95_ms"] == max(figures["runs_ms"])


def test_the_table_commit_bench_writes_sane_figures(tmp_path):
    out = tmp_path / "table_commit.json"
    assert tc.main(["--manifests", str(MANIFESTS), "--reps", str(REPS), "--no-spark", "--out", str(out)]) == 0
    result = json.loads(out.read_text())

    assert result["first_commit_creates_table_ms"] > 0
    _stats_ok(result["commit_at_start"])
    # Points at 20% and 100% of the manifests (the start already holds REPS + 1).
    points = result["points"]
    assert [p["table_manifests"] for p in points] == [REPS + 1, MANIFESTS]
    assert result["commit_new_on_full_table"] == points[-1]["new"]
    assert result["commit_replay_on_full_table"] == points[-1]["replay"]
    committed = REPS + 1
    for point in points:
        committed = max(committed, point["table_manifests"])
        for kind in ("new", "replay"):
            _stats_ok(point[kind])
        for part in ("load_table", "manifest_files"):
            _stats_ok(point["parts"][part])
        before, after = point["table_before"], point["table_after"]
        assert before["total_data_files"] == committed * tc.FILES_PER_MANIFEST
        committed += REPS  # the new manifests
        # Each replay replaced exactly one manifest's files, and the rows stayed the same.
        replay = point["replay"]
        assert replay["files_replaced"] == [tc.FILES_PER_MANIFEST] * REPS
        assert replay["rows_before"] == replay["rows_after"] == after["total_records"] == committed * PER_MANIFEST_ROWS
        assert after["total_data_files"] == committed * tc.FILES_PER_MANIFEST
        # One snapshot per commit: new manifests and replays.
        assert after["snapshots"] == before["snapshots"] + 2 * REPS
        assert 0 < before["metadata_json_bytes"] < after["metadata_json_bytes"]
    assert points[-1]["table_before"]["snapshots"] >= MANIFESTS
    assert result["bulk_builds"] == [
        {"manifests": MANIFESTS - (REPS + 1 + REPS), "seconds": result["bulk_builds"][0]["seconds"]}
    ]
    assert result["layout"]["data_file_bytes"] > 0
    assert result["conversion"] is None


def test_bulk_commit_lays_out_snapshots_as_commit_manifest_does():
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = TableConfig("sql", "bench", "events", str(work / "table"), f"sqlite:///{work}/catalog.db")
        catalog = open_catalog(config)
        writer = tc.Writer(tc._template(work), work / "table")
        schema = writer.template.schema
        for mid in ("a", "b"):
            commit_manifest(catalog, config, schema, writer.write(mid), mid, "tok")
        tc.bulk_commit(catalog, config, writer, ["c", "d"])
        commit_manifest(catalog, config, schema, writer.write("e"), "e", "tok")

        table = catalog.load_table(config.identifier)
        snapshots = table.snapshots()
        assert [s.summary["manifest_id"] for s in snapshots] == ["a", "b", "c", "d", "e"]
        assert [s.sequence_number for s in snapshots] == [1, 2, 3, 4, 5]
        assert [s.parent_snapshot_id for s in snapshots[1:]] == [s.snapshot_id for s in snapshots[:-1]]
        # The same summary keys and totals as commit_manifest's snapshots.
        assert set(snapshots[2].summary.additional_properties) == set(snapshots[1].summary.additional_properties)
        assert snapshots[2].summary.operation == snapshots[1].summary.operation
        assert [int(s.summary["total-records"]) for s in snapshots] == [PER_MANIFEST_ROWS * n for n in range(1, 6)]
        # One Iceberg manifest per manifest, newest first, each with its own snapshot and sequence number.
        manifests = table.current_snapshot().manifests(table.io)
        assert [m.added_snapshot_id for m in manifests] == [s.snapshot_id for s in reversed(snapshots)]
        assert [m.sequence_number for m in manifests] == [5, 4, 3, 2, 1]
        for mid in "abcde":
            assert len(manifest_files(table, mid)) == tc.FILES_PER_MANIFEST
        assert table.scan().to_arrow().num_rows == 5 * PER_MANIFEST_ROWS


def test_make_bench_runs_it():
    assert "table_commit" in run_all.discover()
