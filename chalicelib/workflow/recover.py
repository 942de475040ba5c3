"""recover: finds manifests and files stuck by a crash and moves them on. Nothing waits for a
human. Every action is logged and counted; each one is idempotent, so overlapping runs are safe.

- MANIFEST ``sealing``/``sealed`` older than RECOVER_AFTER_SECONDS: the seal or its ManifestReady
  never completed -> ``batching.resume_seal`` finishes the seal and (re-)emits the event. A
  ``sealing`` item still inside the sealer's lease (SEAL_LEASE_SECONDS, which can exceed
  RECOVER_AFTER_SECONDS) may have a live owner: it is skipped (``skipped``), not an error.
- MANIFEST ``running`` whose execution failed, was aborted, timed out or does not exist ->
  compensate it as its execution would have (same code, same ownership check).
- FILE ``claimed#<id>`` whose MANIFEST item does not exist -> back to ``pending`` (the claim was
  never a manifest; attempts unchanged). Sealing writes the MANIFEST item before claiming, so a
  missing item really is an orphan, not a seal in progress.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from chalicelib import aws, keys
from chalicelib.settings import Settings
from chalicelib.timeutil import now_iso, to_epoch
from chalicelib.tracking_table import FileUpdate, TrackingTable
from chalicelib.workflow.compensate import compensate
from chalicelib.workflow.files import file_date, file_shard, manifest_id_of
from chalicelib.workflow.tasks import breaker_config

log = logging.getLogger(__name__)
# Executions that will never finish their manifest. SUCCEEDED belongs here too: Finalize ends the
# run before its execution does, so a manifest still running under a succeeded execution was
# left behind (an execution that ended as a duplicate of its own claim, say).
DEAD_EXECUTION = {"FAILED", "ABORTED", "TIMED_OUT", "SUCCEEDED"}


@dataclass
class RecoverReport:
    resumed: int = 0
    reemitted: int = 0
    compensated: int = 0
    released: int = 0
    errors: int = 0
    skipped: int = 0  # sealing manifests whose sealer's lease still runs: the next run retries
    actions: list[str] = field(default_factory=list)

    def note(self, action: str) -> None:
        self.actions.append(action)
        log.warning("recover: %s", action)

    def counts(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("resumed", "reemitted", "compensated", "released", "errors", "skipped")}


def _default_resume(manifest_id: str, now: float) -> Any:
    from chalicelib import batching  # control plane's finisher: seals and emits ManifestReady

    # recover's clock, not the wall clock: the lease check must agree with the age check above.
    return batching.resume_seal(manifest_id, now=datetime.fromtimestamp(now, UTC))


def _is_busy(exc: Exception) -> bool:
    from chalicelib.batching import SealBusyError

    return isinstance(exc, SealBusyError)


def execution_status(sfn: Any, execution_arn: str) -> str:
    """The execution's status, or MISSING when Step Functions does not know it."""
    if not execution_arn:
        return "MISSING"
    try:
        return str(sfn.describe_execution(executionArn=execution_arn)["status"])
    except sfn.exceptions.ExecutionDoesNotExist:
        return "MISSING"


def recover(
    settings: Settings,
    store: TrackingTable,
    sfn: Any,
    s3: Any,
    sns: Any,
    now: float | None = None,
    resume_seal: Callable[[str, float], Any] = _default_resume,
) -> RecoverReport:
    now = time.time() if now is None else now
    report = RecoverReport()
    threshold = settings.recover_after_seconds

    for status, stamp_attr in ((keys.MANIFEST_SEALING, "created_at"), (keys.MANIFEST_SEALED, "sealed_at")):
        for item in list(store.iter_manifests(status)):
            mid = manifest_id_of(item)
            since = to_epoch(item.get(stamp_attr)) or to_epoch(str(item.get("gsi1sk", "")).split("#")[0]) or 0.0
            if now - since < threshold:
                continue
            try:
                outcome = resume_seal(mid, now)
            except Exception as exc:
                if _is_busy(exc):
                    report.skipped += 1
                    report.note(f"{mid}: skipped: lease running ({exc})")
                    continue
                report.errors += 1
                report.note(f"{mid}: resume of {status} manifest failed: {type(exc).__name__}: {exc}")
                continue
            if status == keys.MANIFEST_SEALED:
                report.reemitted += 1
                report.note(f"{mid}: sealed {int(now - since)}s ago without a run: ManifestReady re-emitted")
            else:
                report.resumed += 1
                report.note(f"{mid}: seal left half done: resumed ({getattr(outcome, 'status', outcome)})")

    for item in list(store.iter_manifests(keys.MANIFEST_RUNNING)):
        mid = manifest_id_of(item)
        arn = str(item.get("execution_arn") or "")
        status = execution_status(sfn, arn)
        if status not in DEAD_EXECUTION and status != "MISSING":
            continue
        try:
            result = compensate(
                {
                    "manifest_id": mid,
                    "execution_arn": arn,
                    "error": {
                        "Error": f"Execution{status.title().replace('_', '')}",
                        "Cause": f"recover: execution {status}",
                    },
                    "output_path": settings.output_path,
                    "quarantine_path": settings.quarantine_path,
                },
                store,
                s3,
                sns,
                max_attempts=settings.max_attempts,
                shard_count=settings.shard_count,
                breaker_cfg=breaker_config(settings),
                alerts_topic_arn=settings.alerts_topic_arn,
                now=now,
                table=settings.table_ref(),
                glue=aws.client("glue") if settings.iceberg_catalog == "glue" else None,
            )
        except Exception as exc:
            report.errors += 1
            report.note(f"{mid}: compensation failed: {type(exc).__name__}: {exc}")
            continue
        if result.get("compensated"):
            report.compensated += 1
            report.note(
                f"{mid}: running with execution {status}: compensated "
                f"({result['requeued']} requeued, {result['quarantined']} quarantined)"
            )

    orphans: dict[str, list[dict[str, Any]]] = {}
    for page in store.scan_index_pages(filter_prefix=f"{keys.CLAIMED}#"):
        for f in page:
            orphans.setdefault(str(f["gsi1pk"]).split("#", 1)[1], []).append(f)
    stamp = now_iso(now)
    for mid, files in sorted(orphans.items()):
        if store.get_manifest(mid) is not None:
            continue
        updates = [
            FileUpdate(
                pk=str(f["pk"]),
                status=keys.PENDING,
                status_key=keys.pending_status_key(file_date(f, mid), file_shard(f, settings.shard_count)),
                set_attrs={"released_at": stamp, "released_from": mid},
                # Reopen the date so flush_stale seals them; no unseal: a claim without a
                # MANIFEST item never reached advance_seal, so it is not in the sealed totals.
                reopen_date=file_date(f, mid),
            )
            for f in files
        ]
        moved = store.move_claimed_files(mid, updates, owner_execution_arn=None)
        report.released += moved
        report.note(f"{mid}: no MANIFEST item: {moved} claimed files back to pending")
    log.info("recover done", extra=report.counts())
    return report


def recover_from_settings(now: float | None = None) -> RecoverReport:
    """recover with the process settings and shared clients (the scheduled Lambda, the CLI)."""
    from chalicelib import aws
    from chalicelib.settings import get_settings
    from chalicelib.workflow.tasks import store

    s = get_settings()
    return recover(s, store(s), aws.client("stepfunctions"), aws.client("s3"), aws.client("sns"), now=now)
