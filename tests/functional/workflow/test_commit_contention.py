"""A commit that lost to contention (TableCommitConflictError) is transient: Compensate returns its
files to pending as they were sealed (no attempt, no narrowing, breaker not counted), whether the
Glue run reports it in its ErrorMessage or the Lambda converter by its error name; a deterministic
commit refusal keeps today's isolation (narrowed, or an attempt for a one-file manifest)."""

from __future__ import annotations

import json

from chalicelib import keys
from chalicelib.commit_conflict import ERROR_NAME, conflict_message
from chalicelib.workflow import breaker, tasks
from tests.functional.workflow.conftest import DATE, Workflow


def _breaker_failures() -> int:
    return len(breaker.read_state(tasks.store()).failures)


def _running(workflow: Workflow, mid: str, n_files: int, attempts: int = 0) -> tuple[list[str], str]:
    pks = workflow.seed_manifest(mid, n_files=n_files, attempts=attempts, status=keys.MANIFEST_RUNNING)
    arn = f"arn:aws:states:us-east-1:123456789012:execution:wf-convert-manifest:{mid}"
    workflow.set_owner(mid, arn)
    return pks, arn


def test_contention_spends_no_attempt_and_a_refusal_keeps_its_isolation(workflow: Workflow) -> None:
    # (one test, one state machine: the fixture is the expensive part)
    # GIVEN a manifest of one file whose next own failure would quarantine it (attempts 2 of 3)
    mid = f"{DATE}-000011"
    [pk] = workflow.seed_manifest(mid, n_files=1, attempts=2)
    # WHEN the Glue run fails because its commit kept losing to other manifests' commits
    workflow.glue.fail_with = conflict_message(mid, 57, 300.0, "Table has been updated by another process")
    workflow.put_manifest_ready(mid)
    [execution] = workflow.wait_all(1)

    # THEN the run is compensated: the manifest failed, its file pending again, attempts unchanged
    assert execution["status"] == "FAILED"
    assert workflow.manifest(mid)["status"] == keys.MANIFEST_FAILED
    f = workflow.file(pk)
    assert (f["status"], f["gsi1pk"], int(f["attempts"]), f.get("batch_limit")) == (
        keys.PENDING,
        keys.pending_status_key(DATE, 0),
        2,
        None,
    )
    # AND the breaker did not count it; the output of the run is gone as for any failure
    assert _breaker_failures() == 0
    assert workflow.outputs(mid) == []
    assert DATE in list(tasks.store().open_dates())  # flush_stale / the next arrival seal it again

    # GIVEN two running manifests of 3 files and one running manifest of 1 file
    lost, lost_arn = _running(workflow, f"{DATE}-000012", 3, attempts=1)
    refused, refused_arn = _running(workflow, f"{DATE}-000013", 3)
    alone, alone_arn = _running(workflow, f"{DATE}-000014", 1)
    conflict = {"Error": ERROR_NAME, "Cause": json.dumps({"errorType": ERROR_NAME, "errorMessage": "lost"})}
    refusal = {
        "Error": "TableCommitError",
        "Cause": json.dumps({"errorType": "TableCommitError", "errorMessage": "data file x does not hold manifest"}),
    }

    # WHEN Compensate runs for a contention failure (the Lambda converter's error name)
    done = tasks.compensate_task({"manifest_id": f"{DATE}-000012", "execution_arn": lost_arn, "error": conflict})
    # THEN no narrowing and no attempt: the files are pending as they were sealed; breaker untouched
    assert (done["requeued"], done["quarantined"], done["narrowed_to"], done["breaker"]) == (3, 0, 0, "")
    for pk in lost:
        f = workflow.file(pk)
        assert (f["status"], int(f["attempts"]), f.get("batch_limit")) == (keys.PENDING, 1, None)
    assert _breaker_failures() == 0

    # WHEN it runs for deterministic refusals, THEN today's isolation: narrowed, or an attempt alone
    done = tasks.compensate_task({"manifest_id": f"{DATE}-000013", "execution_arn": refused_arn, "error": refusal})
    assert (done["requeued"], done["narrowed_to"]) == (3, 2)
    assert all(int(workflow.file(pk)["batch_limit"]) == 2 for pk in refused)
    tasks.compensate_task({"manifest_id": f"{DATE}-000014", "execution_arn": alone_arn, "error": refusal})
    [pk] = alone
    assert (workflow.file(pk)["status"], int(workflow.file(pk)["attempts"])) == (keys.PENDING, 1)
    assert _breaker_failures() == 2
