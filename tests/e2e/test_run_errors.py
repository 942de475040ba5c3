"""The local run's setup errors: one clear line each, exit code 2, before anything starts."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.e2e.conftest import cli


def test_missing_input_dir(tmp_path: Path) -> None:
    proc = cli("run", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: input directory {tmp_path / 'nope'} does not exist"


def test_input_without_data_files(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("x")
    proc = cli("run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert "holds no file ending in .ndjson" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_no_java_for_the_glue_engine(tmp_path: Path, monkeypatch) -> None:
    # --engine glue needs Spark for every manifest: refused before anything starts. (auto and
    # lambda need Java only once a manifest goes to Glue: tests/functional/local/test_lazy_spark.py)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.ndjson").write_text("{}\n")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-such-jdk"))
    proc = cli("run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"), "--engine", "glue")
    assert proc.returncode == 2
    assert "Java 17 is required by Spark" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_port_in_use(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.ndjson").write_text("{}\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = cli("run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"), "--port", str(port))
    assert proc.returncode == 2
    assert f"error: port {port} on 127.0.0.1 is already in use" in proc.stderr


def test_unknown_compression(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.ndjson").write_text("{}\n")
    proc = cli("run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"), "--compression", "rar")
    assert proc.returncode == 2
    assert "unknown compression 'rar'" in proc.stderr
