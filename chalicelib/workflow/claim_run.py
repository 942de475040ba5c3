"""ClaimRun: the idempotent start of convert-manifest.

A ManifestReady for a manifest that is running or finished is a duplicate delivery and skips;
an event carrying EventBridge's ``replay-name`` reprocesses a manifest that succeeded (its output
is replaced). The execution ARN is recorded on the MANIFEST item, which is what recover checks.

The claim also says which engine converts the manifest (chalicelib/workflow/engine.py): ``bytes`` is
the work (``.gz`` files expanded), ``engine`` is ``lambda`` or ``glue`` from CONVERT_ENGINE and
LAMBDA_MAX_BYTES. Every answer carries both keys, a skip too: the state machine's ResultSelector
reads them, and a missing key there would fail the execution uncaught (States.Runtime).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from chalicelib import keys
from chalicelib.manifest import Manifest, ManifestError
from chalicelib.settings import DEFAULT_LAMBDA_MAX_BYTES
from chalicelib.timeutil import now_iso
from chalicelib.tracking_table import TrackingTable
from chalicelib.workflow import paths
from chalicelib.workflow.engine import AUTO, GZIP_EXPANSION, choose_engine, work_bytes
from chalicelib.workflow.errors import ManifestNotFoundError
from chalicelib.workflow.files import manifest_date, manifest_uri

log = logging.getLogger(__name__)

RUN = "run"
SKIP = "skip"


def manifest_id_from_event(event: dict[str, Any]) -> str:
    detail = event.get("detail") or {}
    manifest_id = detail.get("manifest_id") if isinstance(detail, dict) else None
    if not manifest_id:
        raise ManifestNotFoundError("event has no detail.manifest_id")
    return str(manifest_id)


def manifest_work_bytes(item: dict[str, Any], uri: str, s3: Any) -> tuple[int, str]:
    """The manifest's work bytes and where they came from. The manifest JSON names each file, so
    ``.gz`` files are expanded; without it (expired, no client, or unreadable: the conversion then
    fails and compensates as it always did) the MANIFEST item's ``bytes`` (sizes as stored) is
    counted as if every file were compressed, which errs toward Glue. S3 errors propagate: nothing
    is claimed yet, so the execution alerts and recover re-emits the manifest."""
    text = paths.read_text(uri, s3) if s3 is not None or not uri.startswith("s3://") else None
    if text is not None:
        try:
            return work_bytes(Manifest.from_json(text).files), "manifest"
        except ManifestError:
            return int(item.get("bytes") or 0) * GZIP_EXPANSION, "item (manifest unreadable)"
    return int(item.get("bytes") or 0) * GZIP_EXPANSION, "item"


def claim_run(
    payload: dict[str, Any],
    store: TrackingTable,
    manifest_bucket: str,
    manifest_prefix: str,
    now: float | None = None,
    *,
    s3: Any = None,
    convert_engine: str = AUTO,
    lambda_max_bytes: int = DEFAULT_LAMBDA_MAX_BYTES,
) -> dict[str, Any]:
    """Payload: ``{"event": <EventBridge event>, "execution_arn": ...}``. Returns the claim the
    state machine branches on: ``action`` is ``run`` or ``skip``; ``engine`` the converter."""
    event = payload.get("event") or {}
    execution_arn = str(payload["execution_arn"])
    manifest_id = manifest_id_from_event(event)
    replay_name = event.get("replay-name")
    item = store.get_manifest(manifest_id)
    if item is None:
        raise ManifestNotFoundError(f"manifest {manifest_id} has no MANIFEST item")
    uri = manifest_uri(item, manifest_bucket, manifest_prefix)
    # Before the claim: a read that fails leaves nothing claimed (the state machine alerts, recover re-emits).
    nbytes, counted_from = manifest_work_bytes(item, uri, s3)
    engine = choose_engine(nbytes, convert_engine, lambda_max_bytes)
    started = store.start_run(
        manifest_id, execution_arn, now_iso(time.time() if now is None else now), bool(replay_name)
    )
    base = {
        "manifest_id": manifest_id,
        "manifest_uri": uri,
        "date_prefix": manifest_date(item),
        "replay": bool(replay_name),
        "bytes": nbytes,
        "engine": engine,
    }
    if started is None:
        current = store.get_manifest(manifest_id) or {}
        if current.get("status") == keys.MANIFEST_RUNNING and current.get("execution_arn") == execution_arn:
            # This execution's own claim, retried (its first answer was lost, or a later call
            # was throttled): still ours, so run. Skipping would end the execution as a
            # duplicate and leave the manifest running with nobody to finish it.
            log.info("claim_run run", extra={"manifest_id": manifest_id, "execution_arn": execution_arn, "retry": True})
            return {**base, "action": RUN, "reason": "claim retried", "run": int(current.get("run_count") or 1)}
        reason = f"duplicate delivery: manifest is {current.get('status', 'unknown')}"
        if current.get("status") == keys.MANIFEST_FAILED and not current.get("succeeded_once"):
            reason += " and its files went back to pending"
        elif current.get("status") == keys.MANIFEST_HELD:
            reason += ": its files wait for `ndjson-parquet release` (schema change refused)"
        log.info("claim_run skip", extra={"manifest_id": manifest_id, "reason": reason, "replay": replay_name})
        return {**base, "action": SKIP, "reason": reason, "run": int(current.get("run_count") or 0)}
    log.info(
        "claim_run run",
        extra={
            "manifest_id": manifest_id,
            "execution_arn": execution_arn,
            "replay": replay_name,
            "engine": engine,
            "work_bytes": nbytes,
            "counted_from": counted_from,
        },
    )
    reason = f"replay {replay_name}" if replay_name else "first delivery"
    return {**base, "action": RUN, "reason": reason, "run": int(started.get("run_count") or 1)}
