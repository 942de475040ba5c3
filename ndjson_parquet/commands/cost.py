"""``ndjson-parquet cost``: the monthly cost model, next to the seed review's own figures."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from ndjson_parquet.cost_model import Workload, estimate, load_counts, render

HELP = "Print the monthly AWS cost model for N files/day (Lambda, DynamoDB, Step Functions, Glue, S3, ...)."
DEFAULT_BENCH = Path(__file__).resolve().parents[2] / "bench" / "results" / "control_plane.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--files-per-day", type=int, required=True, help="files landing per day")
    parser.add_argument("--mb-per-file", type=float, default=5.0, help="average file size in MB (default 5)")
    parser.add_argument("--batch-max-files", type=int, default=200, help="files per manifest at most (BATCH_MAX_FILES)")
    parser.add_argument("--batch-max-wait", type=int, default=900, help="BATCH_MAX_WAIT_SECONDS")
    parser.add_argument("--glue-workers", type=int, default=2, help="Glue workers per run (G.1X = 1 DPU each)")
    parser.add_argument("--bench", type=Path, default=DEFAULT_BENCH, help="measured request counts (JSON)")
    parser.add_argument("--json", action="store_true", help="print the estimate as JSON")


def main(args: argparse.Namespace) -> int:
    if args.files_per_day < 0 or args.mb_per_file <= 0:
        print("error: --files-per-day must be >= 0 and --mb-per-file > 0")
        return 2
    workload = Workload(
        files_per_day=args.files_per_day,
        mb_per_file=args.mb_per_file,
        batch_max_files=args.batch_max_files,
        batch_max_wait_seconds=args.batch_max_wait,
        glue_workers=args.glue_workers,
    )
    est = estimate(workload, load_counts(args.bench))
    if args.json:
        payload = {
            "workload": asdict(workload),
            "counts": asdict(est.counts),
            "items": [asdict(i) for i in est.items],
            "glue_standard_usd": round(est.glue_standard_usd, 2),
            "glue_flex_usd": round(est.glue_flex_usd, 2),
            "total_standard_usd": round(est.total_standard, 2),
            "total_flex_usd": round(est.total_flex, 2),
        }
        print(json.dumps(payload, indent=2))
    else:
        print(render(est))
    return 0
