"""Control-plane load run: ``make load FILES=20000`` (``python -m bench.load --files N``).

N small objects go into the input bucket of the stack deployed from infra/pipeline.yaml into a
moto server running in a *separate process* (so this process's peak RSS is the handlers', the
pollers' and boto3's, not moto's). S3 notifications land in the ingest queue as moto produces
them; while they arrive (the clock runs from the first one), 2-4 concurrent pollers hand SQS batches to the Chalice
``track_files`` handler and stream batches (split across the same number of workers, like a
ParallelizationFactor) to ``count_arrivals``, which seals manifests and emits ManifestReady;
one ``flush_stale`` seals the remainder, as the schedule would. The Glue step is not run: the
rule's events are captured by an SQS tap on the same rule instead.

Reported: files/s through the control plane, DynamoDB requests per file (by operation), the
largest number of items one Query/Scan returned, peak RSS of this process, and the check that
every file is in exactly one manifest and every manifest was announced once. Results JSON:
bench/results/load.json. Exit code 1 if the check fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import requests

RESULTS = Path(__file__).resolve().parent / "results" / "load.json"
STAGE = "local"
REDELIVERY_SECONDS = 20  # ingest queue visibility timeout for this run (the stack's is 360 s)


class DynamoDBMeter:
    """botocore ``after-call`` hook on the handlers' shared DynamoDB client: requests per
    operation and the largest page a Query/Scan returned (docs/invariants.md #3: every read is bounded)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.max_items: dict[str, int] = {"Query": 0, "Scan": 0}
        self._lock = threading.Lock()

        self.seconds: Counter[str] = Counter()

    def start(self, context: dict[str, Any], **_: Any) -> None:
        context["meter_t0"] = time.perf_counter()

    def __call__(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1
            self.seconds[model.name] += time.perf_counter() - context.get("meter_t0", time.perf_counter())
            if model.name in self.max_items:
                self.max_items[model.name] = max(self.max_items[model.name], len(parsed.get("Items", [])))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto(port: int, stock: bool = False) -> subprocess.Popen[bytes]:
    """moto's server in its own process; by default with bench/fast_moto.py's two hot-spot fixes."""
    stock_server = [str(Path(sys.executable).with_name("moto_server"))]
    server = stock_server if stock else [sys.executable, "-m", "bench.fast_moto"]
    proc = subprocess.Popen(
        [*server, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parent.parent,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("moto_server did not start")


def upload(bucket: str, count: int, threads: int = 8) -> None:
    """``count`` one-line NDJSON objects, spread over keys with spaces and unicode now and then."""

    def put(start: int) -> None:
        s3 = boto3.session.Session().client("s3")
        for i in range(start, count, threads):
            key = f"load/part {i // 1000:03d}/file-{i:06d}{'-é' if i % 97 == 0 else ''}.ndjson"
            s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({"id": i}).encode() + b"\n")

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, range(threads)))


def notify(bucket: str, queue_url: str, count: int, handled: Callable[[], int], max_backlog: int = 300) -> None:
    """Faster stand-in for ``upload`` (``--source notifications``): the S3 ObjectCreated messages
    moto would send, in its shape (tests/events/s3_object_created.json: URL-encoded keys, ``+`` for
    space), straight into the ingest queue. The control plane never reads the objects."""
    from urllib.parse import quote_plus

    sqs = boto3.client("sqs")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    entries = []
    for i in range(count):
        key = f"load/part {i // 1000:03d}/file-{i:06d}{'-é' if i % 97 == 0 else ''}.ndjson"
        record = {
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": now,
            "eventName": "ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                "object": {"key": quote_plus(key, safe="/"), "size": 12, "eTag": f"{i:032x}"},
            },
        }
        entries.append({"Id": str(len(entries)), "MessageBody": json.dumps({"Records": [record]})})
        if len(entries) == 10 or i == count - 1:
            sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            entries = []
        if i % 100 == 99:
            # moto scans the whole queue on every receive (and on every GetQueueAttributes), so a
            # deep backlog makes each request slower (real SQS does not): keep the backlog near
            # what the pollers take per round, counted here rather than asked of the queue.
            while i + 1 - handled() > max_backlog:
                time.sleep(0.05)


def queue_depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def run(
    files: int, pollers: int, batch_max_files: int, shards: int, source: str = "upload", stock_moto: bool = False
) -> dict[str, Any]:
    # Handlers log and emit metrics to stdout in Lambda; here they would bury the figures. Set
    # before the handlers' modules are imported: their Logger reads the level at import.
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    from chalicelib import aws
    from chalicelib.batching import flush_stale
    from ndjson_parquet.infra_template import deploy_to_endpoint, stack_name
    from ndjson_parquet.local.event_tap import EventTap
    from ndjson_parquet.local.pumps import StreamPump, pump_sqs
    from ndjson_parquet.local.runtime import RunOptions, _Context, configure_handlers, lambda_sqs_event, read_state
    from ndjson_parquet.local.server import local_aws_environment

    port = free_port()
    moto = start_moto(port, stock=stock_moto)
    url = f"http://127.0.0.1:{port}"
    os.environ.update(local_aws_environment(url))
    os.environ.pop("AWS_PROFILE", None)
    try:
        logging.getLogger("moto").setLevel(logging.ERROR)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            outputs = deploy_to_endpoint(boto3.client("cloudformation"), stack_name(STAGE), {"Stage": STAGE})
        opts = RunOptions(input_dir=Path("."), output_dir=Path("."), batch_max_files=batch_max_files, shards=shards)
        configure_handlers(outputs, opts)
        import app as chalice_app

        meter = DynamoDBMeter()
        aws.client("dynamodb").meta.events.register("before-call.dynamodb", meter.start)
        aws.client("dynamodb").meta.events.register("after-call.dynamodb", meter)
        events = boto3.client("events")
        bus = outputs["EventBusName"]
        rules = events.list_rules(EventBusName=bus)["Rules"]
        # The Glue step is not part of this run: the rule's Step Functions target is replaced by
        # an SQS tap on the same rule (moto cannot deliver to a state machine out of process).
        tap = None
        for rule in (r["Name"] for r in rules):
            targets = events.list_targets_by_rule(Rule=rule, EventBusName=bus)["Targets"]
            sfn_targets = [t["Id"] for t in targets if ":states:" in t["Arn"]]
            if sfn_targets:
                events.remove_targets(Rule=rule, EventBusName=bus, Ids=sfn_targets)
                tap = EventTap.attach(events, boto3.client("sqs"), rule, bus)
        if tap is None:
            raise RuntimeError(f"no rule on {bus} targets the state machine")

        # Arrivals run while the pollers work (as in production): moto's queue gets slower per
        # request as it grows, so filling it first would measure moto, not the control plane.
        sending_done = threading.Event()
        upload_seconds = 0.0

        def arrive() -> None:
            nonlocal upload_seconds
            t0 = time.perf_counter()
            try:
                if source == "upload":
                    upload(outputs["InputBucketName"], files)
                else:
                    notify(outputs["InputBucketName"], outputs["IngestQueueUrl"], files, lambda: handled_messages)
            finally:
                upload_seconds = time.perf_counter() - t0
                sending_done.set()

        sqs = boto3.client("sqs")
        queue_url, queue_arn = outputs["IngestQueueUrl"], outputs["IngestQueueArn"]
        # moto's ReceiveMessage is not atomic across threads: now and then two pollers get the same
        # message, and the loser's delete leaves it in flight until the visibility timeout. The
        # stack's 6 minutes (sized for Lambda) would then be idle tail; the redelivery is tracked
        # as a duplicate either way (counted below as sqs_redeliveries).
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": str(REDELIVERY_SECONDS)})
        handler_errors: list[str] = []
        handled_messages = 0  # one file per message: the arrivals' backpressure counter
        handled_lock = threading.Lock()

        def handle_sqs(messages: list[Any]) -> None:
            nonlocal handled_messages
            chalice_app.track_files(lambda_sqs_event(messages, queue_arn), _Context("track_files"))
            with handled_lock:
                handled_messages += len(messages)

        def sqs_poller() -> None:
            client = boto3.session.Session().client("sqs")
            idle = 0
            while idle < 3:
                # Only empty receives that began after the last send count towards stopping.
                sent_all = sending_done.is_set()
                try:
                    n = pump_sqs(client, queue_url, handle_sqs, batch_size=100)
                except Exception as exc:  # counted, and the batch is redelivered
                    handler_errors.append(f"track_files: {type(exc).__name__}: {exc}")
                    n = 1
                idle = 0 if n or not sent_all else idle + 1
                if not n:
                    time.sleep(0.2)

        workers = ThreadPoolExecutor(pollers)

        def handle_stream(records: list[dict[str, Any]]) -> None:
            chunks = [records[i::pollers] for i in range(pollers) if records[i::pollers]]
            futures = [
                workers.submit(chalice_app.count_arrivals, {"Records": c}, _Context("count_arrivals")) for c in chunks
            ]
            for f in futures:
                f.result()  # a raising chunk raises here: the stream batch is delivered again

        stream = StreamPump(boto3.client("dynamodbstreams"), outputs["TableStreamArn"], handle_stream)

        def pump_stream() -> int:
            try:
                return stream.pump(max_records=2000)  # returns now and then, for the progress line
            except Exception as exc:
                handler_errors.append(f"count_arrivals: {type(exc).__name__}: {exc}")
                return 1

        clock = time.perf_counter()
        arrivals = threading.Thread(target=arrive, name="arrivals")
        arrivals.start()
        threads = [threading.Thread(target=sqs_poller, name=f"sqs-poller-{i}") for i in range(pollers)]
        for t in threads:
            t.start()
        last_report = time.monotonic()
        while any(t.is_alive() for t in threads):
            if not pump_stream():
                time.sleep(0.1)
            if time.monotonic() - last_report > 30:
                last_report = time.monotonic()
                print(
                    f"{time.perf_counter() - clock:7.0f} s: meter {sum(meter.calls.values())} DynamoDB requests, "
                    f"sending {'done' if sending_done.is_set() else 'running'}",
                    file=sys.stderr,
                    flush=True,
                )
        arrivals.join()
        for t in threads:
            t.join()
        # Whatever is still queued or in flight (a batch that failed becomes visible again).
        while pump_stream() or pump_sqs(sqs, queue_url, handle_sqs, batch_size=100) or queue_depth(sqs, queue_url):
            time.sleep(0.1)
        later = datetime.now(UTC) + timedelta(seconds=int(os.environ["BATCH_MAX_WAIT_SECONDS"]) + 1)
        for _ in range(100):  # each flush seals up to MAX_SEALS_PER_DATE batches per date
            if not any(o.status == "sealed" for o in flush_stale(now=later)):
                break
            pump_stream()
        while pump_stream():
            pass
        control_seconds = time.perf_counter() - clock
        print(f"control plane done in {control_seconds:.1f} s; checking", file=sys.stderr, flush=True)
        workers.shutdown()

        # Every file in exactly one manifest; every manifest announced (ManifestReady) once.
        state = read_state(boto3.client("dynamodb"), outputs["TableName"])
        s3 = boto3.client("s3")
        listed: Counter[str] = Counter()
        for m in state.manifest_items:
            bucket, _, key = str(m.get("manifest_uri", "s3:///")).removeprefix("s3://").partition("/")
            body = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            listed.update(f["uri"] for f in body["files"])
        announced: Counter[str] = Counter()
        tap.drain(lambda e: announced.update([e["detail"]["manifest_id"]]), max_messages=10**9)
        uploaded = files
        problems = []
        if len(listed) != uploaded:
            problems.append(f"{len(listed)} distinct files in manifests, {uploaded} uploaded")
        twice = [u for u, n in listed.items() if n > 1]
        if twice:
            problems.append(f"{len(twice)} file(s) in more than one manifest, e.g. {twice[0]}")
        if state.files != uploaded:
            problems.append(f"{state.files} FILE items, {uploaded} uploaded")
        unsealed = {s: n for s, n in state.files_by_status.items() if s != "claimed"}
        if unsealed:
            problems.append(f"files not in a manifest: {unsealed}")
        not_sealed = {s: n for s, n in state.manifests_by_status.items() if s != "sealed"}
        if not_sealed:
            problems.append(f"manifests not sealed: {not_sealed}")
        ids = {str(m["manifest_id"]) for m in state.manifest_items}
        if set(announced) != ids or any(n > 1 for n in announced.values()):
            problems.append(
                f"{len(announced)} manifests announced ({sum(announced.values())} events), {len(ids)} sealed"
            )
        ddb_total = sum(meter.calls.values())
        sizes = [int(m.get("file_count", 0)) for m in state.manifest_items]
        return {
            "files": files,
            "pollers": pollers,
            "batch_max_files": batch_max_files,
            "shards": shards,
            "source": source,
            "moto_server": "stock moto_server" if stock_moto else "bench/fast_moto.py (moto with two hot spots cached)",
            "arrival_seconds": round(upload_seconds, 2),
            "control_plane_seconds": round(control_seconds, 2),
            "files_per_second": round(files / control_seconds, 1),
            "dynamodb_requests": ddb_total,
            "dynamodb_requests_per_file": round(ddb_total / files, 3),
            "dynamodb_requests_by_operation": dict(sorted(meter.calls.items())),
            "dynamodb_seconds_by_operation": {k: round(v, 1) for k, v in sorted(meter.seconds.items())},
            "max_items_per_query": meter.max_items["Query"],
            "max_items_per_scan": meter.max_items["Scan"],
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "peak_rss_note": "this process: handlers, pollers, boto3 (moto runs in a separate process)",
            "manifests": len(ids),
            "manifest_files_min_max": [min(sizes, default=0), max(sizes, default=0)],
            "events_announced": sum(announced.values()),
            "handler_errors_retried": len(handler_errors),
            "sqs_messages_handled": handled_messages,
            "sqs_redeliveries": handled_messages - files,
            "sqs_visibility_timeout_seconds": REDELIVERY_SECONDS,
            "problems": problems,
            "ok": not problems,
        }
    finally:
        moto.terminate()
        moto.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--pollers", type=int, default=3, choices=(2, 3, 4))
    parser.add_argument("--batch-max-files", type=int, default=200)
    parser.add_argument("--shards", type=int, default=10)
    parser.add_argument(
        "--source",
        choices=("upload", "notifications"),
        default="notifications",
        help="put real objects (moto sends the notifications) or send the notifications directly (faster)",
    )
    parser.add_argument("--stock-moto", action="store_true", help="run moto_server unpatched (slower at scale)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.files, args.pollers, args.batch_max_files, args.shards, args.source, args.stock_moto)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    width = max(len(k) for k in result)
    for k, v in result.items():
        print(f"{k:<{width}}  {v}")
    print(f"written to {args.out}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
