"""Monthly cost model of the pipeline, from requests counted per file and per manifest.

Pure: ``estimate(Workload, Counts, EngineFigures, PRICES)`` returns line items; the ``cost``
command prints them. Three inputs:

- the workload and the stack's knobs (``Workload``): its defaults are the defaults of
  ``chalicelib/settings.py``, ``app.py`` (schedule rates) and ``infra/pipeline.yaml`` (parameters);
  tests/infra/test_cost_model.py ties them, so the model prices the stack as deployed;
- request counts (``Counts``): DynamoDB requests measured by ``make bench``
  (``bench/results/control_plane.json``) when present, else the documented defaults;
- the engines' throughput (``EngineFigures``): measured by ``bench/engines.py``
  (``bench/results/engines.json``, which names the commit it measured) when present, else the
  defaults below, which are that file's last figures (a test keeps them equal).

Manifest size follows the seal rule in force: files per manifest = min(BATCH_MAX_FILES,
rate x SEAL_MAX_AGE_SECONDS, BATCH_MAX_BYTES / file size). A manifest of at most
LAMBDA_MAX_BYTES goes to the converter Lambda (GB-seconds at ConverterMemoryMB), a larger one to
Glue (DPU-seconds, 1-minute minimum per run). Prices are us-east-1 public list prices, written
down on PRICES_DATE: list prices to be checked, not a quote.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

PRICES_DATE = "2025-01 (us-east-1 public list prices; check https://aws.amazon.com/pricing before relying on them)"
DAYS_PER_MONTH = 30

PRICES: dict[str, float] = {
    "lambda_request": 0.20 / 1e6,  # per invocation
    "lambda_gb_second": 0.0000166667,  # x86
    "ddb_write_request_unit": 0.625 / 1e6,  # on-demand, after the Nov-2024 price cut
    "ddb_read_request_unit": 0.125 / 1e6,
    "ddb_storage_gb_month": 0.25,
    "ddb_pitr_gb_month": 0.20,
    "sfn_state_transition": 0.025 / 1000,  # Standard workflows
    "glue_dpu_hour_standard": 0.44,
    "glue_dpu_hour_flex": 0.29,
    "s3_put_request": 0.005 / 1000,  # PUT, COPY, POST, LIST
    "s3_get_request": 0.0004 / 1000,
    "s3_storage_gb_month": 0.023,  # Standard, first 50 TB
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB chunk
    "eventbridge_event": 1.00 / 1e6,  # custom events published
    "kms_key_month": 1.00,
    "kms_request": 0.03 / 10000,
}

PRICE_LABELS: dict[str, str] = {
    "lambda_request": "Lambda, per 1M requests",
    "lambda_gb_second": "Lambda, per GB-second (x86)",
    "ddb_write_request_unit": "DynamoDB on-demand, per 1M write request units",
    "ddb_read_request_unit": "DynamoDB on-demand, per 1M read request units",
    "ddb_storage_gb_month": "DynamoDB storage, per GB-month",
    "ddb_pitr_gb_month": "DynamoDB PITR, per GB-month",
    "sfn_state_transition": "Step Functions Standard, per 1K state transitions",
    "glue_dpu_hour_standard": "Glue STANDARD, per DPU-hour (1-minute minimum per run)",
    "glue_dpu_hour_flex": "Glue FLEX, per DPU-hour (1-minute minimum per run)",
    "s3_put_request": "S3 PUT/COPY/POST/LIST, per 1K requests",
    "s3_get_request": "S3 GET, per 1K requests",
    "s3_storage_gb_month": "S3 Standard storage, per GB-month",
    "sqs_request": "SQS standard, per 1M requests",
    "eventbridge_event": "EventBridge custom events, per 1M",
    "kms_key_month": "KMS customer key, per month",
    "kms_request": "KMS, per 10K requests",
}
# How each price is shown (the unit the label names).
PRICE_SCALE: dict[str, float] = {
    "lambda_request": 1e6,
    "ddb_write_request_unit": 1e6,
    "ddb_read_request_unit": 1e6,
    "sfn_state_transition": 1000,
    "s3_put_request": 1000,
    "s3_get_request": 1000,
    "sqs_request": 1e6,
    "eventbridge_event": 1e6,
    "kms_request": 10000,
}

# The seed review's own monthly figures, quoted as given for comparison.
SEED_FIGURES: tuple[tuple[int, str, float], ...] = (
    (8_000, "seed, as reviewed", 270.0),
    (500_000, "seed, unoptimized", 5_450.0),
    (500_000, "seed, optimized", 3_500.0),
)


MIB = 1024 * 1024

# The states a manifest's execution enters on each engine's happy path (infra/statemachine/
# convert_manifest.asl.json; a test walks the ASL along them). Standard workflows bill one state
# transition per state entered.
LAMBDA_PATH: tuple[str, ...] = (
    "Normalize",
    "ClaimRun",
    "IsRunNeeded",
    "ChooseEngine",
    "ConvertWithLambda",
    "Finalize",
    "Succeeded",
)
GLUE_PATH: tuple[str, ...] = (
    "Normalize",
    "ClaimRun",
    "IsRunNeeded",
    "ChooseEngine",
    "ConvertManifest",
    "Finalize",
    "Succeeded",
)
# Before the engine choice (the stack up to issue 26): one path, Glue.
LEGACY_GLUE_PATH: tuple[str, ...] = ("Normalize", "ClaimRun", "IsRunNeeded", "ConvertManifest", "Finalize", "Succeeded")

# Latencies a local run cannot show, stated (not measured here); used for the freshness estimate
# and bench/freshness.py. Sources: AWS documentation and commonly reported figures; check them
# against a deployed stack's CloudWatch metrics.
AWS_LATENCY_SECONDS: dict[str, float] = {
    # S3 event notification -> SQS, typically well under a second.
    "s3_event_to_sqs": 1.0,
    # DynamoDB Streams -> Lambda: records are typically available in under a second.
    "stream_to_lambda": 1.0,
    # EventBridge PutEvents -> target invocation: about half a second typical.
    "eventbridge_to_target": 0.5,
    # Step Functions Standard: per state transition, tens of milliseconds (a Task adds its call).
    "sfn_transition": 0.1,
    # lambda:invoke of a warm function from a Task state (request/response), per call.
    "lambda_invoke": 0.05,
    # Glue job run: from StartJobRun to the script starting (provisioning); Glue 4.0/5.0 report
    # ~10 s typical (Glue 2.0 and later bill per second with a 1-minute minimum).
    "glue_provisioning": 10.0,
    # An Iceberg commit against the Glue Data Catalog and S3 (metadata JSON + manifest list writes,
    # UpdateTable with a version check) over what the local sqlite catalog takes.
    "catalog_commit_extra": 1.0,
}


@dataclass(frozen=True)
class Workload:
    files_per_day: int
    mb_per_file: float = 5.0  # MiB
    # chalicelib/settings.py defaults (tied by a test)
    batch_max_files: int = 200
    batch_max_bytes: int = 700 * MIB
    seal_max_age_seconds: int = 60
    lambda_max_bytes: int = 2_400_000_000  # DEFAULT_LAMBDA_MAX_BYTES
    convert_engine: str = "auto"  # CONVERT_ENGINE: auto | lambda | glue
    # app.py schedule rates (tied by a test)
    flush_rate_minutes: int = 1
    recover_rate_minutes: int = 10
    # app.py event-source defaults
    ingest_batch_size: int = 100
    ingest_batch_window_seconds: float = 5.0
    stream_batch_size: int = 100
    # infra/pipeline.yaml parameter defaults (tied by a test)
    converter_memory_mb: int = 3538
    converter_timeout_seconds: int = 300
    glue_workers: int = 2
    glue_dpu_per_worker: float = 1.0  # G.1X
    output_ratio: float = 0.25  # Parquet bytes per NDJSON byte (zstd), for storage
    retention_days_output: int = 30  # months of output kept is the user's call; one month modelled
    # Share of converter invocations that start a new execution environment (a cold start billed
    # for its INIT, the converter's measured import time). A warm environment is reused for the
    # next manifest: at one manifest a minute or more, the same few environments serve them all;
    # AWS recycles environments after some hours and when idle. Assumption, stated in the output.
    converter_cold_start_share: float = 0.05
    # The state machine's happy paths (LEGACY_GLUE_PATH: the stack before the engine choice).
    lambda_path: tuple[str, ...] = LAMBDA_PATH
    glue_path: tuple[str, ...] = GLUE_PATH

    @property
    def file_bytes(self) -> float:
        return self.mb_per_file * MIB

    @property
    def rate_per_second(self) -> float:
        return self.files_per_day / 86400


def legacy_workload(files_per_day: int, mb_per_file: float = 5.0) -> Workload:
    """The stack before issue 26: every manifest on Glue, batches sealed after 900 s, flush every
    5 minutes, no ChooseEngine state. Reproduces the model's figures from before the change."""
    return Workload(
        files_per_day=files_per_day,
        mb_per_file=mb_per_file,
        seal_max_age_seconds=900,
        flush_rate_minutes=5,
        convert_engine="glue",
        glue_path=LEGACY_GLUE_PATH,
    )


@dataclass(frozen=True)
class EngineFigures:
    """Measured conversion throughput (bench/engines.py) on 2 local cores, standing for the
    converter's 2 vCPUs (3,538 MB; Lambda gives 1 vCPU per 1,769 MB) and for a 2 x G.1X Glue job's
    executors. Defaults: the last measurement (bench/results/engines.json; a test keeps them equal):
    2026-12-07 17:30 UTC on the 2-core development machine, quiet (no other test run), 5 interleaved
    rounds, medians."""

    lambda_mb_per_second: float = 47.41  # process pool, 2 workers, warm, MiB/s of input
    lambda_fixed_seconds: float = 0.104  # per run on top of the bytes (plan, unify, commit; small manifest)
    lambda_cold_start_seconds: float = 1.838  # converter imports (converter.handler) + 2 workers started
    glue_mb_per_second: float = 44.57  # run_job on a local[2] SparkSession, warm, MiB/s
    glue_start_seconds: float = 9.765  # fresh process + JVM + Spark session over a warm run
    source: str = "defaults (the last bench/results/engines.json, documented in ndjson_parquet/cost_model.py)"
    commit: str = ""

    @property
    def lambda_vcpus(self) -> int:
        return 2


# The Glue figures of the model before issue 26 (20 MiB/s per worker, 10 s start): with
# legacy_workload they reproduce its figures ($1,523.58 at 500,000 x 3.5 MB/day, $50.99 at 8,000).
LEGACY_ENGINES = EngineFigures(
    glue_mb_per_second=40.0,
    glue_start_seconds=10.0,
    source="the model before issue 26 (Glue 20 MiB/s per worker, 10 s start)",
)


def load_engine_figures(path: Path) -> EngineFigures:
    """The figures of ``bench/results/engines.json`` when it exists, else the defaults."""
    if not path.exists():
        return EngineFigures()
    return engine_figures_from_bench(json.loads(path.read_text(encoding="utf-8")), source=str(path))


def engine_figures_from_bench(bench: Mapping[str, Any], source: str = "bench") -> EngineFigures:
    model = bench["model"]
    commit = str(bench.get("commit", ""))
    return EngineFigures(
        lambda_mb_per_second=float(model["lambda_mb_per_second"]),
        lambda_fixed_seconds=float(model["lambda_fixed_seconds"]),
        lambda_cold_start_seconds=float(model["lambda_cold_start_seconds"]),
        glue_mb_per_second=float(model["glue_mb_per_second"]),
        glue_start_seconds=float(model["glue_start_seconds"]),
        source=f"{source} (measured at commit {commit[:12] or '?'}{' + local changes' if bench.get('dirty') else ''})",
        commit=commit,
    )


@dataclass(frozen=True)
class Counts:
    """Requests per unit of work. Defaults are reasoned estimates; measured values replace them."""

    ddb_writes_per_file: float = 4.0  # track put, counter add, claim, converted
    ddb_reads_per_file: float = 0.5  # paged claim/finalize queries, amortised
    ddb_writes_per_manifest: float = 6.0  # seal, manifest item, run claim, finalize
    ddb_reads_per_manifest: float = 4.0
    wru_per_write: float = 2.0  # FILE items are projected into status-index: one GSI write per table write
    stream_records_per_file: float = 1.0  # postdeploy's event filter: only the FILE INSERT invokes count_arrivals
    workflow_invocations_per_manifest: float = 2.0  # claim_run, finalize (the converter is counted on its own)
    s3_gets_per_file: float = 2.0  # the engine reads the object (+ a HEAD)
    s3_puts_per_manifest: float = 6.0  # manifest, parquet parts, summary, quarantine, LIST
    sqs_requests_per_file: float = 1.1  # S3 send + batched receive/delete
    track_ms: float = 150.0  # per invocation (batch), 256 MB
    count_ms: float = 200.0  # per invocation, 512 MB
    workflow_ms: float = 300.0  # per task invocation, 256 MB
    scheduled_ms: float = 500.0  # flush_stale / recover, 512 MB
    source: str = "defaults (documented in ndjson_parquet/cost_model.py)"


@dataclass(frozen=True)
class LineItem:
    service: str
    detail: str
    monthly_usd: float


@dataclass(frozen=True)
class EngineRun:
    """One manifest's conversion on one engine: wall seconds and what it bills."""

    engine: str
    seconds: float
    billed: float  # GB-seconds (lambda) or DPU-seconds (glue)
    usd: float


@dataclass(frozen=True)
class Estimate:
    workload: Workload
    counts: Counts
    engines: EngineFigures
    files_per_manifest: float
    sealed_by: str  # "files", "bytes" or "age"
    manifests_per_day: float
    manifest_mb: float
    engine: str  # the engine the manifests go to ("lambda" or "glue")
    lambda_manifests_per_day: float
    glue_manifests_per_day: float
    run: EngineRun
    fallback: bool  # a Lambda run would exceed the timeout: it is paid, then Glue converts
    freshness_typical_s: float
    freshness_worst_s: float
    freshness_parts: dict[str, float] = field(default_factory=dict)
    items: list[LineItem] = field(default_factory=list)
    converter_usd: float = 0.0
    glue_standard_usd: float = 0.0
    glue_flex_usd: float = 0.0

    @property
    def total_without_glue(self) -> float:
        return sum(i.monthly_usd for i in self.items) + self.converter_usd

    @property
    def total_standard(self) -> float:
        return self.total_without_glue + self.glue_standard_usd

    @property
    def total_flex(self) -> float:
        return self.total_without_glue + self.glue_flex_usd

    @property
    def split(self) -> dict[str, Any]:
        total = self.lambda_manifests_per_day + self.glue_manifests_per_day
        return {
            "lambda_manifests_per_day": round(self.lambda_manifests_per_day, 1),
            "glue_manifests_per_day": round(self.glue_manifests_per_day, 1),
            "lambda_share": round(self.lambda_manifests_per_day / total, 4) if total else 0.0,
            "converter_usd": round(self.converter_usd, 2),
            "glue_standard_usd": round(self.glue_standard_usd, 2),
        }


def load_counts(path: Path) -> Counts:
    """Counts with the measured DynamoDB requests of ``bench/results/control_plane.json`` applied."""
    if not path.exists():
        return Counts()
    return counts_from_bench(json.loads(path.read_text(encoding="utf-8")), source=str(path))


_WRITE_OPS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
_READ_OPS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}


def counts_from_bench(bench: Mapping[str, Any], source: str = "bench") -> Counts:
    """Per-file write/read requests from the measured phases (track, count per file; seal per manifest)."""
    files = max(1, int(bench.get("files", 0)))
    manifests = max(1, int(bench.get("manifests_sealed", 0)))
    phases: Mapping[str, Mapping[str, int]] = bench.get("by_phase_and_operation", {})
    counts = Counts()
    if not phases:
        return counts

    def total(phase_names: tuple[str, ...], ops: set[str]) -> int:
        return sum(n for p in phase_names for op, n in phases.get(p, {}).items() if op in ops)

    per_file_writes = total(("track", "count"), _WRITE_OPS) / files
    per_file_reads = total(("track", "count"), _READ_OPS) / files
    seal_writes = total(("seal",), _WRITE_OPS)
    seal_reads = total(("seal",), _READ_OPS)
    # Seal claims each file with a write: attribute those to files, the rest to the manifest.
    claims_per_file = min(seal_writes / files, 1.0)
    return replace(
        counts,
        # + 1 write per file for the workflow's "converted" update, which the bench does not run.
        ddb_writes_per_file=round(per_file_writes + claims_per_file + 1.0, 3),
        ddb_reads_per_file=round(per_file_reads + seal_reads / files, 3),
        ddb_writes_per_manifest=round(max(seal_writes - claims_per_file * files, 0) / manifests + 3.0, 3),
        source=f"{source} (DynamoDB requests measured over {files} files, {manifests} manifests)",
    )


def _effective_batch(rate_per_second: float, window_seconds: float, batch_size: int) -> float:
    """Records per invocation: the batching window fills up to the batch size, at least one."""
    return min(float(batch_size), max(1.0, rate_per_second * window_seconds))


def transitions(path: tuple[str, ...]) -> int:
    """State transitions billed per execution: each state entered, plus the execution's start
    (counted as the model always has; conservative by one if AWS does not bill it)."""
    return len(path) + 1


def manifest_size(w: Workload) -> tuple[float, str]:
    """Files per manifest under the seal rule, and which limit seals it: BATCH_MAX_FILES, the bytes
    cap, or the oldest file's age (rate x SEAL_MAX_AGE_SECONDS); at least one file."""
    by_bytes = max(1.0, math.floor(w.batch_max_bytes / w.file_bytes))
    by_age = w.rate_per_second * w.seal_max_age_seconds
    limits = {"files": float(w.batch_max_files), "bytes": by_bytes, "age": by_age}
    sealed_by = min(limits, key=lambda k: (limits[k], k != "age"))
    return max(1.0, limits[sealed_by]), sealed_by


def lambda_run(w: Workload, e: EngineFigures, manifest_mb: float, p: Mapping[str, float]) -> EngineRun:
    """The converter on one manifest: fixed work + bytes at the measured rate + the catalog commit's
    AWS latency, and a share of cold starts (INIT billed at the measured import time)."""
    seconds = (
        e.lambda_fixed_seconds + manifest_mb / e.lambda_mb_per_second + AWS_LATENCY_SECONDS["catalog_commit_extra"]
    )
    billed_s = seconds + w.converter_cold_start_share * e.lambda_cold_start_seconds
    gb_s = billed_s * w.converter_memory_mb / 1024
    return EngineRun("lambda", seconds, gb_s, gb_s * p["lambda_gb_second"] + p["lambda_request"])


def glue_run(w: Workload, e: EngineFigures, manifest_mb: float, price: float) -> EngineRun:
    """A Glue run on one manifest: JVM/Spark start + bytes at the measured rate per worker pair,
    billed per second with a 1-minute minimum, on workers x DPU."""
    per_worker = e.glue_mb_per_second / 2  # measured on local[2]: 2 executor cores
    seconds = e.glue_start_seconds + manifest_mb / (per_worker * w.glue_workers)
    dpu_s = max(seconds, 60.0) * w.glue_workers * w.glue_dpu_per_worker
    return EngineRun("glue", seconds, dpu_s, dpu_s / 3600 * price)


def choose_engine(w: Workload, manifest_bytes: float) -> str:
    """ClaimRun's rule: CONVERT_ENGINE, auto = bytes <= LAMBDA_MAX_BYTES -> lambda."""
    if w.convert_engine not in ("auto", "lambda", "glue"):
        raise ValueError(f"convert_engine must be auto, lambda or glue, got {w.convert_engine!r}")
    if w.convert_engine != "auto":
        return w.convert_engine
    return "lambda" if manifest_bytes <= w.lambda_max_bytes else "glue"


def freshness(w: Workload, e: EngineFigures, fpm: float, sealed_by: str, run: EngineRun) -> tuple[float, float, dict]:
    """Seconds from a file's upload to its rows in the table's current snapshot: ingest (S3 event,
    SQS batching window, stream), the seal wait, EventBridge and the states up to the commit, the
    conversion and commit. Worst: the first file of a manifest, a cold start; typical: a file in the
    middle of its manifest, warm."""
    lat = AWS_LATENCY_SECONDS
    rate = w.rate_per_second
    ingest_worst = lat["s3_event_to_sqs"] + w.ingest_batch_window_seconds + lat["stream_to_lambda"]
    ingest_typical = lat["s3_event_to_sqs"] + w.ingest_batch_window_seconds / 2 + lat["stream_to_lambda"]
    if sealed_by == "age":
        # The oldest file waits SEAL_MAX_AGE_SECONDS; the seal happens on the next arrival
        # (count_arrivals) or the next scheduled flush_stale, whichever comes first.
        check = min(1 / rate if rate else math.inf, w.flush_rate_minutes * 60.0)
        seal_worst = w.seal_max_age_seconds + check
        seal_typical = w.seal_max_age_seconds / 2 + check / 2
    else:
        fill = fpm / rate
        seal_worst, seal_typical = fill, fill / 2
    path = w.lambda_path if run.engine == "lambda" else w.glue_path
    states_before_commit = path.index("Finalize") if "Finalize" in path else len(path)
    orchestration = (
        lat["eventbridge_to_target"] + states_before_commit * lat["sfn_transition"] + 2 * lat["lambda_invoke"]
    )
    orchestration += Counts().workflow_ms / 1000  # claim_run
    convert = run.seconds
    cold = e.lambda_cold_start_seconds if run.engine == "lambda" else lat["glue_provisioning"]
    warm_extra = 0.0 if run.engine == "lambda" else lat["glue_provisioning"]
    parts = {
        "ingest_s": round(ingest_worst, 1),
        "seal_wait_s": round(seal_worst, 1),
        "orchestration_s": round(orchestration, 1),
        "convert_and_commit_s": round(convert, 1),
        "cold_start_s": round(cold, 1),
    }
    worst = ingest_worst + seal_worst + orchestration + convert + cold
    typical = ingest_typical + seal_typical + orchestration + convert + warm_extra
    return typical, worst, parts


def estimate(
    workload: Workload,
    counts: Counts | None = None,
    engines: EngineFigures | None = None,
    prices: Mapping[str, float] = PRICES,
) -> Estimate:
    w = workload
    c = counts or Counts()
    e = engines or EngineFigures()
    p = prices
    n_day = float(w.files_per_day)
    n_month = n_day * DAYS_PER_MONTH
    rate = w.rate_per_second
    fpm, sealed_by = manifest_size(w) if n_day else (1.0, "files")
    manifests_day = math.ceil(n_day / fpm) if n_day else 0
    manifests_month = manifests_day * DAYS_PER_MONTH
    gb_in_day = n_day * w.mb_per_file / 1024
    manifest_mb = fpm * w.mb_per_file
    engine = choose_engine(w, fpm * w.file_bytes)

    # Conversion: the chosen engine; a Lambda run past the timeout is paid and then Glue converts.
    glue = glue_run(w, e, manifest_mb, p["glue_dpu_hour_standard"])
    glue_flex = glue_run(w, e, manifest_mb, p["glue_dpu_hour_flex"])
    lam = lambda_run(w, e, manifest_mb, p)
    fallback = engine == "lambda" and lam.seconds > w.converter_timeout_seconds
    converter_usd = glue_standard = glue_flex_usd = 0.0
    lambda_manifests = glue_manifests = 0.0
    if engine == "lambda":
        lambda_manifests = manifests_day
        if fallback:
            timed_out_gb_s = w.converter_timeout_seconds * w.converter_memory_mb / 1024
            converter_usd = manifests_month * (timed_out_gb_s * p["lambda_gb_second"] + p["lambda_request"])
            glue_manifests = manifests_day
        else:
            converter_usd = manifests_month * lam.usd
    else:
        glue_manifests = manifests_day
    if glue_manifests:
        glue_standard = glue_manifests * DAYS_PER_MONTH * glue.usd
        glue_flex_usd = glue_manifests * DAYS_PER_MONTH * glue_flex.usd
    run = glue if (engine == "glue" or fallback) else lam

    # Control-plane Lambdas
    track_inv = n_month / _effective_batch(rate, w.ingest_batch_window_seconds, w.ingest_batch_size)
    stream_rate = rate * c.stream_records_per_file
    count_inv = (n_month * c.stream_records_per_file) / _effective_batch(stream_rate, 1.0, w.stream_batch_size)
    wf_inv = manifests_month * c.workflow_invocations_per_manifest
    sched_day = 1440 / w.flush_rate_minutes + 1440 / w.recover_rate_minutes
    sched_inv = sched_day * DAYS_PER_MONTH
    gb_s = (
        track_inv * c.track_ms / 1000 * 0.25
        + count_inv * c.count_ms / 1000 * 0.5
        + wf_inv * c.workflow_ms / 1000 * 0.25
        + sched_inv * c.scheduled_ms / 1000 * 0.5
    )
    invocations = track_inv + count_inv + wf_inv + sched_inv
    lambda_usd = invocations * p["lambda_request"] + gb_s * p["lambda_gb_second"]

    # DynamoDB
    writes = n_month * c.ddb_writes_per_file + manifests_month * c.ddb_writes_per_manifest
    reads = n_month * c.ddb_reads_per_file + manifests_month * c.ddb_reads_per_manifest
    table_gb = n_day * 30 * 1.0 / 1024 / 1024  # ~1 KB per FILE item, TTL 30 days
    ddb_usd = (
        writes * c.wru_per_write * p["ddb_write_request_unit"]
        + reads * p["ddb_read_request_unit"]
        + table_gb * 2 * p["ddb_storage_gb_month"]  # x2: the GSI projects ALL
        + table_gb * p["ddb_pitr_gb_month"]
    )

    per_exec = transitions(w.lambda_path) * lambda_manifests + transitions(w.glue_path) * glue_manifests
    if fallback:  # ConvertWithLambda's catcher -> FallBackToGlue -> ConvertManifest, then Finalize
        per_exec = (transitions(w.lambda_path) + 2) * lambda_manifests
    sfn_transitions = per_exec * DAYS_PER_MONTH
    sfn_usd = sfn_transitions * p["sfn_state_transition"]

    s3_usd = (
        n_month * c.s3_gets_per_file * p["s3_get_request"]
        + manifests_month * c.s3_puts_per_manifest * p["s3_put_request"]
        + gb_in_day * DAYS_PER_MONTH * w.output_ratio * p["s3_storage_gb_month"]
    )
    sqs_usd = n_month * c.sqs_requests_per_file * p["sqs_request"]
    eb_usd = manifests_month * p["eventbridge_event"]
    kms_usd = p["kms_key_month"] + (n_month * 0.01) * p["kms_request"]  # bucket keys: ~1 KMS call per 100 objects

    gets, puts = n_month * c.s3_gets_per_file, manifests_month * c.s3_puts_per_manifest
    items = [
        LineItem(
            "Lambda",
            f"{invocations:,.0f} invocations ({sched_inv:,.0f} scheduled), {gb_s:,.0f} GB-s (control plane)",
            lambda_usd,
        ),
        LineItem("DynamoDB", f"{writes:,.0f} writes x {c.wru_per_write} WRU, {reads:,.0f} reads", ddb_usd),
        LineItem("Step Functions", f"{manifests_month:,.0f} executions, {sfn_transitions:,.0f} transitions", sfn_usd),
        LineItem("S3", f"{gets:,.0f} GET, {puts:,.0f} PUT, one month of Parquet output stored", s3_usd),
        LineItem("SQS", f"{n_month * c.sqs_requests_per_file:,.0f} requests", sqs_usd),
        LineItem("EventBridge", f"{manifests_month:,.0f} ManifestReady events", eb_usd),
        LineItem("KMS", "1 key + requests (S3 bucket keys)", kms_usd),
    ]
    typical, worst, parts = freshness(w, e, fpm, sealed_by, run) if n_day else (0.0, 0.0, {})
    return Estimate(
        workload=w,
        counts=c,
        engines=e,
        files_per_manifest=fpm,
        sealed_by=sealed_by,
        manifests_per_day=manifests_day,
        manifest_mb=manifest_mb,
        engine=engine,
        lambda_manifests_per_day=lambda_manifests if not fallback else 0.0,
        glue_manifests_per_day=glue_manifests,
        run=run,
        fallback=fallback,
        freshness_typical_s=typical,
        freshness_worst_s=worst,
        freshness_parts=parts,
        items=items,
        converter_usd=converter_usd,
        glue_standard_usd=glue_standard,
        glue_flex_usd=glue_flex_usd,
    )


def assumptions(est: Estimate) -> list[str]:
    w, e = est.workload, est.engines
    mem_gb = w.converter_memory_mb / 1024
    gb_s_per_mb = mem_gb / e.lambda_mb_per_second
    dpu_s_per_mb = 2 / e.glue_mb_per_second  # 2 x G.1X workers converting at the measured 2-core rate
    return [
        f"seal rule: files per manifest = min(BATCH_MAX_FILES {w.batch_max_files}, rate x SEAL_MAX_AGE_SECONDS "
        f"{w.seal_max_age_seconds} = {w.rate_per_second * w.seal_max_age_seconds:,.1f}, BATCH_MAX_BYTES "
        f"{w.batch_max_bytes / MIB:,.0f} MiB / {w.mb_per_file} MiB); flush_stale every {w.flush_rate_minutes} min, "
        f"recover every {w.recover_rate_minutes} min",
        f"engine rule: CONVERT_ENGINE={w.convert_engine}, manifests <= LAMBDA_MAX_BYTES "
        f"{w.lambda_max_bytes / MIB:,.0f} MiB -> converter Lambda at {w.converter_memory_mb} MB (2 vCPU), "
        f"larger -> Glue {w.glue_workers} x {w.glue_dpu_per_worker} DPU",
        f"engine figures: {e.source}",
        f"  converter {e.lambda_mb_per_second:,.1f} MiB/s on 2 cores = {gb_s_per_mb:.4f} GB-s/MiB at "
        f"{w.converter_memory_mb} MB; + {e.lambda_fixed_seconds:.2f} s per run; cold start "
        f"{e.lambda_cold_start_seconds:.2f} s (imports + workers) billed on {w.converter_cold_start_share:.0%} "
        "of invocations (INIT is billed)",
        f"  Glue {e.glue_mb_per_second:,.1f} MiB/s on 2 cores = {dpu_s_per_mb:.4f} DPU-s/MiB; + "
        f"{e.glue_start_seconds:.1f} s JVM/Spark start per run; billed >= 60 s per run",
        "  stated AWS latencies (not measured here): "
        + ", ".join(f"{k.replace('_', ' ')} {v:g} s" for k, v in AWS_LATENCY_SECONDS.items()),
        f"state transitions per execution: lambda path {transitions(w.lambda_path)} "
        f"({', '.join(w.lambda_path)} + start), glue path {transitions(w.glue_path)}",
        f"counts: {est.counts.source}",
    ]


def to_json(est: Estimate) -> dict[str, Any]:
    return {
        "workload": asdict(est.workload),
        "counts": asdict(est.counts),
        "engine_figures": asdict(est.engines),
        "manifests": {
            "files_per_manifest": round(est.files_per_manifest, 2),
            "sealed_by": est.sealed_by,
            "per_day": est.manifests_per_day,
            "manifest_mb": round(est.manifest_mb, 1),
            "run_seconds": round(est.run.seconds, 2),
            "engine": est.engine,
            "lambda_timeout_fallback": est.fallback,
        },
        "split": est.split,
        "freshness": {
            "typical_s": round(est.freshness_typical_s, 1),
            "worst_s": round(est.freshness_worst_s, 1),
            "parts_worst": est.freshness_parts,
        },
        "items": [asdict(i) for i in est.items],
        "converter_usd": round(est.converter_usd, 2),
        "glue_standard_usd": round(est.glue_standard_usd, 2),
        "glue_flex_usd": round(est.glue_flex_usd, 2),
        "total_standard_usd": round(est.total_standard, 2),
        "total_flex_usd": round(est.total_flex, 2),
        "assumptions": assumptions(est),
    }


def render(est: Estimate, prices: Mapping[str, float] = PRICES) -> str:
    w = est.workload
    split = est.split
    lines = [
        f"Monthly cost model: {w.files_per_day:,} files/day x {w.mb_per_file} MB "
        f"({w.files_per_day * w.mb_per_file / 1024:,.1f} GB/day), {DAYS_PER_MONTH} days",
        f"  manifests: {est.manifests_per_day:,.0f}/day of {est.files_per_manifest:,.1f} files "
        f"({est.manifest_mb:,.1f} MB, sealed by {est.sealed_by})",
        f"  engine split: lambda {split['lambda_manifests_per_day']:,.0f}/day, glue "
        f"{split['glue_manifests_per_day']:,.0f}/day; a run ~{est.run.seconds:,.1f} s on {est.run.engine}"
        + (
            f" (a Lambda run would pass its {w.converter_timeout_seconds} s timeout: paid, then Glue)"
            if est.fallback
            else ""
        ),
        f"  freshness (upload -> rows in the current snapshot): typical ~{est.freshness_typical_s:,.0f} s, "
        f"worst ~{est.freshness_worst_s:,.0f} s ("
        + ", ".join(f"{k.removesuffix('_s').replace('_', ' ')} {v:g} s" for k, v in est.freshness_parts.items())
        + ")",
        "",
        f"  {'service':<16}{'USD/month':>12}  detail",
    ]
    for item in est.items:
        lines.append(f"  {item.service:<16}{item.monthly_usd:>12,.2f}  {item.detail}")
    lines += [
        f"  {'Converter':<16}{est.converter_usd:>12,.2f}  Lambda at {w.converter_memory_mb} MB, "
        f"{split['lambda_manifests_per_day'] * DAYS_PER_MONTH:,.0f} runs",
        f"  {'Glue STANDARD':<16}{est.glue_standard_usd:>12,.2f}  "
        f"{split['glue_manifests_per_day'] * DAYS_PER_MONTH:,.0f} runs",
        f"  {'Glue FLEX':<16}{est.glue_flex_usd:>12,.2f}",
        f"  {'TOTAL STANDARD':<16}{est.total_standard:>12,.2f}",
        f"  {'TOTAL FLEX':<16}{est.total_flex:>12,.2f}",
        "",
        "  Assumptions:",
    ]
    lines += [f"    {a}" for a in assumptions(est)]
    lines += ["", "  Seed review's own monthly figures (its design, its assumptions), for comparison:"]
    for files, label, usd in SEED_FIGURES:
        lines.append(f"    {files:>9,} files/day  {label:<20} ~${usd:,.0f}/month")
    lines += ["", f"  Prices used ({PRICES_DATE}):"]
    for key, label in PRICE_LABELS.items():
        shown = f"{prices[key] * PRICE_SCALE.get(key, 1.0):.10f}".rstrip("0").rstrip(".")
        lines.append(f"    {label:<58} ${shown}")
    return "\n".join(lines)
