"""Job planning and argument handling without Spark: task grouping, arguments, reconciliation."""

from __future__ import annotations

import pytest

from chalicelib.counts import FileCounts
from chalicelib.manifest import Manifest, ManifestFile
from chalicelib.workflow.errors import ReconciliationError
from glue.convert import TaskResult
from glue.job import JobArgs, JobArgsError, _reconcile, plan_tasks
from glue.ndjson_to_parquet import main, parse_args


def test_plan_tasks_sizes_by_bytes_and_keeps_cores_busy():
    sizes = [(f"f{i}", 10) for i in range(10)]
    assert plan_tasks(sizes, target_bytes=1000, min_tasks=2) == [
        ["f0", "f2", "f4", "f6", "f8"],
        ["f1", "f3", "f5", "f7", "f9"],
    ]
    assert len(plan_tasks(sizes, target_bytes=25, min_tasks=1)) == 4  # 100 bytes / 25
    assert len(plan_tasks(sizes[:1], target_bytes=1, min_tasks=8)) == 1  # never more tasks than files
    assert plan_tasks([], 10, 2) == []


def test_plan_tasks_balances_uneven_files():
    groups = plan_tasks([("big", 100), ("a", 40), ("b", 40), ("c", 20)], target_bytes=1000, min_tasks=2)
    assert sorted(groups) == [["a", "b", "c"], ["big"]]
    assert sorted(u for g in groups for u in g) == ["a", "b", "big", "c"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"compression": "lzo"}, "COMPRESSION_TYPE 'lzo' is not supported"),
        ({"target_file_mb": 0}, "TARGET_FILE_MB must be > 0"),
        ({"output_path": ""}, "--OUTPUT_PATH is required"),
    ],
)
def test_job_args_validation(kwargs, message):
    base = {"manifest_path": "m.json", "output_path": "o", "quarantine_path": "q"}
    with pytest.raises(JobArgsError, match=message):
        JobArgs(**{**base, **kwargs}).validate()


def test_parse_args_accepts_glue_style_pairs():
    argv = "--MANIFEST_PATH s3://b/m.json --OUTPUT_PATH o --QUARANTINE_PATH q --COMPRESSION_TYPE GZIP"
    args = parse_args([*argv.split(), "--TARGET_FILE_MB", "64", "--JOB_NAME", "convert", "--LOG_LEVEL", "warning"])
    assert args == JobArgs("s3://b/m.json", "o", "q", compression="gzip", schema_path=None, target_file_mb=64.0)


def test_parse_args_errors(capsys):
    with pytest.raises(JobArgsError, match="TARGET_FILE_MB must be a number"):
        parse_args(["--MANIFEST_PATH", "m", "--OUTPUT_PATH", "o", "--QUARANTINE_PATH", "q", "--TARGET_FILE_MB", "big"])
    with pytest.raises(JobArgsError):
        parse_args(["--MANIFEST_PATH", "m", "--OUTPUT_PATH", "o", "--QUARANTINE_PATH", "q", "--BOGUS", "1"])
    with pytest.raises(JobArgsError, match="LOG_LEVEL 'LOUD'"):
        parse_args(["--MANIFEST_PATH", "m", "--OUTPUT_PATH", "o", "--QUARANTINE_PATH", "q", "--LOG_LEVEL", "loud"])
    assert (
        main(["--MANIFEST_PATH", "m", "--OUTPUT_PATH", "o", "--QUARANTINE_PATH", "q", "--COMPRESSION_TYPE", "x"]) == 2
    )
    assert "COMPRESSION_TYPE 'x' is not supported" in capsys.readouterr().err


def _manifest(*uris: str) -> Manifest:
    return Manifest("m-1", "2024-05-01", tuple(ManifestFile(u, 1) for u in uris))


def test_reconcile_passes_when_every_line_is_accounted_for():
    results = [TaskResult(0, files=[FileCounts("a", lines=5, rows=3, quarantined=1, blank=1, bytes=9)])]
    assert _reconcile(_manifest("a"), results) == [
        {"uri": "a", "lines": 5, "rows": 3, "quarantined": 1, "blank": 1, "bytes": 9}
    ]


def test_reconcile_fails_loudly_when_counts_do_not_add_up():
    results = [TaskResult(0, files=[FileCounts("a", lines=5, rows=3, quarantined=1, blank=0)])]
    with pytest.raises(ReconciliationError, match="a: lines=5 rows=3 quarantined=1 blank=0"):
        _reconcile(_manifest("a"), results)


def test_reconcile_fails_when_a_file_was_not_converted_or_converted_twice():
    one = FileCounts("a", lines=1, rows=1)
    with pytest.raises(ReconciliationError, match="differ"):
        _reconcile(_manifest("a", "b"), [TaskResult(0, files=[one])])
    with pytest.raises(ReconciliationError, match="differ"):
        _reconcile(_manifest("a"), [TaskResult(0, files=[one]), TaskResult(1, files=[one])])
