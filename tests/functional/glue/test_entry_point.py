"""``python glue/ndjson_to_parquet.py`` as Glue would run it: a fresh process and JVM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "glue" / "ndjson_to_parquet.py"


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_bad_compression_fails_before_spark_starts(tmp_path):
    proc = _run(
        "--MANIFEST_PATH",
        "m.json",
        "--OUTPUT_PATH",
        "o",
        "--QUARANTINE_PATH",
        "q",
        "--COMPRESSION_TYPE",
        "lzo",
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "--COMPRESSION_TYPE 'lzo' is not supported" in proc.stderr
    assert "SparkContext" not in proc.stderr and "WARN" not in proc.stderr


def test_missing_required_argument(tmp_path):
    proc = _run("--MANIFEST_PATH", "m.json", "--OUTPUT_PATH", "o", cwd=tmp_path)
    assert proc.returncode == 2
    assert "--QUARANTINE_PATH" in proc.stderr


@pytest.mark.slow
@pytest.mark.spark
def test_script_converts_a_manifest_in_a_fresh_process(tmp_path):
    src = tmp_path / "in.ndjson"
    src.write_text('{"a": {"b": 1}}\n{oops\n')
    manifest = tmp_path / "m.json"
    manifest.write_text(
        json.dumps({"manifest_id": "m-cli", "date_prefix": "2024-05-03", "files": [{"uri": str(src), "size": 1}]})
    )
    proc = _run(
        "--MANIFEST_PATH",
        str(manifest),
        "--OUTPUT_PATH",
        "out",
        "--QUARANTINE_PATH",
        "q",
        "--COMPRESSION_TYPE",
        "ZSTD",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (printed["lines"], printed["rows"], printed["quarantined"]) == (2, 1, 1)
    summary = json.loads((tmp_path / "out" / "_runs" / "m-cli.json").read_text())
    assert summary["compression"] == "zstd"
    assert list((tmp_path / "out" / "dt=2024-05-03" / "manifest=m-cli").glob("part-*.parquet"))


@pytest.mark.slow
@pytest.mark.spark
def test_script_exits_1_naming_a_missing_object(tmp_path):
    manifest = tmp_path / "m.json"
    manifest.write_text(
        json.dumps(
            {
                "manifest_id": "m-miss",
                "date_prefix": "2024-05-03",
                "files": [{"uri": str(tmp_path / "absent.ndjson"), "size": 1}],
            }
        )
    )
    proc = _run("--MANIFEST_PATH", str(manifest), "--OUTPUT_PATH", "out", "--QUARANTINE_PATH", "q", cwd=tmp_path)
    assert proc.returncode == 1
    assert "absent.ndjson" in proc.stderr
    assert not (tmp_path / "out").exists()
