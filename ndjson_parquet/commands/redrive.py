"""``ndjson-parquet redrive``: DLQ messages back where they came from, with a count.

ingest: each message back to the queue whose redrive policy names this DLQ (S3 notifications are
tracked idempotently, so a redelivered one is harmless). events: each dead-lettered ManifestReady
back onto the bus (ClaimRun is idempotent per manifest, so a duplicate is a no-op)."""

from __future__ import annotations

import argparse
import json
from typing import Any

HELP = "Move DLQ messages back to where they came from (ingest queue, event bus) and print counts."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", choices=("ingest", "events", "all"), default="all")
    parser.add_argument("--max", type=int, default=10_000, help="stop after this many messages per queue")


def _messages(sqs: Any, url: str, limit: int) -> Any:
    seen = 0
    while seen < limit:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return
        for m in got[: limit - seen]:
            seen += 1
            yield m


def redrive_ingest(sqs: Any, dlq_url: str, limit: int) -> int:
    sources = sqs.list_dead_letter_source_queues(QueueUrl=dlq_url).get("queueUrls", [])
    if len(sources) != 1:
        raise SystemExit(f"ingest DLQ {dlq_url} has {len(sources)} source queues; expected exactly one")
    moved = 0
    for m in _messages(sqs, dlq_url, limit):
        sqs.send_message(QueueUrl=sources[0], MessageBody=m["Body"])
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"])  # only after the send succeeded
        moved += 1
    return moved


def redrive_events(sqs: Any, events: Any, dlq_url: str, bus: str, limit: int) -> int:
    moved = 0
    for m in _messages(sqs, dlq_url, limit):
        event = json.loads(m["Body"])
        resp = events.put_events(
            Entries=[
                {
                    "Source": event["source"],
                    "DetailType": event["detail-type"],
                    "Detail": json.dumps(event["detail"]),
                    "EventBusName": bus,
                }
            ]
        )
        if resp.get("FailedEntryCount"):
            raise SystemExit(f"PutEvents failed for message {m['MessageId']}: {resp['Entries']}")
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"])
        moved += 1
    return moved


def main(args: argparse.Namespace) -> int:
    from chalicelib import aws
    from chalicelib.settings import get_settings

    s = get_settings()
    sqs = aws.client("sqs")
    if args.queue in ("ingest", "all"):
        if not s.ingest_dlq_url:
            print("ingest: INGEST_DLQ_URL not set, skipped")
        else:
            print(f"ingest: {redrive_ingest(sqs, s.ingest_dlq_url, args.max)} messages moved back to the ingest queue")
    if args.queue in ("events", "all"):
        if not s.events_dlq_url:
            print("events: EVENTS_DLQ_URL not set, skipped")
        else:
            n = redrive_events(sqs, aws.client("events"), s.events_dlq_url, s.event_bus_name, args.max)
            print(f"events: {n} events put back on bus {s.event_bus_name}")
    return 0
