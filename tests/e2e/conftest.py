"""End-to-end fixtures: a small hostile-ish input directory and the CLI as a subprocess."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATE = "2026-11-20"
# Markers in one record and one bad line of small_input: the logs of a run over it must not carry them.
MARKER = "zq7-record-content-marker"
BAD_MARKER = "zq7-bad-line-marker"


def cli(*args: str, timeout: float = 600, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`ndjson-parquet ...` the way the README runs it (the console script of the venv);
    ``env_extra``: e.g. the operator credentials a kept runtime prints."""
    exe = Path(sys.executable).parent / "ndjson-parquet"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | (env_extra or {})
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env, check=False
    )


def _lines(*items: object) -> bytes:
    out = []
    for item in items:
        out.append(item if isinstance(item, str) else json.dumps(item, ensure_ascii=False))
    return ("\n".join(out) + "\n").encode("utf-8")


@pytest.fixture(scope="session")
def small_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five tracked files (one gz, one empty, one with a space and a plus in its name, one
    without a date folder) and an untracked .txt."""
    root = tmp_path_factory.mktemp("e2e-input")
    dated = root / DATE
    dated.mkdir()
    (dated / "orders.ndjson").write_bytes(
        _lines(
            {"id": 1, "user": {"name": "Zoë", "tags": ["a", "b"]}, "amount": 12.5},
            "{'id': 2}",  # single quotes: Spark would accept it, a strict parser must not
            "",
            {"id": 3, "user": {"name": "Ann", "tags": []}, "amount": 7},
            "[1, 2, 3]",  # valid JSON, not an object
            '{"id": 4, "secret": "' + BAD_MARKER + '"} trailing',
        )
    )
    (dated / "clicks.jsonl.gz").write_bytes(
        gzip.compress(b'\xef\xbb\xbf{"id": 10, "page": "/home"}\r\n{"id": 11, "page": "/buy"}\r\n{"id": 12,')
    )
    (dated / "empty.ndjson").write_bytes(b"")
    (dated / "a b+c.ndjson").write_bytes(_lines({"id": 20, "note": "space and plus in the key", "secret": MARKER}))
    (root / "undated.json").write_bytes(_lines({"id": 30}, {"id": 31, "nested": {"deep": {"x": [1, {"y": None}]}}}))
    (root / "README.txt").write_text("not data\n")
    return root


# What a strict reading of small_input yields: (relative key, line number) of rows / quarantine.
EXPECTED_ROWS = {
    (f"{DATE}/orders.ndjson", 1): 1,
    (f"{DATE}/orders.ndjson", 4): 3,
    (f"{DATE}/clicks.jsonl.gz", 1): 10,
    (f"{DATE}/clicks.jsonl.gz", 2): 11,
    (f"{DATE}/a b+c.ndjson", 1): 20,
    ("undated.json", 1): 30,
    ("undated.json", 2): 31,
}
EXPECTED_QUARANTINE = {
    (f"{DATE}/orders.ndjson", 2): "invalid_json",
    (f"{DATE}/orders.ndjson", 5): "not_an_object",
    (f"{DATE}/orders.ndjson", 6): "invalid_json",
    (f"{DATE}/clicks.jsonl.gz", 3): "invalid_json",
}
