"""Finalize with files the job set aside whole (glue/isolation.py): they become ``quarantined`` with
their reason, an alert goes out, the metric is counted, and the rest of the manifest is converted."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import keys, observability
from chalicelib.manifest import Manifest, manifest_object_key
from chalicelib.workflow import paths
from chalicelib.workflow.errors import ReconciliationError
from chalicelib.workflow.summary import reconcile, set_aside
from tests.functional.workflow.conftest import DATE, MANIFESTS, Workflow

REASON = "conversion_error: RuntimeError: injected conversion failure for f1.ndjson"


def _summary(workflow: Workflow, manifest_id: str, poison: int) -> dict[str, Any]:
    text = paths.read_text(f"s3://{MANIFESTS}/{manifest_object_key('manifests', DATE, manifest_id)}", workflow.s3)
    manifest = Manifest.from_json(text or "")
    files = []
    for i, f in enumerate(manifest.files):
        if i == poison:
            files.append({"uri": f.uri, "lines": 1, "rows": 0, "quarantined": 1, "blank": 0, "set_aside": REASON})
        else:
            files.append({"uri": f.uri, "lines": 10, "rows": 7, "quarantined": 2, "blank": 1, "set_aside": None})
    return {"manifest_id": manifest_id, "files": files}


def test_a_set_aside_file_is_quarantined_with_its_reason_and_the_rest_converted(
    workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted: list[tuple[str, float]] = []
    monkeypatch.setattr(observability.metrics, "add_metric", lambda name, unit, value: counted.append((name, value)))
    # GIVEN a sealed 20-file manifest whose run summary sets file 1 aside
    mid = f"{DATE}-000101"
    pks = workflow.seed_manifest(mid, n_files=20)
    workflow.glue.summary_override = _summary(workflow, mid, poison=1)
    # WHEN the run completes
    workflow.put_manifest_ready(mid)
    [execution] = workflow.wait_all(1)
    # THEN the manifest succeeded; 19 files are converted, the poison one quarantined with the reason
    assert execution["status"] == "SUCCEEDED", workflow.failures(execution["executionArn"])
    item = workflow.manifest(mid)
    assert (item["status"], int(item["files_set_aside"])) == (keys.MANIFEST_SUCCEEDED, 1)
    assert {k: int(v) for k, v in item["counts"].items()} == {
        "files": 20,
        "lines": 19 * 10 + 1,
        "rows": 19 * 7,
        "quarantined": 19 * 2 + 1,
        "blank": 19,
    }
    for i, pk in enumerate(pks):
        f = workflow.file(pk)
        if i == 1:
            assert (f["status"], f["gsi1pk"], f["quarantine_reason"]) == (
                keys.QUARANTINED,
                keys.quarantined_status_key(DATE),
                REASON,
            )
            assert (int(f["lines"]), int(f["rows"]), int(f["quarantined"]), int(f.get("attempts") or 0)) == (1, 0, 1, 0)
        else:
            assert f["status"] == keys.CONVERTED, (i, f["status"])
    # an alert with ids, the error type and counts (never the message: it may quote data)
    [alert] = workflow.alerts()
    assert alert["kind"] == "files_set_aside"
    assert (alert["manifest_id"], alert["files_set_aside"], alert["file_count"]) == (mid, 1, 20)
    assert alert["file_ids"] == [pks[1].split("#", 1)[1]]
    assert alert["errors"] == ["conversion_error: RuntimeError"]
    assert "injected" not in str(alert)
    assert (observability.FILES_SET_ASIDE, 1) in counted


def test_reconcile_reads_set_aside_and_refuses_a_set_aside_file_with_rows() -> None:
    ok = {"files": [{"uri": "a", "lines": 1, "rows": 0, "quarantined": 1, "blank": 0, "set_aside": "invalid_gzip: x"}]}
    per_file = reconcile(ok, ["a"])
    assert set_aside(per_file) == {"a": "invalid_gzip: x"}
    assert per_file["a"].as_dict() == {"lines": 1, "rows": 0, "quarantined": 1, "blank": 0}
    plain = {"files": [{"uri": "b", "lines": 2, "rows": 2, "quarantined": 0, "blank": 0}]}
    assert set_aside(reconcile(plain, ["b"])) == {}
    bad = {"files": [{"uri": "a", "lines": 2, "rows": 1, "quarantined": 1, "blank": 0, "set_aside": "x"}]}
    with pytest.raises(ReconciliationError, match="set aside"):
        reconcile(bad, ["a"])
