"""``ndjson-parquet cost``: the monthly cost model, its engine split and freshness, next to the seed
review's own figures."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from ndjson_parquet.cost_model import (
    LEGACY_ENGINES,
    LEGACY_GLUE_PATH,
    Workload,
    estimate,
    load_counts,
    load_engine_figures,
    render,
    to_json,
)

HELP = "Print the monthly AWS cost model for N files/day (Lambda, DynamoDB, Step Functions, Glue, S3, ...)."
RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
DEFAULT_BENCH = RESULTS / "control_plane.json"
DEFAULT_ENGINES = RESULTS / "engines.json"
_W = Workload(files_per_day=0)  # the defaults: the stack's (tests/infra/test_cost_model.py ties them)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--files-per-day", type=int, required=True, help="files landing per day")
    parser.add_argument("--mb-per-file", type=float, default=_W.mb_per_file, help="average file size in MB (default 5)")
    parser.add_argument(
        "--batch-max-files", type=int, default=_W.batch_max_files, help="files per manifest at most (BATCH_MAX_FILES)"
    )
    parser.add_argument(
        "--seal-max-age",
        type=int,
        default=_W.seal_max_age_seconds,
        help=f"SEAL_MAX_AGE_SECONDS (default {_W.seal_max_age_seconds})",
    )
    parser.add_argument(
        "--flush-rate-minutes", type=int, default=_W.flush_rate_minutes, help="flush_stale schedule (minutes)"
    )
    parser.add_argument(
        "--lambda-max-mb",
        type=float,
        default=_W.lambda_max_bytes / 2**20,
        help="LAMBDA_MAX_BYTES in MiB: larger manifests go to Glue",
    )
    parser.add_argument(
        "--engine", choices=("auto", "lambda", "glue"), default=_W.convert_engine, help="CONVERT_ENGINE (default auto)"
    )
    parser.add_argument(
        "--converter-memory-mb", type=int, default=_W.converter_memory_mb, help="ConverterMemoryMB (2 vCPU at 3538)"
    )
    parser.add_argument("--glue-workers", type=int, default=_W.glue_workers, help="Glue workers per run (G.1X)")
    parser.add_argument(
        "--legacy",
        action="store_true",
        help="the stack and model before the engine choice: Glue only, 900 s seal, 5-min flush, its Glue figures",
    )
    parser.add_argument("--bench", type=Path, default=DEFAULT_BENCH, help="measured request counts (JSON)")
    parser.add_argument("--engines-bench", type=Path, default=DEFAULT_ENGINES, help="measured engine figures (JSON)")
    parser.add_argument("--json", action="store_true", help="print the estimate as JSON")


def main(args: argparse.Namespace) -> int:
    if args.files_per_day < 0 or args.mb_per_file <= 0:
        print("error: --files-per-day must be >= 0 and --mb-per-file > 0")
        return 2
    if args.seal_max_age < 0 or args.flush_rate_minutes < 1 or args.lambda_max_mb < 0 or args.glue_workers < 2:
        print("error: --seal-max-age >= 0, --flush-rate-minutes >= 1, --lambda-max-mb >= 0, --glue-workers >= 2")
        return 2
    workload = Workload(
        files_per_day=args.files_per_day,
        mb_per_file=args.mb_per_file,
        batch_max_files=args.batch_max_files,
        seal_max_age_seconds=args.seal_max_age,
        flush_rate_minutes=args.flush_rate_minutes,
        lambda_max_bytes=int(args.lambda_max_mb * 2**20),
        convert_engine=args.engine,
        converter_memory_mb=args.converter_memory_mb,
        glue_workers=args.glue_workers,
    )
    if args.legacy:
        workload = replace(
            workload, seal_max_age_seconds=900, flush_rate_minutes=5, convert_engine="glue", glue_path=LEGACY_GLUE_PATH
        )
    engines = LEGACY_ENGINES if args.legacy else load_engine_figures(args.engines_bench)
    est = estimate(workload, load_counts(args.bench), engines)
    if args.json:
        print(json.dumps(to_json(est), indent=2))
    else:
        print(render(est))
    return 0
