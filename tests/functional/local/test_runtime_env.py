"""An in-process local run leaves the process environment as it found it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ndjson_parquet.local.runtime import LocalPipeline, RunOptions

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def test_in_process_run_restores_environment(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.ndjson").write_text('{"a": 1}\n{"a": 2}\nnot json\n')
    before = dict(os.environ)
    report = LocalPipeline(
        RunOptions(input_dir=tmp_path / "in", output_dir=tmp_path / "out", idle_timeout_seconds=120)
    ).run()
    assert report.reconciled, report.problems
    assert (report.rows, report.quarantined) == (2, 1)
    assert dict(os.environ) == before
    assert "TABLE_NAME" not in os.environ or os.environ["TABLE_NAME"] == before.get("TABLE_NAME")
