"""The Glue run summary, checked: docs/invariants.md #4 (``lines = rows + quarantined + blank`` per file)
and "every file of the manifest, and only those, was converted". Pure functions.

A file the job set aside whole (glue/isolation.py) has ``set_aside`` = its reason and counts as one
unit (chalicelib/counts.py)."""

from __future__ import annotations

from typing import Any

from chalicelib.counts import COUNTS, FileCounts
from chalicelib.workflow.errors import ReconciliationError


def _files(summary: Any) -> list[dict[str, Any]]:
    if not isinstance(summary, dict) or "files" not in summary:
        raise ReconciliationError("run summary has no 'files'")
    files = summary["files"]
    if isinstance(files, dict):  # {uri: counts} is accepted too
        return [{"uri": uri, **counts} for uri, counts in files.items()]
    if not isinstance(files, list):
        raise ReconciliationError("run summary 'files' must be a list")
    return files


def reconcile(summary: Any, expected_uris: list[str]) -> dict[str, FileCounts]:
    """Per-file counts by uri; raises ReconciliationError naming the first thing that does not add up."""
    out: dict[str, FileCounts] = {}
    for raw in _files(summary):
        try:
            fc = FileCounts(str(raw["uri"]), *(int(raw[k]) for k in COUNTS))
        except (KeyError, TypeError, ValueError) as exc:
            raise ReconciliationError(f"run summary file entry is incomplete: {exc}") from None
        reason = raw.get("set_aside")
        if reason:
            fc.set_aside = str(reason)
            if fc.rows != 0 or fc.quarantined < 1:
                raise ReconciliationError(f"{fc.uri} is set aside but has {fc.rows} rows, {fc.quarantined} quarantined")
        if min(fc.lines, fc.rows, fc.quarantined, fc.blank) < 0:
            raise ReconciliationError(f"negative count for {fc.uri}")
        if not fc.reconciles():
            raise ReconciliationError(
                f"{fc.uri}: lines {fc.lines} != rows {fc.rows} + quarantined {fc.quarantined} + blank {fc.blank}"
            )
        if fc.uri in out:
            raise ReconciliationError(f"run summary lists {fc.uri} twice")
        out[fc.uri] = fc
    missing = sorted(set(expected_uris) - set(out))
    extra = sorted(set(out) - set(expected_uris))
    if missing or extra:
        raise ReconciliationError(
            f"run summary files differ from the manifest: missing {missing[:3]}, extra {extra[:3]}"
        )
    return out


def totals(per_file: dict[str, FileCounts]) -> dict[str, int]:
    out = {k: sum(getattr(fc, k) for fc in per_file.values()) for k in COUNTS}
    out["files"] = len(per_file)
    return out


def set_aside(per_file: dict[str, FileCounts]) -> dict[str, str]:
    """uri -> reason of the files the job set aside whole."""
    return {uri: fc.set_aside for uri, fc in per_file.items() if fc.set_aside}
