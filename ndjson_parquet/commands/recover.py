"""``ndjson-parquet recover``: the scheduled recover, once, now; prints every action and the counts."""

from __future__ import annotations

import argparse
import json

HELP = "Fix stuck manifests and claims now (what the scheduled recover does) and print each action."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the counts and actions as JSON")


def main(args: argparse.Namespace) -> int:
    from chalicelib.workflow.recover import recover_from_settings

    report = recover_from_settings()
    if args.json:
        print(json.dumps({**report.counts(), "actions": report.actions}))
    else:
        for action in report.actions:
            print(action)
        print(" ".join(f"{k}={v}" for k, v in report.counts().items()))
    return 1 if report.errors else 0
