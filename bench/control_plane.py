"""DynamoDB requests per tracked file and per sealed manifest, counted with a botocore hook.

Runs the control plane against an in-process moto server: N objects put into a notified
bucket, the ingest queue pumped through ``tracker.track_messages`` (batches of 100, as
configured), the stream through ``batching.count_arrivals`` (batches of 100), then one
``flush_stale``. Counts are requests (what on-demand bills per unit of work), not timings;
``python -m bench.control_plane [N]`` prints them and writes bench/results/control_plane.json.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections import Counter
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

RESULTS = Path(__file__).resolve().parent / "results" / "control_plane.json"
REGION = "us-east-1"


class RequestCounter:
    """Counts DynamoDB API calls per phase and operation (botocore ``before-call`` hook)."""

    def __init__(self) -> None:
        self.phase = "setup"
        self.calls: dict[str, Counter[str]] = {}

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls.setdefault(self.phase, Counter())[model.name] += 1

    def total(self, phase: str) -> int:
        return sum(self.calls.get(phase, Counter()).values())


@contextmanager
def _moto() -> Any:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    saved = dict(os.environ)
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://{host}:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_METRICS_NAMESPACE="Bench",
        LOG_LEVEL="WARNING",
    )
    try:
        yield
    finally:
        server.stop()
        os.environ.clear()
        os.environ.update(saved)


def run(n_files: int = 1000, max_files: int = 200, shard_count: int = 10) -> dict[str, Any]:
    from chalicelib import batching, tracker
    from chalicelib.batching import Deps
    from chalicelib.settings import Settings
    from chalicelib.tracking_table import TrackingTable
    from ndjson_parquet.local.pumps import StreamPump, pump_sqs
    from tests.functional.control_plane.resources import create_control_plane, stage_environment

    env = {**stage_environment("test"), "SHARD_COUNT": str(shard_count), "BATCH_MAX_FILES": str(max_files)}
    clients = {s: boto3.client(s, region_name=REGION) for s in ("dynamodb", "dynamodbstreams", "s3", "sqs", "events")}
    res = create_control_plane(clients, env)
    settings = Settings.from_env(env)
    counter = RequestCounter()
    ddb = boto3.client("dynamodb", region_name=REGION)
    ddb.meta.events.register("before-call.dynamodb", counter)
    deps = Deps.build(settings=settings, store=TrackingTable(ddb, settings.table_name))

    for i in range(n_files):
        clients["s3"].put_object(Bucket=res.input_bucket, Key=f"2024-05-06/part-{i:06d}.ndjson", Body=b'{"a":1}\n')

    real_seal_next = batching.seal_next

    def seal_next(*args: Any, **kwargs: Any) -> Any:  # attribute seal requests to the seal phase
        previous, counter.phase = counter.phase, "seal"
        try:
            return real_seal_next(*args, **kwargs)
        finally:
            counter.phase = previous

    batching.seal_next = seal_next
    try:
        counter.phase = "track"
        pump_sqs(
            clients["sqs"],
            res.ingest_queue_url,
            lambda msgs: tracker.track_messages(msgs, store=deps.store, settings=settings),
            batch_size=100,
        )
        counter.phase = "count"
        seals: list[Any] = []
        StreamPump(
            clients["dynamodbstreams"],
            res.stream_arn,
            lambda recs: seals.extend(
                batching.count_arrivals([(r["eventName"], r["dynamodb"].get("NewImage")) for r in recs], deps).seals
            ),
            batch_size=100,
        ).pump()
        counter.phase = "flush"
        flushed = batching.flush_stale(deps, now=datetime.now(UTC) + timedelta(days=1))
    finally:
        batching.seal_next = real_seal_next

    sealed = [s for s in [*seals, *flushed] if s.status == "sealed"]
    stream_invocations = -(-n_files // 100)
    return {
        "files": n_files,
        "batch_max_files": max_files,
        "shard_count": shard_count,
        "manifests_sealed": len(sealed),
        "files_per_manifest": [s.file_count for s in sealed],
        "requests_per_tracked_file": round(counter.total("track") / n_files, 3),
        "requests_per_counted_file": round(counter.total("count") / n_files, 3),
        "requests_per_sealed_manifest": round(counter.total("seal") / max(1, len(sealed)), 1),
        "requests_per_file_end_to_end": round(sum(counter.total(p) for p in ("track", "count", "seal")) / n_files, 3),
        "flush_requests_one_run": counter.total("flush"),
        "stream_invocations": stream_invocations,
        "by_phase_and_operation": {phase: dict(sorted(ops.items())) for phase, ops in counter.calls.items()},
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    n_files = int(args[0]) if args else 1000
    with _moto():
        result = run(n_files)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for name, value in result.items():
        if name != "by_phase_and_operation":
            print(f"  {name:32} {value}")
    for phase, ops in result["by_phase_and_operation"].items():
        print(f"  {phase:8} " + ", ".join(f"{op}={n}" for op, n in ops.items()))
    print(f"  written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
