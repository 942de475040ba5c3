"""The converter handler's pure parts: workers from the function's memory, the scratch folder emptied,
the environment read into one Settings (each missing or invalid variable named), the deadline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from converter import handler as h
from glue.executors import DEADLINE_MARGIN_S
from glue.table import TableConfig

BASE = {"OUTPUT_PATH": "s3://lake/out", "QUARANTINE_PATH": "s3://lake/q", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3538"}
TABLE = {"TABLE_NAME": "events", "TABLE_NAMESPACE": "analytics", "TABLE_LOCATION": "s3://lake/table"}


@pytest.mark.parametrize(
    ("memory_mb", "workers"),
    [
        (128, 1),  # Lambda's least memory: still one worker
        (1024, 1),
        (1769, 1),  # one vCPU
        (2048, 1),  # 1.16 vCPUs
        (2654, 2),  # 1.5 vCPUs rounds up
        (3008, 2),
        (3538, 2),  # two vCPUs
        (5307, 3),
        (8845, 5),
        (10240, 6),  # Lambda's most memory: 5.8 vCPUs, at most 6
        (50_000, 6),
    ],
)
def test_workers_follow_the_vcpu_share_of_the_memory(memory_mb: int, workers: int) -> None:
    assert h.workers_for_memory(memory_mb) == workers


def test_workers_never_come_from_the_host_cpu_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert h.Settings.from_env({**BASE, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1769"}).workers == 1


def test_zero_memory_is_refused() -> None:
    with pytest.raises(ValueError, match="memory"):
        h.workers_for_memory(0)


def test_scratch_is_emptied_but_kept(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    (scratch / "pymp-dead" / "deep").mkdir(parents=True)
    (scratch / "pymp-dead" / "deep" / "part.parquet.tmp").write_bytes(b"x" * 1000)
    (scratch / ".hidden.tmp").write_bytes(b"y" * 24)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("kept")
    (scratch / "link").symlink_to(outside, target_is_directory=True)

    removed, freed = h.clear_scratch(scratch)

    assert scratch.is_dir() and list(scratch.iterdir()) == []
    assert (removed, freed) == (3, 1024)
    assert (outside / "keep.txt").read_text() == "kept"  # a link is removed, never followed


def test_scratch_that_does_not_exist_is_created(tmp_path: Path) -> None:
    assert h.clear_scratch(tmp_path / "new") == (0, 0)
    assert (tmp_path / "new").is_dir()


def test_an_entry_that_cannot_be_removed_is_left_and_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    (scratch / "busy.tmp").write_text("x")
    (scratch / "gone.tmp").write_text("x")
    unlink = Path.unlink

    def refuse_busy(self: Path, missing_ok: bool = False) -> None:
        if self.name == "busy.tmp":
            raise PermissionError(1, "Operation not permitted", str(self))
        unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse_busy)
    removed, _ = h.clear_scratch(scratch)
    assert removed == 1 and [p.name for p in scratch.iterdir()] == ["busy.tmp"]
    assert "cannot remove" in caplog.text and "busy.tmp" in caplog.text


def test_settings_from_the_environment() -> None:
    env = {
        **BASE,
        **TABLE,
        "COMPRESSION_TYPE": "ZSTD",
        "SCHEMA_PATH": "s3://lake/schema.ddl",
        "TARGET_FILE_MB": "64",
        "SCHEMA_MODE": "rescue",
        "DEADLINE_MARGIN_SECONDS": "12.5",
        "LOG_LEVEL": "debug",
    }
    s = h.Settings.from_env(env)
    assert (s.output_path, s.quarantine_path, s.compression, s.schema_path) == (
        "s3://lake/out",
        "s3://lake/q",
        "zstd",
        "s3://lake/schema.ddl",
    )
    assert (s.target_file_mb, s.memory_mb, s.workers, s.deadline_margin_s, s.log_level) == (
        64.0,
        3538,
        2,
        12.5,
        "DEBUG",
    )
    assert s.table == TableConfig("glue", "analytics", "events", "s3://lake/table", None, "rescue")
    assert s.scratch_dir is None  # not in Lambda, no CONVERTER_SCRATCH_DIR: nothing is emptied
    args = s.job_args("s3://lake/manifests/m1.json")
    assert (args.manifest_path, args.table, args.compression) == ("s3://lake/manifests/m1.json", s.table, "zstd")


def test_defaults() -> None:
    s = h.Settings.from_env(BASE)
    assert (s.compression, s.schema_path, s.target_file_mb, s.table) == ("snappy", None, 128.0, None)
    assert (s.deadline_margin_s, s.log_level) == (DEADLINE_MARGIN_S, "INFO")


def test_scratch_is_tmp_in_lambda_or_the_named_folder(tmp_path: Path) -> None:
    assert h.Settings.from_env({**BASE, "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9001"}).scratch_dir == Path("/tmp")
    named = h.Settings.from_env({**BASE, "CONVERTER_SCRATCH_DIR": str(tmp_path)})
    assert named.scratch_dir == tmp_path


def test_an_sql_catalog_needs_its_uri() -> None:
    s = h.Settings.from_env({**BASE, **TABLE, "TABLE_CATALOG": "sql", "CATALOG_URI": "sqlite:////x/c.db"})
    assert (s.table.catalog, s.table.uri) == ("sql", "sqlite:////x/c.db")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"OUTPUT_PATH": None}, "OUTPUT_PATH is required"),
        ({"QUARANTINE_PATH": "  "}, "QUARANTINE_PATH is required"),
        ({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": None}, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE is required"),
        ({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE must be a number, got 'lots'"),
        ({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "64"}, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE must be >= 128"),
        ({"COMPRESSION_TYPE": "lzma"}, "COMPRESSION_TYPE 'lzma' is not one of"),
        ({"TARGET_FILE_MB": "0"}, "TARGET_FILE_MB must be > 0"),
        ({"TARGET_FILE_MB": "nan"}, "TARGET_FILE_MB must be > 0"),
        ({"TARGET_FILE_MB": "big"}, "TARGET_FILE_MB must be a number"),
        ({"DEADLINE_MARGIN_SECONDS": "-1"}, "DEADLINE_MARGIN_SECONDS must be >= 0"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL 'LOUD' is not one of"),
        ({"CONVERTER_SCRATCH_DIR": "tmp"}, "CONVERTER_SCRATCH_DIR must be an absolute folder"),
        ({"CONVERTER_SCRATCH_DIR": "/"}, "CONVERTER_SCRATCH_DIR must be an absolute folder"),
        ({**TABLE, "TABLE_CATALOG": "hive"}, "TABLE_CATALOG 'hive' is not one of"),
        ({**TABLE, "TABLE_NAMESPACE": None}, "TABLE_NAMESPACE is required when TABLE_NAME is set"),
        ({**TABLE, "TABLE_LOCATION": ""}, "TABLE_LOCATION is required when TABLE_NAME is set"),
        ({**TABLE, "TABLE_CATALOG": "sql"}, "CATALOG_URI is required when TABLE_CATALOG is sql"),
        ({**TABLE, "SCHEMA_MODE": "anything"}, "SCHEMA_MODE"),
        ({"TABLE_LOCATION": "s3://lake/table"}, "TABLE_LOCATION is set but TABLE_NAME is not"),
    ],
)
def test_a_missing_or_invalid_variable_is_one_error_naming_it(change: dict, named: str) -> None:
    env = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    with pytest.raises(h.ConverterConfigError, match=named.replace("(", r"\(")) as info:
        h.Settings.from_env(env)
    assert "environment variable" in str(info.value)


class _Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_the_deadline_is_lambdas_on_the_monotonic_clock() -> None:
    assert h.deadline_from(_Context(90_000), now=1000.0) == 1090.0
    assert h.deadline_from(None, now=1000.0) is None


def test_the_settings_are_read_once_per_container(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h, "_settings", None)
    monkeypatch.setattr(os, "environ", {**BASE})
    first = h.settings()
    os.environ["OUTPUT_PATH"] = "s3://elsewhere"
    assert h.settings() is first and first.output_path == "s3://lake/out"


def test_an_event_without_a_manifest_uri_is_refused_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(h, "_settings", h.Settings.from_env(BASE))
    monkeypatch.setattr(h, "_executor", None)
    with pytest.raises(h.ConverterEventError, match="manifest_uri"):
        h.handler({"manifest_id": "m1"}, _Context(60_000))
    assert h._executor is None  # no worker was started
