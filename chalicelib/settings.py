"""Settings read once from the environment, lazily, frozen.

Every variable is declared in ``.chalice/config.json``. A missing or invalid value raises
``SettingsError`` naming the variable, instead of a KeyError deep inside a handler.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from chalicelib.table_commits import TableRef


class SettingsError(RuntimeError):
    """A required environment variable is missing or has an invalid value."""


def _str(env: Mapping[str, str], name: str, default: str | None = None) -> str:
    value = env.get(name, default)
    if value is None or value == "":
        raise SettingsError(f"environment variable {name} is required but not set")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"environment variable {name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"environment variable {name}={value} must be >= {minimum}")
    return value


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in allowed:
        raise SettingsError(f"environment variable {name}={value!r} must be one of {', '.join(allowed)}")
    return value


def _suffixes(env: Mapping[str, str], name: str, default: str) -> tuple[str, ...]:
    raw = env.get(name) or default
    items = tuple(s.strip().lower() for s in raw.split(",") if s.strip())
    if not items:
        raise SettingsError(f"environment variable {name} lists no suffixes")
    return items


DEFAULT_SUFFIXES = ".ndjson,.jsonl,.json,.ndjson.gz,.jsonl.gz,.json.gz"

# The conversion engine (ClaimRun decides, chalicelib/workflow/engine.py): "auto" sends a manifest whose
# work bytes are at most LAMBDA_MAX_BYTES to the converter Lambda function and larger ones to Glue.
ENGINES = ("auto", "lambda", "glue")
# Default LAMBDA_MAX_BYTES: a run must end well inside the converter's timeout. ASSUMED, not measured yet:
# the process engine converts ~40 MB/s on 2 vCPUs cold (the lead replaces it with the `make bench`
# figure). Conversion may use a fifth of the default timeout (ConverterTimeoutSeconds 300 s): 60 s for
# 2.4 GB, leaving the rest for the cold start, the commit (retried on conflict), a task retried after a
# transient error and a slow S3 day, before the converter's own deadline error sends the run to Glue.
# infra/pipeline.yaml's LambdaMaxBytes default is this number (tests/unit/test_engine_choice.py).
ASSUMED_COLD_MB_PER_SECOND = 40
CONVERTER_TIMEOUT_SECONDS = 300
CONVERT_SHARE_OF_TIMEOUT = 0.2
DEFAULT_LAMBDA_MAX_BYTES = int(
    ASSUMED_COLD_MB_PER_SECOND * 1_000_000 * CONVERTER_TIMEOUT_SECONDS * CONVERT_SHARE_OF_TIMEOUT
)  # 2.4 GB


@dataclass(frozen=True)
class Settings:
    table_name: str
    manifest_bucket: str
    event_bus_name: str
    shard_count: int = 10
    batch_max_files: int = 200
    batch_max_bytes: int = 700 * 1024 * 1024
    # Freshness: a date's pending files are sealed once the oldest waited SEAL_MAX_AGE_SECONDS,
    # checked by count_arrivals on every arrival (0: off; only the size rule and flush_stale seal)
    # and by flush_stale for a quiet stream, with BATCH_MAX_WAIT_SECONDS, the same target by default.
    seal_max_age_seconds: int = 60
    batch_max_wait_seconds: int = 60
    ttl_days: int = 30
    input_prefix: str = ""
    input_bucket: str = ""  # empty: any bucket's notifications are tracked (no check)
    manifest_prefix: str = "manifests"
    allowed_suffixes: tuple[str, ...] = tuple(DEFAULT_SUFFIXES.split(","))
    max_attempts: int = 3
    output_path: str = ""
    quarantine_path: str = ""
    alerts_topic_arn: str = ""
    state_machine_arn: str = ""
    ingest_dlq_url: str = ""
    events_dlq_url: str = ""
    recover_after_seconds: int = 900
    breaker_threshold: int = 5
    breaker_window_seconds: int = 3600
    breaker_cooldown_seconds: int = 900
    # The Iceberg table the Glue job commits to (empty catalog: the job writes manifest folders).
    # Compensate reads its commits (chalicelib/table_commits.py) before undoing a run.
    iceberg_catalog: str = ""
    iceberg_namespace: str = ""
    iceberg_table: str = ""
    iceberg_catalog_uri: str = ""
    lambda_max_bytes: int = DEFAULT_LAMBDA_MAX_BYTES
    convert_engine: str = "auto"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            table_name=_str(env, "TABLE_NAME"),
            manifest_bucket=_str(env, "MANIFEST_BUCKET"),
            event_bus_name=_str(env, "EVENT_BUS_NAME"),
            shard_count=_int(env, "SHARD_COUNT", 10),
            batch_max_files=_int(env, "BATCH_MAX_FILES", 200),
            batch_max_bytes=_int(env, "BATCH_MAX_BYTES", 700 * 1024 * 1024),
            seal_max_age_seconds=_int(env, "SEAL_MAX_AGE_SECONDS", 60, minimum=0),
            batch_max_wait_seconds=_int(env, "BATCH_MAX_WAIT_SECONDS", 60, minimum=0),
            ttl_days=_int(env, "TTL_DAYS", 30),
            input_prefix=env.get("INPUT_PREFIX", ""),
            input_bucket=env.get("INPUT_BUCKET", ""),
            manifest_prefix=env.get("MANIFEST_PREFIX", "manifests"),
            allowed_suffixes=_suffixes(env, "ALLOWED_SUFFIXES", DEFAULT_SUFFIXES),
            max_attempts=_int(env, "MAX_ATTEMPTS", 3),
            output_path=env.get("OUTPUT_PATH", ""),
            quarantine_path=env.get("QUARANTINE_PATH", ""),
            alerts_topic_arn=env.get("ALERTS_TOPIC_ARN", ""),
            state_machine_arn=env.get("STATE_MACHINE_ARN", ""),
            ingest_dlq_url=env.get("INGEST_DLQ_URL", ""),
            events_dlq_url=env.get("EVENTS_DLQ_URL", ""),
            recover_after_seconds=_int(env, "RECOVER_AFTER_SECONDS", 900, minimum=0),
            breaker_threshold=_int(env, "BREAKER_THRESHOLD", 5),
            breaker_window_seconds=_int(env, "BREAKER_WINDOW_SECONDS", 3600),
            breaker_cooldown_seconds=_int(env, "BREAKER_COOLDOWN_SECONDS", 900, minimum=0),
            # In AWS the table is in the Glue Data Catalog; the local runtime sets "sql".
            iceberg_catalog=env.get("ICEBERG_CATALOG", "glue"),
            iceberg_namespace=env.get("ICEBERG_NAMESPACE", ""),
            iceberg_table=env.get("ICEBERG_TABLE", ""),
            iceberg_catalog_uri=env.get("ICEBERG_CATALOG_URI", ""),
            lambda_max_bytes=_int(env, "LAMBDA_MAX_BYTES", DEFAULT_LAMBDA_MAX_BYTES, minimum=0),
            convert_engine=_choice(env, "CONVERT_ENGINE", "auto", ENGINES),
        )

    def table_ref(self) -> TableRef | None:
        if not (self.iceberg_catalog and self.iceberg_namespace and self.iceberg_table):
            return None
        return TableRef(self.iceberg_catalog, self.iceberg_namespace, self.iceberg_table, self.iceberg_catalog_uri)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use. Tests call ``get_settings.cache_clear()``."""
    return Settings.from_env()
