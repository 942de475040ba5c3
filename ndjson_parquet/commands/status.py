"""``ndjson-parquet status``: files by status per date, manifests by status, oldest pending age,
DLQ depths, circuit breaker, and the manifests a schema-change refusal holds (with the fields that
held them and how many of their files are still held). Reads the status index in bounded pages."""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from typing import Any

HELP = "Show files by status per date, manifests by status, oldest pending age, DLQ depths, breaker, held."
# Held manifests listed one by one (the counts cover all of them).
MAX_HELD_LISTED = 100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true")


def collect(store: Any, sqs: Any, s: Any, now: float) -> dict[str, Any]:
    from chalicelib import keys
    from chalicelib.timeutil import to_epoch
    from chalicelib.workflow import breaker

    files: Counter[tuple[str, str]] = Counter()
    manifests: Counter[str] = Counter()
    held_files: Counter[str] = Counter()  # manifest id -> files still held for it
    held: dict[str, dict[str, Any]] = {}  # held manifests (the first MAX_HELD_LISTED)
    oldest: float | None = None
    for page in store.scan_index_pages():
        for item in page:
            parts = str(item.get("gsi1pk", "")).split("#")
            head = parts[0]
            if head == "manifests":
                manifests[parts[1]] += 1
                if parts[1] == keys.MANIFEST_HELD and len(held) < MAX_HELD_LISTED:
                    held[str(item.get("manifest_id"))] = {
                        "held_at": item.get("held_at"),
                        "file_count": int(item.get("file_count") or 0),
                        "changes": list(item.get("schema_changes") or []),
                        "changes_total": int(item.get("schema_changes_total") or 0),
                    }
            elif head in ("pending", "converted", "skipped", "quarantined"):
                files[(parts[1], head)] += 1
                if head == "pending":
                    arrived = to_epoch(str(item.get("gsi1sk", "")).split("#")[0])
                    oldest = arrived if oldest is None or (arrived is not None and arrived < oldest) else oldest
            elif head in ("claimed", "held"):
                files[(str(item.get("date_prefix") or parts[1][:10]), head)] += 1
                if head == "held":
                    held_files[parts[1]] += 1
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
        "held": held_report(held, held_files),
    }


def held_report(held: dict[str, dict[str, Any]], held_files: Counter[str]) -> list[dict[str, Any]]:
    """One entry per manifest that holds files or is held (pure), oldest manifest id first: its
    held files, the changes the schema policy refused, and the command that releases it. A
    manifest with held files but no longer ``held`` (a hold interrupted by a crash) is listed too."""
    out = []
    for mid in sorted(set(held) | set(held_files)):
        info = held.get(mid, {})
        out.append(
            {
                "manifest_id": mid,
                "held_files": held_files.get(mid, 0),
                "manifest_held": mid in held,
                "held_at": info.get("held_at"),
                "changes": info.get("changes", []),
                "changes_total": info.get("changes_total", 0),
            }
        )
    return out


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
    if report["held"]:
        print("held by the schema policy (allow the change, then: ndjson-parquet release --manifest ID | --all):")
    for h in report["held"]:
        shown = ", ".join(h["changes"]) or "changes not recorded"
        more = h["changes_total"] - len(h["changes"])
        print(f"  {h['manifest_id']}  held files={h['held_files']}  {shown}" + (f" (+{more} more)" if more > 0 else ""))
    return 0
