"""Finalize: the run summary adds up, files become ``converted`` with their counts, the manifest
``succeeded`` with its totals. Retried by the state machine; every write is conditional on this
execution still owning the manifest, so a retry never converts a file twice."""

from __future__ import annotations

import logging
import time
from typing import Any

from chalicelib import keys
from chalicelib.manifest import Manifest
from chalicelib.timeutil import now_iso
from chalicelib.workflow import breaker, paths
from chalicelib.workflow.errors import ReconciliationError
from chalicelib.workflow.files import file_date, file_shard, file_uri
from chalicelib.workflow.store import FileUpdate, WorkflowStore
from chalicelib.workflow.summary import reconcile, totals

log = logging.getLogger(__name__)


def finalize(
    payload: dict[str, Any],
    store: WorkflowStore,
    s3: Any,
    shard_count: int,
    now: float | None = None,
) -> dict[str, Any]:
    manifest_id = str(payload["manifest_id"])
    execution_arn = str(payload["execution_arn"])
    output_path = str(payload["output_path"])
    stamp = now_iso(time.time() if now is None else now)

    manifest_text = paths.read_text(str(payload["manifest_uri"]), s3)
    if manifest_text is None:
        raise ReconciliationError(f"manifest JSON {payload['manifest_uri']} is missing")
    manifest = Manifest.from_json(manifest_text)
    summary = paths.read_json(paths.run_summary_path(output_path, manifest_id), s3)
    if summary is None:
        raise ReconciliationError(f"run summary for {manifest_id} is missing under {output_path}")
    per_file = reconcile(summary, [f.uri for f in manifest.files])
    total = totals(per_file)

    updates: list[FileUpdate] = []
    for page in store.iter_claimed_file_pages(manifest_id):
        for item in page:
            uri = file_uri(item)
            if uri not in per_file:
                raise ReconciliationError(f"file {uri} is claimed by {manifest_id} but not in its manifest")
            date = file_date(item, manifest_id)
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
    store.end_run(
        manifest_id,
        execution_arn,
        keys.MANIFEST_SUCCEEDED,
        {
            "counts": total,
            "finished_at": stamp,
            "succeeded_once": True,
            "job_run_id": str(payload.get("job_run_id") or ""),
            "error": "",
        },
    )
    breaker.record_success(store.client, store.table, time.time() if now is None else now)
    log.info("finalize", extra={"manifest_id": manifest_id, "converted_now": moved, **total})
    return {"manifest_id": manifest_id, "files": len(per_file), "converted_now": moved, "totals": total}
