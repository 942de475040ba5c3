"""Freshness: seconds from a file's upload to its rows being in the table's current snapshot, with a
producer uploading at a steady rate into a kept local runtime, on the production timers.

Per rate, for ``--minutes`` (default 10): the local runtime (``ndjson_parquet/local/runtime.py``,
moto + the stack from infra/pipeline.yaml + the same handlers and ASL file, IAM enforced) converts a
one-file seed, then stays up while a producer thread uploads one small NDJSON file every 1/rate
seconds (wall clock; each file's upload time is taken when its PUT returns). The runtime is driven
here with the production timers, no compressed waits: SEAL_MAX_AGE_SECONDS=60 (count_arrivals seals
a date's pending files once the oldest waited that long), ``flush_stale`` every 60 s and ``recover``
every 600 s with the real clock, the state machine's Retry waits unscaled. A file is fresh once a
snapshot that holds its rows is committed: each new snapshot's manifest (its summary's
``manifest_id``) is mapped to its data files and their ``_source_file`` values; its latency is the
snapshot's commit time minus the upload time. After the measured minutes the producer goes on at the
same rate with unmeasured filler files (a steady stream has no end: the last measured files are sealed
as any others) until every measured file is committed, bounded by ``--drain-seconds``; files never
committed by then are reported as missing.

Rates: ``8k``: 8,000 files/day (one every 10.8 s), BATCH_MAX_FILES 200: sealed by age, as in AWS.
``500k``: a scaled stand-in for 500,000 files/day (5.8 files/s, 200-file manifests fill in 34.6 s):
2 files/s with BATCH_MAX_FILES 69, so a manifest fills in the same 34.5 s and is sealed by count.

A local run cannot show AWS's own latencies: they are added from stated constants
(``ndjson_parquet.cost_model.AWS_LATENCY_SECONDS``, the SQS batching window of app.py, and the
converter's cold start measured by bench/engines.py), to every file, cold start included: an
upper bound. Results: ``bench/results/freshness.json``. ``python -m bench.freshness --minutes 10``
(20+ minutes for both rates); ``--minutes 1`` is a smoke. Everything is on loopback; every loop is
bounded by the run's deadline.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "freshness.json"
SEAL_MAX_AGE_SECONDS = 60  # chalicelib/settings.py default (BATCH_MAX_WAIT_SECONDS, flush_stale's, too)
FLUSH_EVERY_SECONDS = 60.0  # app.py FLUSH_RATE_MINUTES default: 1
RECOVER_EVERY_SECONDS = 600.0  # app.py RECOVER_RATE_MINUTES default: 10
LINES_PER_FILE = 20
TARGET_P95_SECONDS = 90.0  # the goal, from upload to queryable


@dataclass(frozen=True)
class Rate:
    name: str
    files_per_second: float
    batch_max_files: int
    stands_for: str


RATES: dict[str, Rate] = {
    "8k": Rate("8k", 8000 / 86400, 200, "8,000 files/day, BATCH_MAX_FILES 200 (sealed by age)"),
    "500k": Rate(
        "500k",
        2.0,
        69,
        "500,000 files/day scaled: 2 files/s x 69-file manifests fill in 34.5 s as 200 files do at 5.79 files/s",
    ),
}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]) of a non-empty sequence."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def aws_added_seconds(cold_start_s: float, states_before_commit: int = 5) -> dict[str, float]:
    """The latencies a local run does not have, per file: stated constants + the measured cold start.
    ``states_before_commit``: Normalize, ClaimRun, IsRunNeeded, ChooseEngine, ConvertWithLambda."""
    from ndjson_parquet.cost_model import AWS_LATENCY_SECONDS as L
    from ndjson_parquet.cost_model import Workload

    return {
        "s3_event_to_sqs": L["s3_event_to_sqs"],
        "sqs_batching_window": Workload(files_per_day=0).ingest_batch_window_seconds,
        "stream_to_lambda": L["stream_to_lambda"],
        "eventbridge_to_target": L["eventbridge_to_target"],
        "sfn_transitions": round(states_before_commit * L["sfn_transition"], 3),
        "lambda_invokes": 2 * L["lambda_invoke"],  # claim_run, converter
        "catalog_commit_extra": L["catalog_commit_extra"],
        "converter_cold_start": cold_start_s,
    }


def summarize(
    uploaded: Mapping[str, float], committed: Mapping[str, float], added: Mapping[str, float]
) -> dict[str, Any]:
    """Latency figures of one rate: local p50/p95/max, and with the AWS latencies added."""
    latencies = [committed[k] - t for k, t in uploaded.items() if k in committed]
    extra = sum(added.values())
    out: dict[str, Any] = {
        "files_uploaded": len(uploaded),
        "files_committed": len(latencies),
        "files_missing": len(uploaded) - len(latencies),
        "aws_added_s": round(extra, 2),
    }
    if latencies:
        p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
        out["local"] = {"p50_s": round(p50, 2), "p95_s": round(p95, 2), "max_s": round(max(latencies), 2)}
        out["with_aws"] = {
            "p50_s": round(p50 + extra, 2),
            "p95_s": round(p95 + extra, 2),
            "max_s": round(max(latencies) + extra, 2),
        }
        out["meets_p95_target"] = out["files_missing"] == 0 and p95 + extra <= TARGET_P95_SECONDS
    else:
        out["meets_p95_target"] = False
    return out


def _converter_cold_start() -> tuple[float, str]:
    from ndjson_parquet.cost_model import load_engine_figures

    figures = load_engine_figures(ROOT / "bench" / "results" / "engines.json")
    return figures.lambda_cold_start_seconds, figures.source


def _file_body(rng: random.Random, seq: int) -> bytes:
    from ndjson_parquet.sample_data import make_event

    lines = [json.dumps(make_event(rng, seq * 1000 + i), separators=(",", ":")) for i in range(LINES_PER_FILE)]
    return ("\n".join(lines) + "\n").encode("utf-8")


class Producer(threading.Thread):
    """Uploads ``count`` measured files, the i-th at start + i / rate (never faster); then keeps the
    same rate with unmeasured filler files until ``stop`` (the stream goes on, as in production: a
    run's last files are sealed by the next arrivals, not by a quiet stream's flush)."""

    def __init__(self, s3: Any, bucket: str, prefix: str, rate: Rate, count: int, stop: threading.Event) -> None:
        super().__init__(name=f"producer-{rate.name}", daemon=True)
        self.s3, self.bucket, self.prefix, self.rate, self.count, self.stop = s3, bucket, prefix, rate, count, stop
        self.uploaded: dict[str, float] = {}
        self.fillers = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.measured_done = threading.Event()

    def run(self) -> None:
        rng = random.Random(7)
        start = time.monotonic()
        i = 0
        while True:  # bounded: ``stop`` is set by the serving loop at the run's deadline at the latest
            due = start + i / self.rate.files_per_second
            if self.stop.wait(max(0.0, due - time.monotonic())):
                return
            measured = i < self.count
            key = f"{self.prefix}{self.rate.name}-{'' if measured else 'filler-'}{i:06d}.ndjson"
            try:
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=_file_body(rng, i))
            except Exception as exc:  # reported, the run goes on: a lost upload is never measured
                self.errors.append(f"{key}: {type(exc).__name__}: {exc}")
            else:
                with self.lock:
                    if measured:
                        self.uploaded[f"s3://{self.bucket}/{key}"] = time.time()
                    else:
                        self.fillers += 1
            i += 1
            if i == self.count:
                self.measured_done.set()


class SnapshotWatcher:
    """Maps each new snapshot of the table to the source files whose rows it committed."""

    def __init__(self, table_config: Any) -> None:
        self.config = table_config
        self.seen: set[int] = set()
        self.committed: dict[str, float] = {}  # source file uri -> commit time (epoch seconds)

    def poll(self) -> int:
        import pyarrow.parquet as pq

        from glue.table import load_table, manifest_files, open_catalog

        table = load_table(open_catalog(self.config), self.config)
        if table is None:
            return 0
        new = 0
        for snapshot in table.metadata.snapshots:
            if snapshot.snapshot_id in self.seen:
                continue
            self.seen.add(snapshot.snapshot_id)
            props = snapshot.summary.additional_properties if snapshot.summary else {}
            manifest_id = props.get("manifest_id")
            if not manifest_id:
                continue
            at = snapshot.timestamp_ms / 1000
            for data_file in manifest_files(table, manifest_id):
                path = data_file.file_path.removeprefix("file://")
                column = pq.read_table(path, columns=["_source_file"]).column(0)
                for uri in set(column.to_pylist()):
                    self.committed.setdefault(uri, at)
                    new += 1
        return new


def _production_timers() -> None:
    """The state machine's waits as in AWS: the local host scales Retry waits and the .sync poll."""
    from ndjson_parquet.local import stepfunctions

    stepfunctions.RETRY_WAIT_SCALE = 1.0
    stepfunctions.SYNC_POLL_SECONDS = 0.5  # moto's own default poll of GetJobRun


def serve_on_production_timers(
    pipeline: Any, producer: Producer, watcher: SnapshotWatcher, deadline: float, log: Callable[[str], None]
) -> dict[str, int]:
    """The Lambda event sources and the schedule, with the real clock, until every uploaded file is
    committed after the producer stopped, or until ``deadline`` (monotonic)."""
    import boto3

    import app as chalice_app
    from chalicelib.batching import flush_stale
    from chalicelib.workflow.recover import recover_from_settings
    from ndjson_parquet.local.callers import acting_session
    from ndjson_parquet.local.pumps import StreamPump, pump_sqs
    from ndjson_parquet.local.runtime import STAGE, _Context, lambda_sqs_event
    from ndjson_parquet.sessions import new_session

    outputs = pipeline.outputs
    polling = acting_session() if pipeline.callers else new_session()
    sqs = polling.client("sqs")
    requeue_sqs = boto3.client("sqs")
    queue_arn = outputs["IngestQueueArn"]

    def handle_sqs(messages: list[Any]) -> None:
        chalice_app.track_files(lambda_sqs_event(messages, queue_arn), _Context(f"ndjson-parquet-{STAGE}-track_files"))

    def handle_stream(records: list[dict[str, Any]]) -> None:
        chalice_app.count_arrivals({"Records": records}, _Context(f"ndjson-parquet-{STAGE}-count_arrivals"))

    stream = getattr(pipeline, "_stream_pump", None) or StreamPump(
        polling.client("dynamodbstreams"), outputs["TableStreamArn"], handle_stream
    )
    stats = {"flushes": 0, "recovers": 0, "handler_errors": 0, "polls": 0}

    def attempt(role: str, step: Callable[[], Any]) -> Any:
        try:
            with pipeline.acting(role):
                return step()
        except Exception as exc:  # as Lambda: the batch or the scheduled run is retried later
            stats["handler_errors"] += 1
            logging.getLogger(__name__).warning("%s step failed (retried): %s: %s", role, type(exc).__name__, exc)
            return None

    started = time.monotonic()
    next_flush, next_recover, next_poll = started + FLUSH_EVERY_SECONDS, started + RECOVER_EVERY_SECONDS, started
    next_line = started + 30
    while time.monotonic() < deadline:
        moved = (
            attempt(
                "tracker",
                lambda: pump_sqs(sqs, outputs["IngestQueueUrl"], handle_sqs, batch_size=100, requeue_sqs=requeue_sqs),
            )
            or 0
        )
        moved += attempt("batching", stream.pump) or 0
        now = time.monotonic()
        if now >= next_flush:
            attempt("batching", flush_stale)  # the real clock
            stats["flushes"] += 1
            next_flush += FLUSH_EVERY_SECONDS
        if now >= next_recover:
            attempt("workflow", recover_from_settings)
            stats["recovers"] += 1
            next_recover += RECOVER_EVERY_SECONDS
        if now >= next_poll:
            watcher.poll()
            stats["polls"] += 1
            next_poll = now + 1.0
        with producer.lock:
            uploaded = dict(producer.uploaded)
        if now >= next_line:
            log(f"  {len(uploaded)} uploaded, {sum(1 for k in uploaded if k in watcher.committed)} committed")
            next_line = now + 30
        if producer.measured_done.is_set() and all(k in watcher.committed for k in uploaded):
            break
        if not moved:
            time.sleep(0.2)
    return stats


def measure_rate(
    rate: Rate, minutes: float, drain_seconds: float, shared: Any, log: Callable[[str], None]
) -> dict[str, Any]:
    import boto3

    from chalicelib.settings import get_settings
    from ndjson_parquet.local.runtime import LocalPipeline, RunOptions

    work = Path(tempfile.mkdtemp(prefix=f"bench-freshness-{rate.name}-"))
    try:
        seed = work / "seed"
        seed.mkdir()
        (seed / "seed.ndjson").write_bytes(_file_body(random.Random(1), 999_999))
        opts = RunOptions(
            input_dir=seed,
            output_dir=work / "table",
            batch_max_files=rate.batch_max_files,
            compression="zstd",
            keep_running=True,
        )
        pipeline = LocalPipeline(opts, progress=lambda m: None)
        count = int(rate.files_per_second * minutes * 60)
        result: dict[str, Any] = {}

        def on_ready(endpoint: Any) -> None:
            # The stack's values (.chalice/config.json); the local runtime sets a 900 s flush wait.
            os.environ["SEAL_MAX_AGE_SECONDS"] = str(SEAL_MAX_AGE_SECONDS)
            os.environ["BATCH_MAX_WAIT_SECONDS"] = str(SEAL_MAX_AGE_SECONDS)
            get_settings.cache_clear()
            outputs = pipeline.outputs
            s3 = boto3.client("s3")  # the deployer's keys, as `ndjson-parquet smoke` uploads
            prefix = outputs.get("InputPrefix", "").strip("/")
            stop = threading.Event()
            producer = Producer(s3, outputs["InputBucketName"], f"{prefix}/" if prefix else "", rate, count, stop)
            watcher = SnapshotWatcher(pipeline.table)
            watcher.poll()  # the seed's snapshot: not measured
            started = time.monotonic()
            producer.start()
            try:
                stats = serve_on_production_timers(
                    pipeline, producer, watcher, started + minutes * 60 + drain_seconds, log
                )
            finally:
                stop.set()
                producer.join(timeout=30)
            result.update(
                uploaded=dict(producer.uploaded),
                committed=dict(watcher.committed),
                stats=stats,
                upload_errors=producer.errors[:10],
                filler_files=producer.fillers,
                wall_s=round(time.monotonic() - started, 1),
            )

        report = pipeline.run(on_ready=on_ready, shared=shared)
        if "uploaded" not in result:
            raise RuntimeError(f"the runtime ended before serving: {report.problems}")
        result["problems"] = list(report.problems)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(
    rates: Sequence[str], minutes: float, drain_seconds: float, out: Path, log: Callable[[str], None] = print
) -> dict:
    from bench.engines import git_commit
    from ndjson_parquet.local.runtime import shared_services

    commit, dirty = git_commit()
    cold_start, cold_source = _converter_cold_start()
    added = aws_added_seconds(cold_start)
    _production_timers()
    results: dict[str, Any] = {}
    with shared_services() as shared:
        for name in rates:
            rate = RATES[name]
            log(f"rate {name}: {rate.files_per_second:.4f} files/s for {minutes:g} min ({rate.stands_for})")
            raw = measure_rate(rate, minutes, drain_seconds, shared, log)
            summary = summarize(raw["uploaded"], raw["committed"], added)
            results[name] = {
                "stands_for": rate.stands_for,
                "files_per_second": round(rate.files_per_second, 4),
                "batch_max_files": rate.batch_max_files,
                "minutes": minutes,
                **summary,
                "runtime": raw["stats"],
                "wall_s": raw["wall_s"],
                "upload_errors": raw["upload_errors"],
                "filler_files": raw["filler_files"],
                "problems": raw["problems"],
            }
            log(
                f"rate {name}: " + json.dumps({k: results[name].get(k) for k in ("local", "with_aws", "files_missing")})
            )
    payload = {
        "what": "seconds from upload to the file's rows in the table's current snapshot, local runtime, real timers",
        "commit": commit,
        "dirty": dirty,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "timers": {
            "SEAL_MAX_AGE_SECONDS": SEAL_MAX_AGE_SECONDS,
            "flush_stale_every_s": FLUSH_EVERY_SECONDS,
            "recover_every_s": RECOVER_EVERY_SECONDS,
            "state_machine_retry_waits": "unscaled",
        },
        "aws_added_per_file_s": added,
        "aws_added_note": (
            "stated constants (ndjson_parquet/cost_model.py AWS_LATENCY_SECONDS, app.py's SQS batching window) and the "
            f"converter's cold start ({cold_source}), added to every file: an upper bound"
        ),
        "target_p95_s": TARGET_P95_SECONDS,
        "rates": results,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2) + "\n")
    log(f"wrote {out}")
    return payload


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.freshness", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="producer minutes per rate (default 10)")
    parser.add_argument("--rates", default="8k,500k", help=f"comma-separated, of {', '.join(RATES)}")
    parser.add_argument("--drain-seconds", type=float, default=300.0, help="after the producer stops, at most")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    rates = [r.strip() for r in args.rates.split(",") if r.strip()]
    unknown = [r for r in rates if r not in RATES]
    if unknown or not rates or args.minutes <= 0 or args.drain_seconds < 0:
        parser.error(f"--rates of {', '.join(RATES)}; --minutes > 0; --drain-seconds >= 0 (got {unknown or rates})")
    sys.path.insert(0, str(ROOT))
    payload = run(rates, args.minutes, args.drain_seconds, args.out, log=lambda m: print(m, flush=True))
    return 0 if all(r["files_missing"] == 0 for r in payload["rates"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
