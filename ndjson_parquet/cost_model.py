"""Monthly cost model of the pipeline, from requests counted per file and per manifest.

Pure: ``estimate(Workload, Counts, PRICES)`` returns line items; the ``cost`` command prints
them. Counts come from ``bench/results/control_plane.json`` (DynamoDB requests measured by
``make bench``) when it exists, else from the documented defaults below. Prices are us-east-1
public list prices, written down on PRICES_DATE: list prices to be checked, not a quote.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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


@dataclass(frozen=True)
class Workload:
    files_per_day: int
    mb_per_file: float = 5.0
    batch_max_files: int = 200
    batch_max_wait_seconds: int = 900
    ingest_batch_size: int = 100
    ingest_batch_window_seconds: float = 5.0
    stream_batch_size: int = 100
    glue_workers: int = 2
    glue_dpu_per_worker: float = 1.0  # G.1X
    output_ratio: float = 0.25  # Parquet bytes per NDJSON byte (zstd), for storage
    retention_days_output: int = 30  # months of output kept is the user's call; one month modelled


@dataclass(frozen=True)
class Counts:
    """Requests per unit of work. Defaults are reasoned estimates; measured values replace them."""

    ddb_writes_per_file: float = 4.0  # track put, counter add, claim, converted
    ddb_reads_per_file: float = 0.5  # paged claim/finalize queries, amortised
    ddb_writes_per_manifest: float = 6.0  # seal, manifest item, run claim, finalize
    ddb_reads_per_manifest: float = 4.0
    wru_per_write: float = 2.0  # FILE items are projected into status-index: one GSI write per table write
    stream_records_per_file: float = 1.0  # postdeploy's event filter: only the FILE INSERT invokes count_arrivals
    sfn_transitions_per_manifest: float = 7.0  # Normalize, ClaimRun, IsRunNeeded, Convert, Finalize, Succeeded + start
    workflow_invocations_per_manifest: float = 2.0  # claim_run, finalize
    s3_gets_per_file: float = 2.0  # Glue reads the object (+ a HEAD)
    s3_puts_per_manifest: float = 6.0  # manifest, parquet parts, summary, quarantine, LIST
    sqs_requests_per_file: float = 1.1  # S3 send + batched receive/delete
    track_ms: float = 150.0  # per invocation (batch), 256 MB
    count_ms: float = 200.0  # per invocation, 512 MB
    workflow_ms: float = 300.0  # per task invocation, 256 MB
    scheduled_invocations_per_day: float = 288 + 144  # flush_stale every 5 min, recover every 10 min
    scheduled_ms: float = 500.0
    glue_start_seconds: float = 10.0  # JVM + Spark start per run (measured locally 8-10 s)
    glue_mb_per_second_per_worker: float = 20.0  # conservative vs 36.7 MB/s measured warm on 2 local cores
    source: str = "defaults (documented in ndjson_parquet/cost_model.py)"


@dataclass(frozen=True)
class LineItem:
    service: str
    detail: str
    monthly_usd: float


@dataclass(frozen=True)
class Estimate:
    workload: Workload
    counts: Counts
    files_per_manifest: float
    manifests_per_day: float
    glue_seconds_per_run: float
    items: list[LineItem] = field(default_factory=list)
    glue_standard_usd: float = 0.0
    glue_flex_usd: float = 0.0

    @property
    def total_without_glue(self) -> float:
        return sum(i.monthly_usd for i in self.items)

    @property
    def total_standard(self) -> float:
        return self.total_without_glue + self.glue_standard_usd

    @property
    def total_flex(self) -> float:
        return self.total_without_glue + self.glue_flex_usd


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


def estimate(workload: Workload, counts: Counts | None = None, prices: Mapping[str, float] = PRICES) -> Estimate:
    c = counts or Counts()
    p = prices
    n_day = float(workload.files_per_day)
    n_month = n_day * DAYS_PER_MONTH
    rate = n_day / 86400
    # Batches seal on size or on age: at low rates the wait window decides the manifest size.
    fpm = max(1.0, min(float(workload.batch_max_files), rate * workload.batch_max_wait_seconds)) if n_day else 1.0
    manifests_day = math.ceil(n_day / fpm) if n_day else 0
    manifests_month = manifests_day * DAYS_PER_MONTH
    gb_in_day = n_day * workload.mb_per_file / 1024

    # Lambda
    track_inv = n_month / _effective_batch(rate, workload.ingest_batch_window_seconds, workload.ingest_batch_size)
    stream_rate = rate * c.stream_records_per_file
    count_inv = (n_month * c.stream_records_per_file) / _effective_batch(stream_rate, 1.0, workload.stream_batch_size)
    wf_inv = manifests_month * c.workflow_invocations_per_manifest
    sched_inv = c.scheduled_invocations_per_day * DAYS_PER_MONTH
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

    sfn_usd = manifests_month * c.sfn_transitions_per_manifest * p["sfn_state_transition"]

    # Glue: one run per manifest, billed per second with a 1-minute minimum.
    mb_per_run = fpm * workload.mb_per_file
    run_s = c.glue_start_seconds + mb_per_run / (c.glue_mb_per_second_per_worker * workload.glue_workers)
    dpu_hours = manifests_month * max(run_s, 60.0) / 3600 * workload.glue_workers * workload.glue_dpu_per_worker
    glue_standard = dpu_hours * p["glue_dpu_hour_standard"]
    glue_flex = dpu_hours * p["glue_dpu_hour_flex"]

    s3_usd = (
        n_month * c.s3_gets_per_file * p["s3_get_request"]
        + manifests_month * c.s3_puts_per_manifest * p["s3_put_request"]
        + gb_in_day * DAYS_PER_MONTH * workload.output_ratio * p["s3_storage_gb_month"]
    )
    sqs_usd = n_month * c.sqs_requests_per_file * p["sqs_request"]
    eb_usd = manifests_month * p["eventbridge_event"]
    kms_usd = p["kms_key_month"] + (n_month * 0.01) * p["kms_request"]  # bucket keys: ~1 KMS call per 100 objects

    transitions = manifests_month * c.sfn_transitions_per_manifest
    gets, puts = n_month * c.s3_gets_per_file, manifests_month * c.s3_puts_per_manifest
    items = [
        LineItem("Lambda", f"{invocations:,.0f} invocations, {gb_s:,.0f} GB-s", lambda_usd),
        LineItem("DynamoDB", f"{writes:,.0f} writes x {c.wru_per_write} WRU, {reads:,.0f} reads", ddb_usd),
        LineItem("Step Functions", f"{manifests_month:,.0f} executions, {transitions:,.0f} transitions", sfn_usd),
        LineItem("S3", f"{gets:,.0f} GET, {puts:,.0f} PUT, one month of Parquet output stored", s3_usd),
        LineItem("SQS", f"{n_month * c.sqs_requests_per_file:,.0f} requests", sqs_usd),
        LineItem("EventBridge", f"{manifests_month:,.0f} ManifestReady events", eb_usd),
        LineItem("KMS", "1 key + requests (S3 bucket keys)", kms_usd),
    ]
    return Estimate(
        workload=workload,
        counts=c,
        files_per_manifest=fpm,
        manifests_per_day=manifests_day,
        glue_seconds_per_run=run_s,
        items=items,
        glue_standard_usd=glue_standard,
        glue_flex_usd=glue_flex,
    )


def render(est: Estimate, prices: Mapping[str, float] = PRICES) -> str:
    w = est.workload
    lines = [
        f"Monthly cost model: {w.files_per_day:,} files/day x {w.mb_per_file} MB "
        f"({w.files_per_day * w.mb_per_file / 1024:,.1f} GB/day), {DAYS_PER_MONTH} days",
        f"  manifests: {est.manifests_per_day:,.0f}/day of {est.files_per_manifest:,.0f} files; "
        f"Glue run ~{est.glue_seconds_per_run:,.0f} s on {w.glue_workers} x {w.glue_dpu_per_worker} DPU "
        f"(billed >= 60 s)",
        f"  counts: {est.counts.source}",
        "",
        f"  {'service':<16}{'USD/month':>12}  detail",
    ]
    for item in est.items:
        lines.append(f"  {item.service:<16}{item.monthly_usd:>12,.2f}  {item.detail}")
    lines += [
        f"  {'Glue STANDARD':<16}{est.glue_standard_usd:>12,.2f}",
        f"  {'Glue FLEX':<16}{est.glue_flex_usd:>12,.2f}",
        f"  {'TOTAL STANDARD':<16}{est.total_standard:>12,.2f}",
        f"  {'TOTAL FLEX':<16}{est.total_flex:>12,.2f}",
        "",
        "  Seed review's own monthly figures (its design, its assumptions), for comparison:",
    ]
    for files, label, usd in SEED_FIGURES:
        lines.append(f"    {files:>9,} files/day  {label:<20} ~${usd:,.0f}/month")
    lines += ["", f"  Prices used ({PRICES_DATE}):"]
    for key, label in PRICE_LABELS.items():
        shown = f"{prices[key] * PRICE_SCALE.get(key, 1.0):.10f}".rstrip("0").rstrip(".")
        lines.append(f"    {label:<58} ${shown}")
    return "\n".join(lines)
