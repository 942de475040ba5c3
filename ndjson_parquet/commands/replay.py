"""``ndjson-parquet replay``: reprocess manifests. A time window replays the bus archive (events carry
``replay-name``, so ClaimRun reprocesses; outputs are replaced, docs/invariants.md #5) and waits for it.
``--manifest ID`` starts the state machine for that one manifest with a replay-marked event, since an
archive replay cannot be narrowed to one manifest."""

from __future__ import annotations

import argparse
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

HELP = "Replay ManifestReady events from the archive (--from/--to) or one --manifest, and wait."


def _time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", type=_time, help="ISO 8601 start of the event window")
    parser.add_argument("--to", dest="end", type=_time, help="ISO 8601 end of the event window")
    parser.add_argument("--manifest", help="replay this one manifest id")
    parser.add_argument("--archive", help="archive name (default: the one archive of the bus)")
    parser.add_argument("--timeout", type=float, default=600.0)


def find_archive(events: Any, bus_name: str, name: str | None) -> dict[str, Any]:
    if name:
        return events.describe_archive(ArchiveName=name)
    bus_arn = events.describe_event_bus(Name=bus_name)["Arn"]
    archives = events.list_archives(EventSourceArn=bus_arn).get("Archives", [])
    if len(archives) != 1:
        raise SystemExit(f"bus {bus_name} has {len(archives)} archives; name one with --archive")
    return events.describe_archive(ArchiveName=archives[0]["ArchiveName"])


def replay_window(events: Any, sfn: Any, bus: str, args: argparse.Namespace, sm_arn: str) -> int:
    archive = find_archive(events, bus, args.archive)
    name = f"ndjson-parquet-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    started = datetime.now(UTC)
    events.start_replay(
        ReplayName=name,
        EventSourceArn=archive["ArchiveArn"],
        EventStartTime=args.start,
        EventEndTime=args.end,
        Destination={"Arn": archive["EventSourceArn"]},
    )
    print(f"replay {name} started from archive {archive['ArchiveName']} ({args.start} .. {args.end})")
    deadline = time.monotonic() + args.timeout
    while True:
        desc = events.describe_replay(ReplayName=name)
        if desc["State"] in ("COMPLETED", "FAILED", "CANCELLED"):
            break
        if time.monotonic() > deadline:
            print(f"replay {name} still {desc['State']} after {args.timeout}s")
            return 1
        time.sleep(2)
    count = 0
    if sm_arn:
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=sm_arn):
            count += sum(1 for e in page["executions"] if e["startDate"] >= started)
    started_text = count if sm_arn else "unknown (STATE_MACHINE_ARN unset)"
    print(f"replay {name}: {desc['State']}; executions started since: {started_text}")
    return 0 if desc["State"] == "COMPLETED" else 1


def replay_manifest(sfn: Any, sm_arn: str, manifest_id: str, timeout: float) -> int:
    from chalicelib.events import MANIFEST_READY, SOURCE

    if not sm_arn:
        raise SystemExit("STATE_MACHINE_ARN is not set")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": MANIFEST_READY,
        "source": SOURCE,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [],
        "replay-name": f"manual-{stamp}",
        "detail": {"manifest_id": manifest_id},
    }
    arn = sfn.start_execution(
        stateMachineArn=sm_arn, name=f"replay-{manifest_id}-{stamp}"[:80], input=json.dumps(event)
    )["executionArn"]
    print(f"replay of {manifest_id}: execution {arn}")
    deadline = time.monotonic() + timeout
    while (status := sfn.describe_execution(executionArn=arn)["status"]) == "RUNNING":
        if time.monotonic() > deadline:
            print(f"still RUNNING after {timeout}s")
            return 1
        time.sleep(1)
    print(f"replay of {manifest_id}: {status}")
    return 0 if status == "SUCCEEDED" else 1


def main(args: argparse.Namespace) -> int:
    from chalicelib import aws
    from chalicelib.settings import get_settings

    s = get_settings()
    sfn = aws.client("stepfunctions")
    if args.manifest:
        return replay_manifest(sfn, s.state_machine_arn, args.manifest, args.timeout)
    if not (args.start and args.end):
        raise SystemExit("give --from and --to, or --manifest")
    return replay_window(aws.client("events"), sfn, s.event_bus_name, args, s.state_machine_arn)
