"""One local SparkSession for every Glue-job test (local[2], AQE on, UI off, few shuffle partitions),
and helpers that write input files and manifests the way the control plane does."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from chalicelib.manifest import Manifest, ManifestFile


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from glue.spark import local_session, session_running

    # A session someone else started (the chaos suite's runtime, an earlier module) is reused and
    # left running: only the one started here is stopped, so no test depends on file order.
    started_here = not session_running()
    session = local_session(
        "local[2]",
        "glue-job-tests",
        {"spark.sql.shuffle.partitions": "2", "spark.driver.memory": "1g"},
        log_level="ERROR",
    )
    yield session
    if started_here:
        session.stop()


def write_manifest(path: Path, manifest_id: str, uris: list[str], date: str = "2024-05-01") -> Path:
    files = tuple(ManifestFile(uri=u, size=Path(u).stat().st_size if Path(u).exists() else 0) for u in uris)
    path.write_text(Manifest(manifest_id=manifest_id, date_prefix=date, files=files).to_json())
    return path


@pytest.fixture
def make_manifest(tmp_path: Path) -> Callable[..., Path]:
    def make(manifest_id: str, uris: list[str], date: str = "2024-05-01") -> Path:
        return write_manifest(tmp_path / f"{manifest_id}.json", manifest_id, uris, date)

    return make


def read_rows(folder: Path) -> list[dict]:
    """All rows of a manifest's Parquet folder, ordered by provenance."""
    rows: list[dict] = []
    for part in sorted(folder.glob("part-*.parquet")):
        rows.extend(pq.ParquetFile(part).read().to_pylist())
    return sorted(rows, key=lambda r: (r["_source_file"], r["_source_line"]))


def read_quarantine(folder: Path) -> list[dict]:
    recs = [
        json.loads(line)
        for part in sorted(folder.glob("part-*.jsonl"))
        for line in part.read_text("utf-8").split("\n")
        if line
    ]
    return sorted(recs, key=lambda r: (r["source_file"], r["line_number"]))
