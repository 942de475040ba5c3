"""release: files a schema-change refusal held (chalicelib/workflow/compensate.py) back to pending.

The operator runs it (``ndjson-parquet release --manifest ID | --all``) after allowing the change:
the table's schema mode (stack parameter / job argument ``--SCHEMA_MODE``) or the table's schema.
Nothing else ever moves a held file: batching claims only ``pending#...`` keys, ``flush_stale``
sees held files as sealed (they stay in their date's sealed totals), ``recover`` looks only at
``claimed#...`` files and sealing/sealed/running manifests.

Per manifest, in this order (each step conditional, so a re-run or a concurrent release is safe):
1. every file still ``held#<id>`` goes back to ``pending`` in transactions; each move reopens the
   file's date and takes it out of the sealed totals in the same transaction, so flush_stale and
   the count threshold seal it again, once (a file leaves held once: the condition is on
   ``held#<id>``);
2. the manifest ``held -> failed`` with ``released_at`` (once: conditional on ``held``). A crash
   between 1 and 2 leaves a held manifest with no held files: the next release finishes it.
Attempts are not touched: a refusal never spent one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from chalicelib import keys
from chalicelib.timeutil import now_iso
from chalicelib.tracking_table import FileUpdate, TrackingTable
from chalicelib.workflow.files import file_date, file_shard, manifest_id_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Released:
    """What one release of one manifest did. ``status`` is the manifest's status before it."""

    manifest_id: str
    status: str  # held | failed | ... | missing
    files: int = 0  # files moved held -> pending by this call
    manifest_released: bool = False  # this call moved the manifest held -> failed
    refused: str = ""  # why nothing was done, when the manifest may not be released now

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def release_update(item: dict[str, Any], manifest_id: str, shard_count: int, stamp: str) -> FileUpdate:
    """A held file back to pending (pure): its own date and shard, attempts and batch_limit as they
    were; its date reopened and the file out of the sealed totals its manifest put it in."""
    date = file_date(item, manifest_id)
    return FileUpdate(
        pk=str(item["pk"]),
        status=keys.PENDING,
        status_key=keys.pending_status_key(date, file_shard(item, shard_count)),
        set_attrs={"released_at": stamp, "released_from": manifest_id},
        reopen_date=date,
        unseal_bytes=int(item.get("size") or 0),
    )


def release_manifest(store: TrackingTable, manifest_id: str, shard_count: int, now: float | None = None) -> Released:
    """Release the files held for one manifest and mark it released; a no-op when nothing is held."""
    stamp = now_iso(time.time() if now is None else now)
    item = store.get_manifest(manifest_id)
    status = str(item.get("status")) if item else "missing"
    if status in (keys.MANIFEST_SEALING, keys.MANIFEST_SEALED, keys.MANIFEST_RUNNING):
        # Its files are claimed by a live manifest (a run may be holding them right now): only
        # the run, or recover, decides their fate.
        return Released(manifest_id, status, refused=f"manifest is {status}, not held")
    held = [f for page in store.iter_held_file_pages(manifest_id) for f in page]
    if item is None and not held:
        return Released(manifest_id, status, refused="no such manifest")
    updates = [release_update(f, manifest_id, shard_count, stamp) for f in held]
    moved = store.release_held_files(manifest_id, updates)
    marked = status == keys.MANIFEST_HELD and store.release_manifest(manifest_id, stamp)
    outcome = Released(manifest_id, status, moved, marked)
    if moved or marked:
        log.warning("released", extra=outcome.as_dict())
    return outcome


def held_manifest_ids(store: TrackingTable) -> list[str]:
    """Every manifest with something to release: the ``held`` manifests, and any manifest that
    still has held files (a hold whose manifest was marked otherwise after a crash)."""
    ids = {manifest_id_of(m) for m in store.iter_manifests(keys.MANIFEST_HELD)}
    for page in store.scan_index_pages(filter_prefix=f"{keys.HELD}#"):
        ids.update(str(f["gsi1pk"]).split("#", 1)[1] for f in page)
    return sorted(ids)


def release_all(store: TrackingTable, shard_count: int, now: float | None = None) -> list[Released]:
    return [release_manifest(store, mid, shard_count, now) for mid in held_manifest_ids(store)]
