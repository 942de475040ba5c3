"""Finalize: the run summary adds up, files become ``converted`` with their counts, the manifest
``succeeded`` with its totals. Retried by the state machine; every write is conditional on this
execution still owning the manifest, so a retry never converts a file twice.

A file the job set aside whole (its summary entry has ``set_aside``, glue/isolation.py) becomes
``quarantined`` with ``quarantine_reason`` instead, in the same conditional moves, and is reported
once: the ``FilesSetAside`` metric and a ``files_set_aside`` alert (ids, error type names, counts;
never the message, which may quote data). The rest of the manifest is converted as usual."""

from __future__ import annotations

import logging
import time
from typing import Any

from chalicelib import keys
from chalicelib.manifest import Manifest
from chalicelib.observability import FILES_SET_ASIDE, count
from chalicelib.timeutil import now_iso
from chalicelib.tracking_table import FileUpdate, TrackingTable
from chalicelib.workflow import alerts, breaker, paths
from chalicelib.workflow.errors import ReconciliationError
from chalicelib.workflow.files import file_date, file_shard, file_uri
from chalicelib.workflow.summary import reconcile, set_aside, totals

log = logging.getLogger(__name__)


def run_identity(payload: dict[str, Any], default_engine: str = "") -> tuple[str, str]:
    """``(run_id, engine)`` of the run being finalized: ``run_id``/``engine`` as the state machine
    sends them (``$.convert``), ``job_run_id`` accepted for a Glue run (older executions, replays of
    a stored payload). A ``job_run_id`` alone means Glue."""
    run_id = str(payload.get("run_id") or payload.get("job_run_id") or "")
    engine = str(payload.get("engine") or ("glue" if payload.get("job_run_id") else default_engine))
    return run_id, engine


def finalize(
    payload: dict[str, Any],
    store: TrackingTable,
    s3: Any,
    shard_count: int,
    now: float | None = None,
    sns: Any = None,
    alerts_topic_arn: str = "",
) -> dict[str, Any]:
    manifest_id = str(payload["manifest_id"])
    execution_arn = str(payload["execution_arn"])
    output_path = str(payload["output_path"])
    stamp = now_iso(time.time() if now is None else now)
    run_id, engine = run_identity(payload)

    manifest_text = paths.read_text(str(payload["manifest_uri"]), s3)
    if manifest_text is None:
        raise ReconciliationError(f"manifest JSON {payload['manifest_uri']} is missing")
    manifest = Manifest.from_json(manifest_text)
    summary = paths.read_json(paths.run_summary_path(output_path, manifest_id), s3)
    if summary is None:
        raise ReconciliationError(f"run summary for {manifest_id} is missing under {output_path}")
    # The engine of the run whose summary this is (the one that committed): Compensate rolling a
    # committed Lambda run forward after its Glue fallback died says "glue" ($.claim.engine).
    engine = str(summary.get("engine") or engine)
    per_file = reconcile(summary, [f.uri for f in manifest.files])
    total = totals(per_file)
    aside = set_aside(per_file)

    updates: list[FileUpdate] = []
    for page in store.iter_claimed_file_pages(manifest_id):
        for item in page:
            uri = file_uri(item)
            if uri not in per_file:
                raise ReconciliationError(f"file {uri} is claimed by {manifest_id} but not in its manifest")
            date = file_date(item, manifest_id)
            if uri in aside:
                # Set aside whole by the job: quarantined with its reason, never retried (the error
                # was deterministic; a transient one fails the run instead). Same conditional move.
                updates.append(
                    FileUpdate(
                        pk=str(item["pk"]),
                        status=keys.QUARANTINED,
                        status_key=keys.quarantined_status_key(date),
                        set_attrs={
                            **per_file[uri].as_dict(),
                            "quarantine_reason": alerts.short(aside[uri]),
                            "quarantined_at": stamp,
                            "manifest_id": manifest_id,
                        },
                    )
                )
                continue
            updates.append(
                FileUpdate(
                    pk=str(item["pk"]),
                    status=keys.CONVERTED,
                    status_key=keys.converted_status_key(date, file_shard(item, shard_count)),
                    set_attrs={**per_file[uri].as_dict(), "converted_at": stamp, "manifest_id": manifest_id},
                )
            )
    # From here on files become converted: a crash past this point must be rolled forward
    # (compensate re-runs finalize), never undone; undoing would delete the rows of converted
    # files. Found by the fault campaign (tests/chaos, crash point inside_finalize).
    store.mark_finalizing(manifest_id, execution_arn, stamp)
    moved = store.move_claimed_files(manifest_id, updates, owner_execution_arn=execution_arn)
    if aside:
        # Reported once the files moved and before the manifest ends: a retry of this step (or
        # Compensate's roll-forward) repeats it rather than losing it (at-least-once, like every
        # alert here; the alert names the manifest, so a duplicate is recognisable).
        count(FILES_SET_ASIDE, len(aside))
        alerts.publish_alert(
            sns,
            alerts_topic_arn,
            "files_set_aside",
            f"ndjson-parquet: {len(aside)} file(s) of {manifest_id} set aside",
            {
                "manifest_id": manifest_id,
                "files_set_aside": len(aside),
                "file_ids": sorted(str(u.pk).split("#", 1)[-1] for u in updates if u.status == keys.QUARANTINED)[:20],
                "errors": sorted({_error_type(r) for r in aside.values()}),
                "file_count": len(per_file),
            },
        )
        log.warning("files set aside", extra={"manifest_id": manifest_id, "files_set_aside": len(aside)})
    store.end_run(
        manifest_id,
        execution_arn,
        keys.MANIFEST_SUCCEEDED,
        {
            "counts": total,
            "finished_at": stamp,
            "succeeded_once": True,
            # run_id: the Glue JobRunId or the converter's run token; job_run_id kept for readers of old items.
            "run_id": run_id,
            "job_run_id": run_id,
            "engine": engine,
            "error": "",
            "files_set_aside": len(aside),
        },
    )
    breaker.record_success(store, time.time() if now is None else now)
    log.info("finalize", extra={"manifest_id": manifest_id, "converted_now": moved, "engine": engine, **total})
    return {
        "manifest_id": manifest_id,
        "engine": engine,
        "files": len(per_file),
        "converted_now": moved,
        "totals": total,
        "files_set_aside": len(aside),
    }


def _error_type(reason: str) -> str:
    """``conversion_error: ValueError: msg`` -> ``conversion_error: ValueError`` (no message: it
    may quote the data); ``invalid_gzip: ...`` -> ``invalid_gzip``."""
    parts = [p.strip() for p in reason.split(":", 2)]
    return ": ".join(parts[:2]) if parts[0] == "conversion_error" and len(parts) > 1 else parts[0]
