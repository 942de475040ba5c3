"""``ndjson-parquet status``: files by status per date, manifests by status, oldest pending age,
DLQ depths, circuit breaker. Reads the status index in bounded pages."""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from typing import Any

HELP = "Show files by status per date, manifests by status, oldest pending age, DLQ depths, breaker."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")


def collect(store: Any, sqs: Any, s: Any, now: float) -> dict[str, Any]:
    from chalicelib.timeutil import to_epoch
    from chalicelib.workflow import breaker

    files: Counter[tuple[str, str]] = Counter()
    manifests: Counter[str] = Counter()
    oldest: float | None = None
    for page in store.scan_index_pages():
        for item in page:
            parts = str(item.get("gsi1pk", "")).split("#")
            head = parts[0]
            if head == "manifests":
                manifests[parts[1]] += 1
            elif head in ("pending", "converted", "skipped", "quarantined"):
                files[(parts[1], head)] += 1
                if head == "pending":
                    arrived = to_epoch(str(item.get("gsi1sk", "")).split("#")[0])
                    oldest = arrived if oldest is None or (arrived is not None and arrived < oldest) else oldest
            elif head == "claimed":
                files[(str(item.get("date_prefix") or parts[1][:10]), "claimed")] += 1
    dlqs = {}
    for name, url in (("ingest", s.ingest_dlq_url), ("events", s.events_dlq_url)):
        if url:
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            dlqs[name] = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
    state = breaker.read_state(store)
    cfg = breaker.BreakerConfig(s.breaker_threshold, s.breaker_window_seconds, s.breaker_cooldown_seconds)
    by_date: dict[str, dict[str, int]] = {}
    for (date, status), n in sorted(files.items()):
        by_date.setdefault(date, {})[status] = n
    return {
        "files_by_date": by_date,
        "manifests": dict(sorted(manifests.items())),
        "oldest_pending_age_seconds": None if oldest is None else int(now - oldest),
        "dlq_depths": dlqs,
        "breaker": {"state": state.state, "recent_failures": len(state.failures), **sealing_of(state, cfg, now)},
    }


def sealing_of(state: Any, cfg: Any, now: float) -> dict[str, Any]:
    """What the breaker means for sealing now (pure): ``sealing`` is ``normal``, ``paused`` (open,
    cooling down), ``probe_due`` (the next seal attempt takes the half-open probe) or ``probing``
    (one probe manifest is out; its success closes the breaker); ``next_probe_in_seconds`` while
    paused or probing."""
    from chalicelib.workflow import breaker

    if state.state == breaker.CLOSED:
        return {"sealing": "normal", "next_probe_in_seconds": None}
    since = state.opened_at if state.state == breaker.OPEN else state.probe_at
    left = max(0, int(since + cfg.cooldown_seconds - now))
    if left == 0:
        return {"sealing": "probe_due", "next_probe_in_seconds": 0}
    return {"sealing": "paused" if state.state == breaker.OPEN else "probing", "next_probe_in_seconds": left}


def main(args: argparse.Namespace) -> int:
    from chalicelib import aws
    from chalicelib.settings import get_settings
    from chalicelib.workflow.tasks import store

    s = get_settings()
    report = collect(store(s), aws.client("sqs"), s, time.time())
    if args.json:
        print(json.dumps(report))
        return 0
    print("files by date:")
    for date, counts in report["files_by_date"].items():
        print(f"  {date}  " + "  ".join(f"{k}={v}" for k, v in counts.items()))
    print("manifests: " + ("  ".join(f"{k}={v}" for k, v in report["manifests"].items()) or "none"))
    age = report["oldest_pending_age_seconds"]
    print(f"oldest pending: {'none' if age is None else f'{age}s'}")
    print("DLQ depths: " + ("  ".join(f"{k}={v}" for k, v in report["dlq_depths"].items()) or "no DLQ configured"))
    b = report["breaker"]
    line = f"circuit breaker: {b['state']} ({b['recent_failures']} recent failures), sealing {b['sealing']}"
    if b["next_probe_in_seconds"]:
        line += f", next probe in {b['next_probe_in_seconds']}s"
    print(line)
    return 0
