"""``ndjson-parquet generate``: deterministic sample NDJSON files (same seed, same bytes)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ndjson_parquet.sample_data import generate

HELP = "Generate deterministic NDJSON sample files (nested events, unicode, a share of bad lines)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("samples/input"), help="output directory")
    parser.add_argument("--files", type=int, default=12, help="number of files")
    parser.add_argument("--mb", type=float, default=0.5, help="approximate size of each file in MB")
    parser.add_argument("--bad-rate", type=float, default=0.01, help="share of invalid lines, 0..1")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument("--gzip-every", type=int, default=0, help="gzip every Nth file (0: none)")


def main(args: argparse.Namespace) -> int:
    try:
        made = generate(args.out, args.files, args.mb, args.bad_rate, args.seed, gzip_every=args.gzip_every)
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    lines = sum(f.lines for f in made)
    bad = sum(f.bad_lines for f in made)
    size = sum(f.size for f in made)
    print(f"wrote {len(made)} files, {lines} lines ({bad} bad), {size / 1e6:.1f} MB to {args.out}")
    return 0
