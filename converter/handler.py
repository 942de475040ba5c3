"""The converter Lambda function's handler: ``converter.handler.handler``.

The state machine invokes it with ``{"manifest_id", "manifest_uri", "execution_arn", "run"}``; the
job's arguments (where the output, quarantine and table are) are the function's environment
variables, named as the Glue job's arguments: OUTPUT_PATH, QUARANTINE_PATH (required),
COMPRESSION_TYPE, SCHEMA_PATH, TARGET_FILE_MB, TABLE_CATALOG, TABLE_NAMESPACE, TABLE_NAME,
TABLE_LOCATION, CATALOG_URI, SCHEMA_MODE. It returns
``{"engine": "lambda", "run_id", "manifest_id", "totals", "snapshot_id"}`` (``run_id``: the run
summary's ``run_token``).

Per call:
* the scratch folder (/tmp in Lambda) is emptied first: a call killed by a timeout or the OOM
  killer leaves its scratch behind in the container, and a full disk fails as a transient error,
  so every later run in that container would fail the same way;
* the deadline is Lambda's (``context.get_remaining_time_in_millis()``): the executor raises
  ``ConverterDeadlineError`` once fewer than DEADLINE_MARGIN_SECONDS are left, before the commit,
  so Step Functions sees that name (and sends the manifest to Glue) rather than Lambda's own
  ``Sandbox.Timedout`` with a commit possibly half done;
* a worker that dies raises ``WorkerDiedError``; either name reaches Step Functions as the error.

Per container: the settings are read once (a missing or invalid variable is one
``ConverterConfigError`` naming it), and one ``ProcessExecutor`` is kept warm: worker processes,
one per 1,769 MB of the function's memory (Lambda's vCPU share), never ``os.cpu_count()``, which
reports the host's cores, not the share the function is billed for.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glue.convert import COMPRESSIONS
from glue.executors import DEADLINE_MARGIN_S, ConverterDeadlineError, ProcessExecutor, WorkerDiedError
from glue.job import JobArgs, run_job
from glue.table import CATALOGS, TableConfig
from glue.table_schema import DEFAULT_MODE, check_mode

__all__ = [
    "ConverterConfigError",
    "ConverterDeadlineError",
    "ConverterEventError",
    "Settings",
    "WorkerDiedError",
    "clear_scratch",
    "handler",
    "workers_for_memory",
]

log = logging.getLogger("ndjson_parquet.converter")


def _preload() -> None:
    """Import what the first commit imports lazily (pyiceberg's catalog, its Arrow IO, pydantic's
    models: 2-4 s measured cold) at module import, so Lambda's INIT phase pays it, not the first
    manifest's deadline."""
    import importlib

    for name in ("pyiceberg.catalog.glue", "pyiceberg.io.pyarrow", "pyiceberg.table", "pyiceberg.partitioning"):
        try:
            importlib.import_module(name)
        except ImportError as exc:  # the commit will raise the same error, named, when it needs it
            log.warning("preload of %s failed: %s", name, exc)


_preload()

ENGINE = "lambda"
MB_PER_VCPU = 1769  # Lambda: 1,769 MB of memory is one vCPU's worth of CPU time
MAX_WORKERS = 6  # Lambda's most vCPUs (at 10,240 MB)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConverterConfigError(ValueError):
    """The function's environment is missing a variable or holds an invalid one (named)."""


class ConverterEventError(ValueError):
    """The invocation's event lacks what the handler needs (``manifest_uri``)."""


def workers_for_memory(memory_mb: int) -> int:
    """Worker processes for a function of ``memory_mb``: its vCPU share (memory / 1,769 MB) rounded
    to the nearest whole one, at least 1, at most 6 (10,240 MB: 5.8 vCPUs, 6 workers)."""
    if memory_mb < 1:
        raise ValueError(f"memory must be >= 1 MB, got {memory_mb}")
    return max(1, min(MAX_WORKERS, int(memory_mb / MB_PER_VCPU + 0.5)))


def clear_scratch(folder: Path) -> tuple[int, int]:
    """Empty ``folder`` (never the folder itself; symbolic links removed, not followed). Returns
    (entries removed, bytes freed). An entry that cannot be removed is logged and left."""
    removed = freed = 0
    if not folder.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        return 0, 0
    for entry in list(folder.iterdir()):
        try:
            if entry.is_dir() and not entry.is_symlink():
                size = sum(p.stat().st_size for p in entry.rglob("*") if p.is_file() and not p.is_symlink())
                shutil.rmtree(entry)
            else:
                size = 0 if entry.is_symlink() else entry.stat().st_size
                entry.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("scratch: cannot remove %s: %s", entry, exc)
            continue
        removed += 1
        freed += size
    return removed, freed


@dataclass(frozen=True)
class Settings:
    """Everything the handler reads from the environment, checked once."""

    output_path: str
    quarantine_path: str
    compression: str
    schema_path: str | None
    target_file_mb: float
    table: TableConfig | None
    memory_mb: int
    workers: int
    # The folder emptied at the start of every call: CONVERTER_SCRATCH_DIR, else /tmp when running
    # in Lambda (AWS_LAMBDA_RUNTIME_API is set only by the Lambda runtime; the job's scratch files
    # go to tempfile's folder, /tmp there), else None: an in-process host (tests, the local
    # runtime) shares the machine's temporary folder with everything else, never emptied.
    scratch_dir: Path | None
    deadline_margin_s: float
    log_level: str

    @classmethod
    def from_env(cls, env: dict[str, str] | os._Environ[str]) -> Settings:
        def get(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        def required(name: str) -> str:
            value = get(name)
            if value is None:
                raise ConverterConfigError(f"environment variable {name} is required")
            return value

        def number(name: str, default: float, minimum: float, kind: type = float, above: bool = False) -> Any:
            raw = get(name)
            if raw is None:
                return kind(default)
            try:
                value = kind(raw)
            except ValueError:
                raise ConverterConfigError(f"environment variable {name} must be a number, got {raw!r}") from None
            ok = value > minimum if above else value >= minimum  # NaN fails both
            if not ok:
                bound = ">" if above else ">="
                raise ConverterConfigError(f"environment variable {name} must be {bound} {minimum:g}, got {raw!r}")
            return value

        compression = (get("COMPRESSION_TYPE") or "snappy").lower()
        if compression not in COMPRESSIONS:
            raise ConverterConfigError(
                f"environment variable COMPRESSION_TYPE {compression!r} is not one of {', '.join(COMPRESSIONS)}"
            )
        target_mb = number("TARGET_FILE_MB", 128.0, 0.0, above=True)
        if get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE") is None:
            raise ConverterConfigError(
                "environment variable AWS_LAMBDA_FUNCTION_MEMORY_SIZE is required (Lambda sets it; a local host"
                " sets the memory it emulates)"
            )
        memory_mb = number("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", 0, 128, int)
        level = (get("LOG_LEVEL") or "INFO").upper()
        if level not in LOG_LEVELS:
            raise ConverterConfigError(
                f"environment variable LOG_LEVEL {level!r} is not one of {', '.join(LOG_LEVELS)}"
            )
        scratch = get("CONVERTER_SCRATCH_DIR")
        if scratch is None and get("AWS_LAMBDA_RUNTIME_API"):
            scratch = "/tmp"  # Lambda's only writable folder, where tempfile puts the job's scratch
        if scratch is not None and (not Path(scratch).is_absolute() or Path(scratch).resolve() == Path("/")):
            raise ConverterConfigError(
                f"environment variable CONVERTER_SCRATCH_DIR must be an absolute folder, not {scratch!r}"
            )
        return cls(
            output_path=required("OUTPUT_PATH"),
            quarantine_path=required("QUARANTINE_PATH"),
            compression=compression,
            schema_path=get("SCHEMA_PATH"),
            target_file_mb=target_mb,
            table=_table(get),
            memory_mb=memory_mb,
            workers=workers_for_memory(memory_mb),
            scratch_dir=Path(scratch) if scratch else None,
            deadline_margin_s=number("DEADLINE_MARGIN_SECONDS", DEADLINE_MARGIN_S, 0.0),
            log_level=level,
        )

    def job_args(self, manifest_uri: str) -> JobArgs:
        return JobArgs(
            manifest_path=manifest_uri,
            output_path=self.output_path,
            quarantine_path=self.quarantine_path,
            compression=self.compression,
            schema_path=self.schema_path,
            target_file_mb=self.target_file_mb,
            table=self.table,
        ).validate()


def _table(get: Any) -> TableConfig | None:
    """The Iceberg table (TABLE_NAME set), else None: the per-manifest folder output."""
    name = get("TABLE_NAME")
    if name is None:
        for other in ("TABLE_NAMESPACE", "TABLE_LOCATION", "CATALOG_URI"):
            if get(other):
                raise ConverterConfigError(f"environment variable {other} is set but TABLE_NAME is not")
        return None
    catalog = get("TABLE_CATALOG") or "glue"
    if catalog not in CATALOGS:
        raise ConverterConfigError(
            f"environment variable TABLE_CATALOG {catalog!r} is not one of {', '.join(CATALOGS)}"
        )
    for var in ("TABLE_NAMESPACE", "TABLE_LOCATION"):
        if get(var) is None:
            raise ConverterConfigError(f"environment variable {var} is required when TABLE_NAME is set")
    if catalog == "sql" and get("CATALOG_URI") is None:
        raise ConverterConfigError("environment variable CATALOG_URI is required when TABLE_CATALOG is sql")
    mode = get("SCHEMA_MODE") or DEFAULT_MODE
    try:
        check_mode(mode)
    except ValueError as exc:
        raise ConverterConfigError(f"environment variable SCHEMA_MODE: {exc}") from None
    return TableConfig(catalog, get("TABLE_NAMESPACE"), name, get("TABLE_LOCATION"), get("CATALOG_URI"), mode)


def deadline_from(context: Any, now: float) -> float | None:
    """The call's deadline on the ``time.monotonic()`` clock (None: no context, no deadline)."""
    if context is None:
        return None
    return now + context.get_remaining_time_in_millis() / 1000.0


# Per container: read on the first call, kept while the container is warm.
_settings: Settings | None = None
_executor: ProcessExecutor | None = None


def settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = Settings.from_env(os.environ)
        logging.getLogger().setLevel(_settings.log_level)
    return _settings


def executor(config: Settings) -> ProcessExecutor:
    global _executor
    if _executor is None:
        _executor = ProcessExecutor(config.workers, margin=config.deadline_margin_s)
        log.info("converter: %d worker(s) for %d MB", config.workers, config.memory_mb)
    return _executor


def reset() -> None:
    """End the warm workers and forget the settings (tests; a container never needs it)."""
    global _settings, _executor
    if _executor is not None:
        _executor.close()
    _settings = _executor = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    now = time.monotonic()
    config = settings()
    manifest_uri = event.get("manifest_uri") if isinstance(event, dict) else None
    if not isinstance(manifest_uri, str) or not manifest_uri:
        raise ConverterEventError(f"event has no manifest_uri: {event!r}"[:500])
    args = config.job_args(manifest_uri)
    if config.scratch_dir is not None:
        removed, freed = clear_scratch(config.scratch_dir)
        free = shutil.disk_usage(config.scratch_dir).free
        log.info("scratch %s: removed %d entries (%d bytes); %d bytes free", config.scratch_dir, removed, freed, free)
    pool = executor(config)
    pool.deadline = deadline_from(context, now)
    pool.check_deadline("start")
    summary = run_job(pool, args)
    log.info(
        "manifest %s converted: %s, snapshot %s, %s",
        summary.manifest_id,
        summary.totals,
        summary.snapshot_id,
        summary.timings,
    )
    return {
        "engine": ENGINE,
        "run_id": summary.run_token,
        "manifest_id": summary.manifest_id,
        "totals": summary.totals,
        "snapshot_id": summary.snapshot_id,
    }
