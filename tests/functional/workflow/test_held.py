"""A run refused by the table's schema policy (failOnNewColumns) holds its files: Compensate moves
them to ``held`` (no attempt, no retry) and alerts with the fields; recover and replays leave them
alone; ``status`` lists them; ``release`` moves them back to pending once."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from chalicelib import keys
from chalicelib.schema_policy import refusal_message
from chalicelib.settings import get_settings
from chalicelib.workflow import breaker, tasks
from chalicelib.workflow.compensate import compensate
from chalicelib.workflow.errors import StaleRunError
from chalicelib.workflow.recover import recover_from_settings
from ndjson_parquet.cli import main
from tests.functional.workflow.conftest import DATE, Workflow

LATER = time.time() + 3600
CHANGES = ["added user.plan string", "added user.seats bigint"]
REFUSAL = refusal_message(CHANGES)
NOTHING = {"resumed": 0, "reemitted": 0, "compensated": 0, "released": 0, "errors": 0, "skipped": 0}


def hold_through_the_state_machine(wf: Workflow, manifest_id: str, n_files: int = 3) -> list[str]:
    """Seal a manifest, let the Glue stand-in fail with the job's refusal, wait for the saga."""
    pks = wf.seed_manifest(manifest_id, n_files=n_files)
    wf.glue.fail_with = REFUSAL
    expected = len(wf.executions()) + 1
    wf.put_manifest_ready(manifest_id)
    wf.wait_all(expected)
    wf.glue.fail_with = None
    return pks


def held_state(wf: Workflow, pk: str) -> tuple[Any, ...]:
    f = wf.file(pk)
    return f["status"], f["gsi1pk"], int(f.get("attempts", 0)), f.get("batch_limit")


def running_payload(wf: Workflow, manifest_id: str, cause: str = REFUSAL) -> dict[str, Any]:
    """A manifest running under an execution that then failed with ``cause`` (compensate's input)."""
    arn = wf.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{manifest_id}"
    wf.set_owner(manifest_id, arn)
    return {
        "manifest_id": manifest_id,
        "execution_arn": arn,
        "error": {"Error": "States.TaskFailed", "Cause": json.dumps({"ErrorMessage": f"SchemaChangeError: {cause}"})},
        "output_path": get_settings().output_path,
        "quarantine_path": get_settings().quarantine_path,
    }


def run_compensate(payload: dict[str, Any], store: Any = None) -> dict[str, Any]:
    from chalicelib import aws

    s = get_settings()
    return compensate(
        payload,
        store or tasks.store(s),
        aws.client("s3"),
        aws.client("sns"),
        max_attempts=s.max_attempts,
        shard_count=s.shard_count,
        breaker_cfg=tasks.breaker_config(s),
        alerts_topic_arn=s.alerts_topic_arn,
    )


def test_a_schema_refusal_holds_the_files_without_spending_an_attempt_and_alerts_the_fields(
    workflow: Workflow,
) -> None:
    # GIVEN a sealed manifest of 3 files, one of which attempted once before
    mid = f"{DATE}-000031"
    pks = workflow.seed_manifest(mid, attempts=1)
    workflow.glue.fail_with = REFUSAL
    # WHEN the Glue run fails with the job's failOnNewColumns refusal
    workflow.put_manifest_ready(mid)
    [execution] = workflow.wait_all(1)
    # THEN the saga ran to its end, and the manifest is held with the refused changes
    assert execution["status"] == "FAILED"
    ended = workflow.failures(execution["executionArn"])
    assert any(t == "ExecutionFailed" and v.get("error") == "ManifestHeld" for t, v in ended), ended
    item = workflow.manifest(mid)
    assert (item["status"], item["gsi1pk"], item["error"]) == ("held", "manifests#held", "SchemaChangeRefused")
    assert item["schema_changes"] == CHANGES and int(item["schema_changes_total"]) == 2
    assert item["error_cause"] == REFUSAL and item["held_at"]
    # AND every file is held for it: no attempt spent, not narrowed, not pending
    for pk in pks:
        assert held_state(workflow, pk) == (keys.HELD, keys.held_status_key(mid), 1, None)
    # AND the run's partial output is gone, the breaker did not count a failure
    assert workflow.outputs(mid) == []
    assert breaker.read_state(tasks.store()).failures == ()
    # AND ONE alert names the manifest and the new fields: the state machine ends in ManifestHeld,
    # not in its generic manifest_failed alert
    sent = workflow.alerts()
    assert [a["kind"] for a in sent] == ["manifest_held"]
    alerts = {a["kind"]: a for a in sent}
    held = alerts["manifest_held"]
    assert (held["manifest_id"], held["file_count"], held["error"]) == (mid, 3, "SchemaChangeRefused")
    assert held["fields"] == ["user.plan", "user.seats"] and held["changes"] == CHANGES
    assert f"release --manifest {mid}" in held["action"]


def test_held_files_are_not_retried_by_recover_nor_by_a_replay(workflow: Workflow) -> None:
    mid = f"{DATE}-000032"
    pks = hold_through_the_state_machine(workflow, mid)
    workflow.alerts()
    # recover: held files are no orphaned claims, a held manifest is no stuck run
    assert recover_from_settings(now=LATER).counts() == NOTHING
    # a replay of the manifest is a duplicate: the files wait for release, not for a rerun
    assert main(["replay", "--manifest", mid]) == 0
    assert len(workflow.glue.runs) == 1
    assert workflow.manifest(mid)["status"] == keys.MANIFEST_HELD
    assert all(held_state(workflow, pk)[:3] == (keys.HELD, keys.held_status_key(mid), 0) for pk in pks)


def test_status_lists_held_files_and_the_fields_that_held_them(
    workflow: Workflow, capsys: pytest.CaptureFixture[str]
) -> None:
    mid = f"{DATE}-000033"
    hold_through_the_state_machine(workflow, mid, n_files=2)
    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["files_by_date"][DATE] == {"held": 2}
    assert status["manifests"] == {"held": 1}
    assert status["held"] == [
        {
            "manifest_id": mid,
            "held_files": 2,
            "manifest_held": True,
            "held_at": workflow.manifest(mid)["held_at"],
            "changes": CHANGES,
            "changes_total": 2,
        }
    ]
    assert status["oldest_pending_age_seconds"] is None  # held is not pending
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "held by the schema policy" in out
    assert f"{mid}  held files=2  added user.plan string, added user.seats bigint" in out


def test_release_moves_held_files_back_to_pending_once(workflow: Workflow, capsys: pytest.CaptureFixture[str]) -> None:
    mid = f"{DATE}-000034"
    pks = hold_through_the_state_machine(workflow, mid)
    # WHEN the operator releases the manifest (after allowing the change)
    assert main(["release", "--manifest", mid]) == 0
    assert f"{mid}: 3 held files back to pending; manifest released (failed)" in capsys.readouterr().out
    # THEN the files are pending on their own shards, attempts untouched; the manifest is failed
    # (its files belong to newer manifests now) with the time of the release
    first = {pk: workflow.file(pk) for pk in pks}
    for i, pk in enumerate(pks):
        f = first[pk]
        assert (f["status"], f["gsi1pk"], int(f.get("attempts", 0))) == (
            keys.PENDING,
            keys.pending_status_key(DATE, i % 4),
            0,
        )
        assert f["released_from"] == mid
    item = workflow.manifest(mid)
    assert (item["status"], item["gsi1pk"]) == (keys.MANIFEST_FAILED, "manifests#failed") and item["released_at"]
    # AND a second release is a no-op: nothing moves, nothing is re-stamped
    assert main(["release", "--manifest", mid, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again == {
        "released_files": 0,
        "manifests": [{"manifest_id": mid, "status": "failed", "files": 0, "manifest_released": False, "refused": ""}],
    }
    assert {pk: workflow.file(pk) for pk in pks} == first
    assert main(["release", "--all"]) == 0
    assert "released=0 files from 0 manifests" in capsys.readouterr().out
    # AND a replay of the released manifest still does not rerun it
    assert main(["replay", "--manifest", mid]) == 0
    assert len(workflow.glue.runs) == 1


def test_release_all_releases_every_held_manifest(workflow: Workflow, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = f"{DATE}-000035", f"{DATE}-000036"
    pks = hold_through_the_state_machine(workflow, a, n_files=2) + hold_through_the_state_machine(workflow, b, 1)
    assert main(["release", "--all"]) == 0
    out = capsys.readouterr().out
    assert "released=3 files from 2 manifests" in out, out
    assert all(workflow.file(pk)["status"] == keys.PENDING for pk in pks)
    assert {workflow.manifest(m)["status"] for m in (a, b)} == {keys.MANIFEST_FAILED}


def test_release_refuses_a_live_or_missing_manifest(workflow: Workflow, capsys: pytest.CaptureFixture[str]) -> None:
    mid = f"{DATE}-000037"
    pks = workflow.seed_manifest(mid, status=keys.MANIFEST_RUNNING)
    assert main(["release", "--manifest", mid]) == 1
    assert f"{mid}: not released: manifest is running, not held" in capsys.readouterr().out
    assert all(workflow.file(pk)["status"] == keys.CLAIMED for pk in pks)
    assert main(["release", "--manifest", f"{DATE}-999999"]) == 1
    assert "not released: no such manifest" in capsys.readouterr().out


def test_release_finishes_a_hold_whose_manifest_was_marked_otherwise(
    workflow: Workflow, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN files held for a manifest that a crash left failed (recover compensated it with its
    # own cause after the files had moved): status shows them, release --all finds them
    mid = f"{DATE}-000038"
    pks = hold_through_the_state_machine(workflow, mid, n_files=2)
    from chalicelib.tracking_table import to_item

    workflow.ddb.update_item(
        TableName="wf-tracking",
        Key=to_item({"pk": keys.manifest_pk(mid), "sk": keys.MANIFEST_SK}),
        UpdateExpression="SET #s = :f, gsi1pk = :g",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues=to_item({":f": keys.MANIFEST_FAILED, ":g": "manifests#failed"}),
    )
    assert main(["status", "--json"]) == 0
    [entry] = json.loads(capsys.readouterr().out)["held"]
    assert (entry["manifest_id"], entry["held_files"], entry["manifest_held"]) == (mid, 2, False)
    assert main(["release", "--all"]) == 0
    assert f"{mid}: 2 held files back to pending; manifest failed" in capsys.readouterr().out
    assert all(workflow.file(pk)["status"] == keys.PENDING for pk in pks)


def test_a_retried_compensate_of_a_hold_moves_nothing_and_alerts_again(workflow: Workflow) -> None:
    mid = f"{DATE}-000039"
    pks = workflow.seed_manifest(mid, status=keys.MANIFEST_RUNNING)
    payload = running_payload(workflow, mid)
    first = run_compensate(payload)
    assert (first["held"], first["error"], first["compensated"]) == (3, "SchemaChangeRefused", True)
    assert (first["requeued"], first["quarantined"]) == (0, 0)
    # its answer was lost: Step Functions retries Compensate with the same input
    again = run_compensate(payload)
    assert (again["held"], again["reason"]) == (3, "held already by this execution")
    assert [a["kind"] for a in workflow.alerts()] == ["manifest_held", "manifest_held"]  # at least once
    assert all(held_state(workflow, pk)[:3] == (keys.HELD, keys.held_status_key(mid), 0) for pk in pks)
    # another execution's compensate (a stale run) does not touch the held manifest
    stale = {**payload, "execution_arn": payload["execution_arn"] + "-other"}
    assert run_compensate(stale)["reason"] == "not owned by this execution"
    assert workflow.alerts() == []


def test_a_compensate_that_died_between_holding_files_and_the_manifest_finishes_on_retry(workflow: Workflow) -> None:
    mid = f"{DATE}-000040"
    pks = workflow.seed_manifest(mid, status=keys.MANIFEST_RUNNING)
    payload = running_payload(workflow, mid)
    store = tasks.store()

    class DiesOnEndRun:
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def end_run(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("Lambda container died")

    with pytest.raises(RuntimeError):
        run_compensate(payload, DiesOnEndRun())
    assert workflow.manifest(mid)["status"] == keys.MANIFEST_RUNNING
    assert all(workflow.file(pk)["status"] == keys.HELD for pk in pks)
    assert workflow.alerts() == []
    # the retry finds no claimed file left and holds the manifest; the alert goes out now
    result = run_compensate(payload)
    assert (result["held"], workflow.manifest(mid)["status"]) == (3, keys.MANIFEST_HELD)
    assert [a["kind"] for a in workflow.alerts()] == ["manifest_held"]
    assert all(held_state(workflow, pk)[:3] == (keys.HELD, keys.held_status_key(mid), 0) for pk in pks)


def test_ownership_lost_while_holding_changes_nothing_more(workflow: Workflow) -> None:
    mid = f"{DATE}-000041"
    pks = workflow.seed_manifest(mid, status=keys.MANIFEST_RUNNING)
    payload = running_payload(workflow, mid)
    store = tasks.store()

    class LosesOwnership:
        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def move_claimed_files(self, manifest_id: str, *args: Any, **kwargs: Any) -> int:
            raise StaleRunError(f"recover compensated {manifest_id} meanwhile")

    result = run_compensate(payload, LosesOwnership())
    assert (result["compensated"], result["reason"]) == (False, "ownership lost while holding")
    assert workflow.manifest(mid)["status"] == keys.MANIFEST_RUNNING
    assert all(workflow.file(pk)["status"] == keys.CLAIMED for pk in pks)
    assert workflow.alerts() == []


def test_a_refused_replay_of_a_succeeded_manifest_holds_nothing(workflow: Workflow) -> None:
    # GIVEN a manifest that succeeded once (its files converted), replayed under failOnNewColumns
    mid = f"{DATE}-000042"
    pks = workflow.seed_manifest(mid)
    workflow.put_manifest_ready(mid)
    [execution] = workflow.wait_all(1)
    assert execution["status"] == "SUCCEEDED"
    workflow.glue.fail_with = REFUSAL
    assert main(["replay", "--manifest", mid]) == 1
    workflow.glue.fail_with = None
    # THEN its rows stay (the job committed nothing), its files stay converted, nothing is held
    item = workflow.manifest(mid)
    assert item["status"] == keys.MANIFEST_FAILED and item.get("succeeded_once")
    assert all(workflow.file(pk)["status"] == keys.CONVERTED for pk in pks)
    assert "manifest_held" not in {a["kind"] for a in workflow.alerts()}


def test_an_ordinary_failure_is_still_requeued_not_held(workflow: Workflow) -> None:
    mid = f"{DATE}-000043"
    pks = workflow.seed_manifest(mid, n_files=1, status=keys.MANIFEST_RUNNING)
    payload = running_payload(workflow, mid, cause="RuntimeError: executor lost")
    result = run_compensate(payload)
    assert (result["held"], result["requeued"]) == (0, 1)
    f = workflow.file(pks[0])
    assert (f["status"], int(f["attempts"])) == (keys.PENDING, 1)
