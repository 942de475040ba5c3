"""Chalice app: thin handlers that parse the event and call a service in chalicelib.

Sections are owned by one module each: control plane (tracker, batching, flush),
workflow tasks (Step Functions Lambda tasks, recover).
"""

from __future__ import annotations

from chalice import Chalice

app = Chalice(app_name="ndjson-parquet")

# --- control plane (chalicelib.tracker, chalicelib.batching) -------------------------------
# Event-source wiring is read at import because Chalice reads it when it packages the app:
# export these before `chalice deploy` (infra/deploy.sh does); the defaults only serve tests.
import os  # noqa: E402

from chalice import Rate  # noqa: E402
from chalice.app import CloudWatchEvent, DynamoDBEvent, SQSEvent  # noqa: E402

from chalicelib import batching, tracker  # noqa: E402
from chalicelib.observability import handler_scope  # noqa: E402

_INGEST_QUEUE_ARN = os.environ.get("INGEST_QUEUE_ARN", "arn:aws:sqs:us-east-1:123456789012:ndjson-parquet-dev-ingest")
_STREAM_ARN = os.environ.get(
    "TRACKING_STREAM_ARN",
    "arn:aws:dynamodb:us-east-1:123456789012:table/ndjson-parquet-dev-tracking/stream/1970-01-01T00:00:00.000",
)


@app.on_sqs_message(
    queue_arn=_INGEST_QUEUE_ARN,
    batch_size=int(os.environ.get("INGEST_BATCH_SIZE", "100")),
    maximum_batching_window_in_seconds=int(os.environ.get("INGEST_BATCH_WINDOW_SECONDS", "5")),
)
def track_files(event: SQSEvent) -> None:
    with handler_scope("track_files"):
        messages = [tracker.SqsMessage(r.to_dict().get("messageId", ""), r.body) for r in event]
        tracker.track_messages(messages)


@app.on_dynamodb_record(
    stream_arn=_STREAM_ARN,
    batch_size=int(os.environ.get("STREAM_BATCH_SIZE", "100")),
    starting_position="TRIM_HORIZON",
)
def count_arrivals(event: DynamoDBEvent) -> None:
    with handler_scope("count_arrivals"):
        batching.count_arrivals((r.event_name, r.new_image) for r in event)


# Every minute: flush_stale seals a quiet date's files once the oldest waited BATCH_MAX_WAIT_SECONDS
# (count_arrivals seals by age on arrivals), so a file waits at most that plus one minute.
@app.schedule(Rate(int(os.environ.get("FLUSH_RATE_MINUTES", "1")), unit=Rate.MINUTES))
def flush_stale(event: CloudWatchEvent) -> None:
    with handler_scope("flush_stale"):
        batching.flush_stale()


# --- workflow tasks (chalicelib.workflow) ---------------------------------------------------
# Step Functions tasks: deterministic function names (ndjson-parquet-<stage>-claim_run, ...)
# that the infra stack substitutes into the ASL. Errors propagate: the state machine's
# Retry/Catch decide by the exception's class name.
from chalicelib.workflow import tasks as workflow_tasks  # noqa: E402


@app.lambda_function(name="claim_run")
def claim_run(event: dict, context: object) -> dict:
    return workflow_tasks.claim_run_task(event)


@app.lambda_function(name="finalize")
def finalize(event: dict, context: object) -> dict:
    with handler_scope("finalize"):  # publishes FilesSetAside (EMF in the function's log)
        return workflow_tasks.finalize_task(event)


@app.lambda_function(name="compensate")
def compensate(event: dict, context: object) -> dict:
    return workflow_tasks.compensate_task(event)


@app.schedule(Rate(int(os.environ.get("RECOVER_RATE_MINUTES", "10")), unit=Rate.MINUTES), name="recover")
def recover(event: CloudWatchEvent) -> dict:
    from chalicelib.workflow.recover import recover_from_settings

    return recover_from_settings().counts()
