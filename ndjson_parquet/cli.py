"""``ndjson-parquet`` command line: one subcommand per module in ``ndjson_parquet.commands``."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

# Order shown in --help. A name whose module does not exist yet is simply not offered.
COMMANDS = (
    "run",
    "sql",
    "schema",
    "generate",
    "status",
    "replay",
    "redrive",
    "recover",
    "release",
    "backfill",
    "cost",
    "iam",
    "smoke",
)
# Commands that operate a deployed pipeline (or the local runtime's endpoint).
OPERATOR_COMMANDS = frozenset({"status", "replay", "redrive", "recover", "release", "backfill", "smoke"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ndjson-parquet",
        description="Event-driven NDJSON to Parquet pipeline: run it locally, operate it on AWS.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module_name = f"ndjson_parquet.commands.{name}"
        if importlib.util.find_spec(module_name) is None:
            continue
        module = importlib.import_module(module_name)
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        if name in OPERATOR_COMMANDS:
            from ndjson_parquet.stack_env import add_aws_options

            add_aws_options(cmd)
        cmd.set_defaults(_module=module, _operator=name in OPERATOR_COMMANDS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args._operator:
            from ndjson_parquet.stack_env import StackNotFoundError, apply_aws_options

            try:
                needs = getattr(args._module, "needs_stack", lambda _args: True)(args)
                apply_aws_options(args, needs_stack=needs)
            except StackNotFoundError as exc:
                print(f"error: {exc}; pass --stage/--endpoint-url or set TABLE_NAME etc.", file=sys.stderr)
                return 2
        return int(args._module.main(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
