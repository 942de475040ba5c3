"""One local SparkSession for every Glue-job test (local[2], AQE on, UI off, few shuffle partitions),
and helpers that write input files and manifests the way the control plane does."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from chalicelib.manifest import Manifest, ManifestFile


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers need the venv's pyarrow
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("glue-job-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.adaptive.enabled", "true")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
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
