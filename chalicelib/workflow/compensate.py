"""Compensate: the saga's undo of one failed run.

Order matters: (1) the run's partial output is deleted (``manifest=<id>`` partition, its
quarantine and run summary), so files that go back to pending can never leave a second copy;
(2) files still ``claimed#<id>`` go back to ``pending``: from a manifest of several files
narrowed (``batch_limit`` = half of it, no attempt counted: see ``plan_file``), from a manifest
of one file with ``attempts + 1``, or to ``quarantined`` at MAX_ATTEMPTS, in transactions that
check this execution still owns the manifest; (3) the manifest becomes ``failed`` with the
error; (4) the circuit breaker counts it.
A run the table's schema policy refused (``failOnNewColumns``: the job names the new fields and
commits nothing; ``chalicelib/schema_policy.py`` recognises its cause) is not a failure to retry:
step (2) moves the files to ``held#<id>`` instead (no attempt spent, no narrowing, never batched
again until ``ndjson-parquet release``), step (3) marks the manifest ``held`` with the changes, an
SNS alert names the manifest and the fields, and the breaker does not count it (the policy did its
job; counting it would pause the sealing of manifests that bring nothing new).
A crash anywhere re-runs cleanly: deletes are idempotent and a moved file is not claimed anymore.

A failed *replay* of a manifest that succeeded before is different: its files are converted and
stay so (their rows exist); only the manifest is marked failed, so a later replay can redo it.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from chalicelib import keys
from chalicelib.schema_policy import ERROR_NAME as SCHEMA_CHANGE_ERROR
from chalicelib.schema_policy import SchemaRefusal, parse_refusal, refusal_message
from chalicelib.table_commits import TableRef, committed_snapshot
from chalicelib.timeutil import now_iso
from chalicelib.tracking_table import FileUpdate, TrackingTable
from chalicelib.workflow import alerts, breaker, paths
from chalicelib.workflow.errors import StaleRunError
from chalicelib.workflow.files import attempts, file_date, file_shard, manifest_id_of

log = logging.getLogger(__name__)


def error_name(error: Any) -> tuple[str, str]:
    """(name, short cause) of a Step Functions error object ``{"Error", "Cause"}``."""
    if isinstance(error, dict):
        return str(error.get("Error") or "Unknown"), alerts.short(error.get("Cause"))
    return str(error or "Unknown"), ""


def error_cause(error: Any) -> str:
    """The whole ``Cause`` of a Step Functions error object (not trimmed: it is parsed, not shown)."""
    return str(error.get("Cause") or "") if isinstance(error, dict) else ""


# Bounds on what a refusal writes: the MANIFEST item (400 KB limit) and the alert (read by people).
MAX_STORED_CHANGES = 200
MAX_ALERT_CHANGES = 50


def hold_file(item: dict[str, Any], manifest_id: str, stamp: str) -> FileUpdate:
    """Where one claimed file goes when the table's schema policy refused its manifest (pure):
    ``held#<manifest_id>``, attempts unchanged, no narrowing. Its date is not reopened and it stays
    in the date's sealed totals: it is neither pending nor sealable until ``release`` moves it
    back (and unseals it there, once)."""
    return FileUpdate(
        pk=str(item["pk"]),
        status=keys.HELD,
        status_key=keys.held_status_key(manifest_id),
        set_attrs={"held_at": stamp},
    )


def narrowed_limit(item: dict[str, Any], manifest_files: int) -> int:
    """The batch size a file of a failed ``manifest_files``-file manifest may be sealed into next:
    half of it (rounded up), never wider than an earlier narrowing allowed."""
    half = max(1, math.ceil(manifest_files / 2))
    earlier = int(item.get("batch_limit") or 0)
    return min(half, earlier) if earlier else half


def plan_file(
    item: dict[str, Any],
    manifest_id: str,
    max_attempts: int,
    shard_count: int,
    stamp: str,
    manifest_files: int = 1,
) -> FileUpdate:
    """Where one claimed file goes after its manifest failed as a whole (pure).

    Narrowing: a failure of a manifest of several files says nothing about which file caused it
    (a worker killed, out of memory, a timeout), so no file pays an attempt for it: each goes
    back to pending with ``batch_limit`` = half the manifest, and the next seals put it in a
    manifest at most that wide. A poison file ends up alone after log2(n) failures; only a
    failure of a manifest of ONE file counts an attempt toward MAX_ATTEMPTS (then quarantined),
    so healthy neighbours never are. Files of a manifest whose Finalize had begun are never
    here: that run is rolled forward (compensate), so narrowing never converts a file twice."""
    date = file_date(item, manifest_id)
    if manifest_files > 1:
        return FileUpdate(
            pk=str(item["pk"]),
            status=keys.PENDING,
            status_key=keys.pending_status_key(date, file_shard(item, shard_count)),
            set_attrs={
                "failed_manifest_id": manifest_id,
                "requeued_at": stamp,
                "batch_limit": narrowed_limit(item, manifest_files),
            },
            reopen_date=date,
            unseal_bytes=int(item.get("size") or 0),
        )
    tries = attempts(item) + 1
    if tries >= max_attempts:
        return FileUpdate(
            pk=str(item["pk"]),
            status=keys.QUARANTINED,
            status_key=keys.quarantined_status_key(date),
            set_attrs={"failed_manifest_id": manifest_id, "quarantined_at": stamp},
            add_attempts=1,
        )
    return FileUpdate(
        pk=str(item["pk"]),
        status=keys.PENDING,
        status_key=keys.pending_status_key(date, file_shard(item, shard_count)),
        set_attrs={"failed_manifest_id": manifest_id, "requeued_at": stamp, "batch_limit": 1},
        add_attempts=1,
        # Back to pending: the date reopens (flush_stale must see it again, even a closed past
        # date) and the file leaves the sealed totals its manifest added it to, so the re-seal
        # adds it once more without sealed_files drifting above the counted files.
        reopen_date=date,
        unseal_bytes=int(item.get("size") or 0),
    )


def compensate(
    payload: dict[str, Any],
    store: TrackingTable,
    s3: Any,
    sns: Any,
    *,
    max_attempts: int,
    shard_count: int,
    breaker_cfg: breaker.BreakerConfig,
    alerts_topic_arn: str = "",
    now: float | None = None,
    table: TableRef | None = None,
    glue: Any = None,
) -> dict[str, Any]:
    manifest_id = str(payload["manifest_id"])
    execution_arn = str(payload["execution_arn"])
    err, cause = error_name(payload.get("error"))
    engine = str(payload.get("engine") or "")  # the claim's engine ($.claim.engine): glue after a fallback
    now = time.time() if now is None else now
    stamp = now_iso(now)
    result: dict[str, Any] = {
        "manifest_id": manifest_id,
        "error": err,
        "requeued": 0,
        "quarantined": 0,
        "held": 0,
        "file_count": 0,
        "breaker": "",
        "compensated": False,
        "engine": engine,
    }
    item = store.get_manifest(manifest_id)
    if item and item.get("status") == keys.MANIFEST_HELD and item.get("execution_arn") == execution_arn:
        # This execution held the manifest already (a retried Compensate whose first answer was
        # lost): the alert goes out again, so it is sent at least once.
        refusal = SchemaRefusal(tuple(str(c) for c in item.get("schema_changes") or ()))
        _alert_held(sns, alerts_topic_arn, item, refusal, int(item.get("schema_changes_total") or 0))
        result.update(_held_result(item, refusal))
        result["reason"] = "held already by this execution"
        return result
    if item is None or item.get("status") != keys.MANIFEST_RUNNING or item.get("execution_arn") != execution_arn:
        # Already compensated (by a retry, or by recover) or owned by another run: nothing to undo.
        result["reason"] = "not owned by this execution" if item else "no such manifest"
        log.info("compensate no-op", extra={"manifest_id": manifest_id, "reason": result["reason"]})
        return result
    result["file_count"] = int(item.get("file_count") or 0)
    date = str(item.get("date_prefix") or manifest_id[:10])
    replay_of_success = bool(item.get("succeeded_once"))
    # The run committed the manifest to the table and failed afterwards (the driver died after
    # the commit): its rows are in the table, so undoing it and re-sealing its files would put
    # them there twice. Roll forward, as for a Finalize that had begun.
    committed = (
        table is not None and not replay_of_success and committed_snapshot(table, manifest_id, s3, glue) is not None
    )
    if (item.get("finalizing_since") or committed) and not replay_of_success:
        # Finalize had reconciled the summary and begun converting files when it died: undoing
        # now would delete the rows of files already converted. Roll forward instead.
        from chalicelib.workflow.finalize import finalize

        done = finalize(
            {
                "manifest_id": manifest_id,
                "execution_arn": execution_arn,
                "manifest_uri": str(item.get("manifest_uri") or ""),
                "output_path": str(payload.get("output_path") or ""),
                "run_id": str(item.get("run_id") or item.get("job_run_id") or ""),
                "engine": str(payload.get("engine") or item.get("engine") or ""),
            },
            store,
            s3,
            shard_count,
            now=now,
            sns=sns,
            alerts_topic_arn=alerts_topic_arn,
        )
        why = "the table holds its commit" if committed else "finalize had begun"
        result["reason"] = f"{why}: rolled forward ({done['converted_now']} files converted now)"
        result["rolled_forward"] = True
        log.warning("compensate rolled forward", extra={"manifest_id": manifest_id})
        return result

    if not replay_of_success:
        output_path = str(payload.get("output_path") or "")
        quarantine_path = str(payload.get("quarantine_path") or "")
        removed = 0
        if output_path:
            removed += paths.delete_tree(paths.manifest_partition(output_path, date, manifest_id), s3)
        if quarantine_path:
            removed += paths.delete_tree(paths.manifest_partition(quarantine_path, date, manifest_id), s3)
        if output_path:
            removed += paths.delete_tree(paths.run_summary_path(output_path, manifest_id), s3)
        result["output_objects_removed"] = removed

    refusal = None if replay_of_success else parse_refusal(error_cause(payload.get("error")))
    if refusal is not None:
        return _hold(store, sns, alerts_topic_arn, manifest_id, item, execution_arn, refusal, stamp, result)

    claimed = [f for page in store.iter_claimed_file_pages(manifest_id) for f in page]
    # The manifest's own file count (stable across a retried Compensate that already moved a
    # chunk of its files), else what is still claimed.
    manifest_files = int(item.get("file_count") or 0) or len(claimed)
    updates = [plan_file(f, manifest_id, max_attempts, shard_count, stamp, manifest_files) for f in claimed]
    try:
        store.move_claimed_files(manifest_id, updates, owner_execution_arn=execution_arn)
        store.end_run(
            manifest_id,
            execution_arn,
            keys.MANIFEST_FAILED,
            {"error": err, "error_cause": cause, "failed_at": stamp, **({"engine": engine} if engine else {})},
        )
    except StaleRunError:
        result["reason"] = "ownership lost while compensating"
        return result
    result["requeued"] = sum(1 for u in updates if u.status == keys.PENDING)
    result["narrowed_to"] = narrowed_limit({}, manifest_files) if manifest_files > 1 else 0
    result["quarantined"] = sum(1 for u in updates if u.status == keys.QUARANTINED)
    result["compensated"] = True

    state, opened = breaker.record_failure(store, now, breaker_cfg)
    result["breaker"] = state.state
    if opened:
        alerts.publish_alert(
            sns,
            alerts_topic_arn,
            "breaker_open",
            "ndjson-parquet: sealing paused (circuit breaker open)",
            {"failures": len(state.failures), "last_manifest_id": manifest_id, "error": err},
        )
    log.warning("compensated", extra={k: v for k, v in result.items() if k != "breaker"})
    return result


def _held_result(item: dict[str, Any], refusal: SchemaRefusal) -> dict[str, Any]:
    return {
        "error": SCHEMA_CHANGE_ERROR,
        "held": int(item.get("file_count") or 0),
        "file_count": int(item.get("file_count") or 0),
        "schema_changes": list(refusal.changes[:MAX_ALERT_CHANGES]),
        "compensated": True,
    }


def _hold(
    store: TrackingTable,
    sns: Any,
    alerts_topic_arn: str,
    manifest_id: str,
    item: dict[str, Any],
    execution_arn: str,
    refusal: SchemaRefusal,
    stamp: str,
    result: dict[str, Any],
) -> dict[str, Any]:
    """The schema policy refused the run: every claimed file to ``held#<id>`` (same conditional
    moves as a requeue: still claimed by this manifest, this execution still the owner), then the
    manifest ``running -> held`` with the changes, then the alert."""
    claimed = [f for page in store.iter_claimed_file_pages(manifest_id) for f in page]
    updates = [hold_file(f, manifest_id, stamp) for f in claimed]
    attrs = {
        "error": SCHEMA_CHANGE_ERROR,
        "error_cause": alerts.short(refusal_message(refusal.changes)),
        "held_at": stamp,
        "schema_changes": list(refusal.changes[:MAX_STORED_CHANGES]),
        "schema_changes_total": len(refusal.changes),
    }
    try:
        store.move_claimed_files(manifest_id, updates, owner_execution_arn=execution_arn)
        store.end_run(manifest_id, execution_arn, keys.MANIFEST_HELD, attrs)
    except StaleRunError:
        result["reason"] = "ownership lost while holding"
        return result
    item = {**item, "manifest_id": manifest_id, "file_count": int(item.get("file_count") or 0) or len(claimed)}
    result.update(_held_result(item, refusal))
    _alert_held(sns, alerts_topic_arn, item, refusal, len(refusal.changes))
    log.warning(
        "held: schema change refused",
        extra={"manifest_id": manifest_id, "held": result["held"], "changes": len(refusal.changes)},
    )
    return result


def _alert_held(sns: Any, topic_arn: str, item: dict[str, Any], refusal: SchemaRefusal, total: int) -> None:
    """``manifest_held``: the manifest, its file count and the fields the policy refused (names and
    types only: schema, never record contents), and what releases it."""
    manifest_id = manifest_id_of(item)
    alerts.publish_alert(
        sns,
        topic_arn,
        "manifest_held",
        f"ndjson-parquet: manifest {manifest_id} held (schema change refused)",
        {
            "manifest_id": manifest_id,
            "date_prefix": str(item.get("date_prefix") or manifest_id[:10]),
            "file_count": int(item.get("file_count") or 0),
            "error": SCHEMA_CHANGE_ERROR,
            "fields": list(refusal.fields[:MAX_ALERT_CHANGES]),
            "changes": list(refusal.changes[:MAX_ALERT_CHANGES]),
            "changes_total": max(total, len(refusal.changes)),
            "action": "allow the change (schema mode / table schema), then: ndjson-parquet release --manifest "
            + manifest_id,
        },
    )
