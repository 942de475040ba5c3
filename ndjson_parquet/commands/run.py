"""``ndjson-parquet run``: the whole pipeline on this machine (see ndjson_parquet.local.runtime)."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HELP = (
    "Run the whole pipeline locally (moto + Chalice handlers + Step Functions ASL + the converter Lambda"
    " or the Glue job in Spark)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input", required=True, type=Path, help="directory of NDJSON files (YYYY-MM-DD/ first folder = date)"
    )
    parser.add_argument("--output", required=True, type=Path, help="where the dataset (an Iceberg table) is written")
    parser.add_argument("--quarantine", type=Path, help="where bad lines go (default: <output>-quarantine)")
    parser.add_argument("--summary-json", type=Path, help="write the closing figures as JSON here")
    parser.add_argument("--batch-max-files", type=int, default=200, help="files per manifest (BATCH_MAX_FILES)")
    parser.add_argument("--shards", type=int, default=10, help="write shards per date (SHARD_COUNT)")
    parser.add_argument("--compression", default="snappy", help="Parquet codec: snappy, gzip, zstd, lz4, brotli, none")
    parser.add_argument("--schema", type=Path, help="explicit schema (Spark DDL or StructType JSON)")
    parser.add_argument(
        "--schema-mode",
        default="addNewColumns",
        choices=("addNewColumns", "rescue", "failOnNewColumns"),
        help="the table's schema policy: new fields become columns, are rescued, or fail the manifest",
    )
    parser.add_argument(
        "--engine",
        default="auto",
        choices=("auto", "lambda", "glue"),
        help="conversion engine (CONVERT_ENGINE): auto = the stack's rule (manifests up to LAMBDA_MAX_BYTES go to "
        "the converter Lambda, larger ones to Glue), or every manifest to one engine; Java is needed only for Glue",
    )
    parser.add_argument("--port", type=int, default=0, help="port of the local AWS endpoint (0 = any free port)")
    parser.add_argument(
        "--idle-timeout", type=float, default=300.0, help="give up after this many seconds without progress"
    )
    parser.add_argument(
        "--keep-running", action="store_true", help="leave the local endpoint up afterwards for status/replay/..."
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")


class _ProgressPrinter:
    """One status line, rewritten in place on a terminal; whole lines, at most every 2 s, in logs."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.started = time.monotonic()
        self.last_print = 0.0
        self.width = 0

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        elapsed = time.monotonic() - self.started
        text = f"[{elapsed:6.1f}s] {message}"
        if self.tty:
            pad = max(0, self.width - len(text))
            sys.stderr.write("\r" + text + " " * pad)
            sys.stderr.flush()
            self.width = len(text)
        elif time.monotonic() - self.last_print >= 2.0 or not message.startswith(("upload", "files tracked")):
            sys.stderr.write(text + "\n")
            self.last_print = time.monotonic()

    def done(self) -> None:
        if self.tty and not self.quiet and self.width:
            sys.stderr.write("\n")


def main(args: argparse.Namespace) -> int:
    import logging

    # Handlers and the job log at INFO for CloudWatch; on a terminal the closing table is the story.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from ndjson_parquet.local.collect import OutputDirError
    from ndjson_parquet.local.runtime import LocalPipeline, RunOptions, RuntimeSetupError
    from ndjson_parquet.local.server import PortInUseError

    for name in ("batch_max_files", "shards"):
        if getattr(args, name) < 1:
            print(f"error: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 2
    opts = RunOptions(
        input_dir=args.input,
        output_dir=args.output,
        quarantine_dir=args.quarantine,
        summary_json=args.summary_json,
        batch_max_files=args.batch_max_files,
        shards=args.shards,
        compression=args.compression,
        schema_path=args.schema,
        schema_mode=args.schema_mode,
        engine=args.engine,
        port=args.port,
        keep_running=args.keep_running,
        idle_timeout_seconds=args.idle_timeout,
    )
    progress = _ProgressPrinter(args.quiet)
    pipeline = LocalPipeline(opts, progress)

    def hold(endpoint) -> None:
        if not args.keep_running:
            return
        progress.done()
        print(f"local AWS endpoint: {endpoint.url}", flush=True)
        operator = pipeline.callers.get("operator")
        keys = ""
        if operator is not None:  # IAM is enforced: the operator commands need the operator role's keys
            keys = f"AWS_ACCESS_KEY_ID={operator.access_key} AWS_SECRET_ACCESS_KEY={operator.secret_key} "
            print(f"operator credentials: {keys.strip()}", flush=True)
        if operator is not None:  # the deployer's role: uploads, `ndjson-parquet smoke`
            key, secret = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
            print(f"administrator credentials: AWS_ACCESS_KEY_ID={key} AWS_SECRET_ACCESS_KEY={secret}", flush=True)
        print(f"try: {keys}ndjson-parquet status --endpoint-url {endpoint.url} --stage local", flush=True)
        print("new uploads are processed until Ctrl-C (the step in flight finishes; twice: at once)", flush=True)
        pipeline.serve_until_interrupted()

    try:
        report = pipeline.run(on_ready=hold)
    except (RuntimeSetupError, PortInUseError, OutputDirError) as exc:
        progress.done()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    progress.done()
    print(report.render_table())
    if report.unsupported_resources:
        print(
            "not created locally (moto has no support; not needed to run): " + ", ".join(report.unsupported_resources)
        )
    print(f"table:      {opts.output_dir} (Iceberg, catalog {opts.output_dir / 'catalog.db'})")
    print(f"quarantine: {opts.quarantine}")
    if args.summary_json:
        report.write_json(args.summary_json)
        print(f"summary:    {args.summary_json}")
    query = "select _manifest_id, count(*) as n_rows from dataset group by all order by all"
    print(f'query it:   ndjson-parquet sql {opts.output_dir} "{query}"')
    return 0 if report.reconciled else 1
