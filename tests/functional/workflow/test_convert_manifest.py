"""convert-manifest executed by moto's interpreter from the one ASL file: success, failure saga,
duplicate, replay, MAX_ATTEMPTS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib import keys
from tests.functional.workflow.conftest import DATE, Workflow


def test_manifest_ready_on_the_bus_reaches_succeeded_with_counts(workflow: Workflow) -> None:
    # GIVEN a sealed manifest of 3 claimed files
    pks = workflow.seed_manifest(f"{DATE}-000001")
    # WHEN ManifestReady is put on the bus (the rule delivers it to the state machine)
    workflow.put_manifest_ready(f"{DATE}-000001")
    [execution] = workflow.wait_all(1)
    # THEN the run succeeded, the manifest holds the totals, every file is converted with its counts
    assert execution["status"] == "SUCCEEDED", workflow.failures(execution["executionArn"])
    item = workflow.manifest(f"{DATE}-000001")
    assert item["status"] == keys.MANIFEST_SUCCEEDED
    assert item["gsi1pk"] == "manifests#succeeded"
    assert item["execution_arn"] == execution["executionArn"]
    assert {k: int(v) for k, v in item["counts"].items()} == {
        "files": 3,
        "lines": 30,
        "rows": 21,
        "quarantined": 6,
        "blank": 3,
    }
    for i, pk in enumerate(pks):
        f = workflow.file(pk)
        assert f["status"] == keys.CONVERTED
        assert f["gsi1pk"] == keys.converted_status_key(DATE, i % 4)
        assert (int(f["lines"]), int(f["rows"]), int(f["quarantined"]), int(f["blank"])) == (10, 7, 2, 1)
    assert len(workflow.glue.runs) == 1
    assert workflow.glue.runs[0]["--OUTPUT_PATH"] == "s3://wf-data/parquet"
    assert workflow.alerts() == []


def test_glue_failure_compensates_alerts_and_fails(workflow: Workflow) -> None:
    pks = workflow.seed_manifest(f"{DATE}-000002")
    workflow.glue.fail_with = "executor lost"
    workflow.put_manifest_ready(f"{DATE}-000002")
    [execution] = workflow.wait_all(1)
    assert execution["status"] == "FAILED"
    item = workflow.manifest(f"{DATE}-000002")
    assert item["status"] == keys.MANIFEST_FAILED
    assert item["error"] == "States.TaskFailed"
    # a run of 3 files failed as a whole: nobody pays an attempt, each is narrowed to half (2)
    for i, pk in enumerate(pks):
        f = workflow.file(pk)
        assert (f["status"], f["gsi1pk"], int(f.get("attempts", 0)), int(f["batch_limit"])) == (
            keys.PENDING,
            keys.pending_status_key(DATE, i % 4),
            0,
            2,
        )
    # the partial output of the failed run is gone: re-pended files cannot leave a second copy
    assert workflow.outputs(f"{DATE}-000002") == []
    [alert] = workflow.alerts()
    assert alert["kind"] == "manifest_failed"
    assert (alert["manifest_id"], alert["requeued"], alert["quarantined"], alert["file_count"]) == (
        f"{DATE}-000002",
        3,
        0,
        3,
    )
    assert "executor lost" not in str(alert)  # error name and counts only


def test_duplicate_event_does_not_start_a_second_run(workflow: Workflow) -> None:
    workflow.seed_manifest(f"{DATE}-000003")
    workflow.put_manifest_ready(f"{DATE}-000003")
    workflow.wait_all(1)
    workflow.put_manifest_ready(f"{DATE}-000003")
    results = workflow.wait_all(2)
    assert [r["status"] for r in results] == ["SUCCEEDED", "SUCCEEDED"]
    assert len(workflow.glue.runs) == 1
    assert int(workflow.manifest(f"{DATE}-000003")["run_count"]) == 1


def test_archive_replay_reruns_and_replaces_output(workflow: Workflow) -> None:
    mid = f"{DATE}-000004"
    pks = workflow.seed_manifest(mid)
    workflow.put_manifest_ready(mid)
    workflow.wait_all(1)
    first_output = workflow.outputs(mid)
    assert len(first_output) == 1
    archive = workflow.events.describe_archive(ArchiveName="wf-archive")
    now = datetime.now(UTC)
    workflow.events.start_replay(
        ReplayName="wf-replay-1",
        EventSourceArn=archive["ArchiveArn"],
        EventStartTime=now - timedelta(hours=1),
        EventEndTime=now + timedelta(minutes=1),
        Destination={"Arn": archive["EventSourceArn"]},
    )
    results = workflow.wait_all(2)
    assert [r["status"] for r in results] == ["SUCCEEDED", "SUCCEEDED"]
    assert len(workflow.glue.runs) == 2
    item = workflow.manifest(mid)
    assert (item["status"], int(item["run_count"]), int(item["counts"]["rows"])) == (keys.MANIFEST_SUCCEEDED, 2, 21)
    second_output = workflow.outputs(mid)
    assert len(second_output) == 1 and second_output != first_output  # replaced, not added
    assert all(workflow.file(pk)["status"] == keys.CONVERTED for pk in pks)


def test_max_attempts_quarantines_a_file_that_fails_alone(workflow: Workflow) -> None:
    mid = f"{DATE}-000005"
    pks = workflow.seed_manifest(mid, n_files=1, attempts=2)  # its third failure on its own
    workflow.glue.fail_with = "still broken"
    workflow.put_manifest_ready(mid)
    [execution] = workflow.wait_all(1)
    assert execution["status"] == "FAILED"
    for pk in pks:
        f = workflow.file(pk)
        assert (f["status"], f["gsi1pk"], int(f["attempts"])) == (
            keys.QUARANTINED,
            keys.quarantined_status_key(DATE),
            3,
        )
    [alert] = workflow.alerts()
    assert (alert["requeued"], alert["quarantined"]) == (0, 1)


def test_a_failure_of_several_files_never_quarantines_them_even_at_max_attempts(workflow: Workflow) -> None:
    mid = f"{DATE}-000006"
    pks = workflow.seed_manifest(mid, n_files=3, attempts=2)  # their next own failure would be the third
    workflow.glue.fail_with = "worker killed"
    workflow.put_manifest_ready(mid)
    [execution] = workflow.wait_all(1)
    assert execution["status"] == "FAILED"
    for pk in pks:  # narrowed, not quarantined: the failure is nobody's in particular
        f = workflow.file(pk)
        assert (f["status"], int(f["attempts"]), int(f["batch_limit"])) == (keys.PENDING, 2, 2)


def test_unbalanced_summary_is_rejected_and_compensated(workflow: Workflow) -> None:
    mid = f"{DATE}-000006"
    pks = workflow.seed_manifest(mid, n_files=1)
    uri = f"s3://input/in/{DATE}/{mid}-f0.ndjson"
    workflow.glue.summary_override = {"files": [{"uri": uri, "lines": 10, "rows": 7, "quarantined": 2, "blank": 0}]}
    workflow.put_manifest_ready(mid)
    [execution] = workflow.wait_all(1)
    assert execution["status"] == "FAILED"
    item = workflow.manifest(mid)
    assert (item["status"], item["error"]) == (keys.MANIFEST_FAILED, "ReconciliationError")
    assert workflow.file(pks[0])["status"] == keys.PENDING
