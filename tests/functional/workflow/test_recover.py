"""Each stuck state created on purpose; recover (and a re-run) ends with every file converted once."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chalicelib import keys
from chalicelib.tracking_table import to_item
from chalicelib.workflow import tasks
from chalicelib.workflow.recover import recover_from_settings
from tests.functional.workflow.conftest import DATA, DATE, MANIFESTS, TABLE, Workflow

LATER = time.time() + 3600  # "now" for recover: well past RECOVER_AFTER_SECONDS


def reseal(wf: Workflow, pks: list[str], manifest_id: str) -> None:
    """What the sealer does with re-pended files: claim them into a new sealed manifest."""
    from chalicelib.manifest import Manifest, ManifestFile, manifest_object_key

    files = []
    for pk in pks:
        f = wf.file(pk)
        assert f["status"] == keys.PENDING
        files.append(ManifestFile(uri=f"s3://{f['bucket']}/{f['key']}", size=100))
        wf.ddb.update_item(
            TableName=TABLE,
            Key=to_item({"pk": pk, "sk": keys.FILE_SK}),
            UpdateExpression="SET #s = :c, gsi1pk = :g, manifest_id = :m",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=to_item(
                {":c": keys.CLAIMED, ":g": keys.claimed_status_key(manifest_id), ":m": manifest_id}
            ),
        )
    key = manifest_object_key("manifests", DATE, manifest_id)
    wf.s3.put_object(Bucket=MANIFESTS, Key=key, Body=Manifest(manifest_id, DATE, tuple(files)).to_json().encode())
    wf.ddb.put_item(
        TableName=TABLE,
        Item=to_item(
            {
                "pk": keys.manifest_pk(manifest_id),
                "sk": keys.MANIFEST_SK,
                "manifest_id": manifest_id,
                "date_prefix": DATE,
                "seq": 99,
                "status": keys.MANIFEST_SEALED,
                "gsi1pk": keys.manifest_status_key(keys.MANIFEST_SEALED),
                "gsi1sk": f"2025-01-15T01:00:00Z#{manifest_id}",
                "manifest_uri": f"s3://{MANIFESTS}/{key}",
                "file_count": len(files),
                "bytes": 100 * len(files),
                "sealed_at": "2025-01-15T01:00:00Z",
            }
        ),
    )


def all_outputs(wf: Workflow) -> list[str]:
    resp = wf.s3.list_objects_v2(Bucket=DATA, Prefix=f"parquet/dt={DATE}/")
    return [o["Key"] for o in resp.get("Contents", [])]


def assert_converted_once(wf: Workflow, pks: list[str], manifest_id: str) -> None:
    for pk in pks:
        f = wf.file(pk)
        assert (f["status"], f["manifest_id"]) == (keys.CONVERTED, manifest_id)
    # exactly one partition holds rows: the manifest that converted them
    assert {k.split("/")[2] for k in all_outputs(wf)} == {f"manifest={manifest_id}"}


def test_crash_between_manifest_write_and_put_events_is_reemitted(workflow: Workflow) -> None:
    # GIVEN a manifest sealed an hour ago whose ManifestReady was never put on the bus
    mid = f"{DATE}-000010"
    pks = workflow.seed_manifest(mid)
    # WHEN recover runs
    report = recover_from_settings(now=LATER)
    # THEN it re-emitted the event (through the control plane's resume_seal) and the run converted it
    assert report.counts()["reemitted"] == 1, report.actions
    [execution] = workflow.wait_all(1)
    assert execution["status"] == "SUCCEEDED", workflow.failures(execution["executionArn"])
    assert_converted_once(workflow, pks, mid)
    assert recover_from_settings(now=LATER).counts() == {
        "resumed": 0,
        "reemitted": 0,
        "compensated": 0,
        "released": 0,
        "errors": 0,
        "skipped": 0,
    }


def test_running_with_missing_execution_is_compensated(workflow: Workflow) -> None:
    mid = f"{DATE}-000011"
    pks = workflow.seed_manifest(mid, status=keys.MANIFEST_RUNNING)
    workflow.set_owner(mid, workflow.state_machine_arn.replace(":stateMachine:", ":execution:") + ":gone")
    report = recover_from_settings(now=LATER)
    assert report.counts()["compensated"] == 1, report.actions
    item = workflow.manifest(mid)
    assert (item["status"], item["error"]) == (keys.MANIFEST_FAILED, "ExecutionMissing")
    # 3 files failed together: narrowed to 2, no attempt counted
    assert all((workflow.file(pk)["status"], int(workflow.file(pk)["batch_limit"])) == (keys.PENDING, 2) for pk in pks)
    assert all(int(workflow.file(pk).get("attempts", 0)) == 0 for pk in pks)
    # a second recover changes nothing
    assert recover_from_settings(now=LATER).counts()["compensated"] == 0
    assert all(int(workflow.file(pk).get("attempts", 0)) == 0 for pk in pks)


def test_a_single_file_run_compensated_twice_counts_one_attempt(workflow: Workflow) -> None:
    mid = f"{DATE}-000017"
    [pk] = workflow.seed_manifest(mid, n_files=1, status=keys.MANIFEST_RUNNING)
    workflow.set_owner(mid, workflow.state_machine_arn.replace(":stateMachine:", ":execution:") + ":gone")
    assert recover_from_settings(now=LATER).counts()["compensated"] == 1
    assert recover_from_settings(now=LATER).counts()["compensated"] == 0
    f = workflow.file(pk)
    assert (f["status"], int(f["attempts"]), int(f["batch_limit"])) == (keys.PENDING, 1, 1)


def test_crash_between_glue_success_and_finalize_then_rerun_converts_once(workflow: Workflow) -> None:
    mid = f"{DATE}-000012"
    pks = workflow.seed_manifest(mid)
    crash: dict[str, Any] = {"on": True}

    def crashing_finalize(payload: dict[str, Any]) -> dict[str, Any]:
        if crash["on"]:
            raise RuntimeError("Lambda container died")
        return tasks.finalize_task(payload)

    workflow.host.serve_lambda("wf-finalize", crashing_finalize)
    workflow.put_manifest_ready(mid)
    [execution] = workflow.wait_all(1)
    assert execution["status"] == "FAILED"
    assert workflow.outputs(mid) == []  # Glue's output of the failed run was removed by the saga
    crash["on"] = False
    reseal(workflow, pks, f"{DATE}-000013")
    workflow.put_manifest_ready(f"{DATE}-000013")
    results = workflow.wait_all(2)
    assert sorted(r["status"] for r in results) == ["FAILED", "SUCCEEDED"]
    assert_converted_once(workflow, pks, f"{DATE}-000013")


def test_crash_inside_compensate_is_finished_by_recover(workflow: Workflow) -> None:
    mid = f"{DATE}-000014"
    pks = workflow.seed_manifest(mid)
    workflow.glue.fail_with = "bad job"

    def crashing_compensate(payload: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("Lambda container died")

    workflow.host.serve_lambda("wf-compensate", crashing_compensate)
    workflow.put_manifest_ready(mid)
    [execution] = workflow.wait_all(1)
    assert execution["status"] == "FAILED"
    assert workflow.manifest(mid)["status"] == keys.MANIFEST_RUNNING  # left for recover
    [alert] = workflow.alerts()
    assert (alert["kind"], alert["manifest_id"]) == ("manifest_uncompensated", mid)

    report = recover_from_settings(now=LATER)
    assert report.counts()["compensated"] == 1, report.actions
    assert workflow.manifest(mid)["status"] == keys.MANIFEST_FAILED
    assert workflow.outputs(mid) == []
    workflow.glue.fail_with = None
    reseal(workflow, pks, f"{DATE}-000015")
    workflow.put_manifest_ready(f"{DATE}-000015")
    workflow.wait_all(2)
    assert_converted_once(workflow, pks, f"{DATE}-000015")
    assert all(int(workflow.file(pk).get("attempts", 0)) == 0 for pk in pks)  # 3 failed together: narrowed


def test_files_claimed_by_a_missing_manifest_go_back_to_pending(workflow: Workflow) -> None:
    mid = f"{DATE}-000016"
    pks = workflow.seed_manifest(mid)
    workflow.ddb.delete_item(TableName=TABLE, Key=to_item({"pk": keys.manifest_pk(mid), "sk": keys.MANIFEST_SK}))
    report = recover_from_settings(now=LATER)
    assert report.counts()["released"] == 3, report.actions
    for i, pk in enumerate(pks):
        f = workflow.file(pk)
        assert (f["status"], f["gsi1pk"], int(f.get("attempts", 0))) == (
            keys.PENDING,
            keys.pending_status_key(DATE, i % 4),
            0,
        )


def test_sealing_manifest_is_skipped_inside_the_lease_then_resumed_and_converted(workflow: Workflow) -> None:
    from chalicelib import batching
    from chalicelib.file_store import TrackedFile
    from chalicelib.timeutil import now_iso
    from chalicelib.tracking_table import TrackingTable

    # GIVEN a sealer that won batch 0 of the date, claimed its 3 pending files and died
    store = TrackingTable(workflow.ddb, TABLE)
    for i in range(3):
        key = f"in/{DATE}/s{i}.ndjson"
        at = f"2025-01-15T00:00:0{i}.000000Z"
        fid = keys.file_id("input", key, "e")
        assert store.put_file(TrackedFile(fid, "input", key, 100, "e", None, at, DATE, i % 4, keys.PENDING, 0))
    deps = batching.Deps.build()
    died = time.time() - 5
    mid = keys.manifest_id_for(DATE, 0)
    assert deps.store.begin_seal(mid, DATE, 0, "dead-sealer", now_iso(died))
    assert len(batching.claim_batch(DATE, mid, deps, now_iso(died))) == 3

    # WHEN recover runs past RECOVER_AFTER_SECONDS (60) but inside the sealer's lease (900 s)
    report = recover_from_settings(now=died + 120)

    # THEN it leaves the seal to its possible owner: skipped, not an error
    assert (report.counts()["skipped"], report.counts()["errors"]) == (1, 0), report.actions
    assert workflow.manifest(mid)["status"] == keys.MANIFEST_SEALING

    # WHEN recover runs after the lease
    report = recover_from_settings(now=died + batching.SEAL_LEASE_SECONDS + 1)

    # THEN the seal is finished from the claimed files, ManifestReady goes out, and the run converts them
    assert (report.counts()["resumed"], report.counts()["errors"]) == (1, 0), report.actions
    [execution] = workflow.wait_all(1)
    assert execution["status"] == "SUCCEEDED", workflow.failures(execution["executionArn"])
    assert workflow.manifest(mid)["status"] == keys.MANIFEST_SUCCEEDED
    assert int(workflow.manifest(mid)["file_count"]) == 3
    assert deps.store.read_totals(DATE, 4).sealed_files == 3


def test_only_the_owning_execution_marks_finalizing_and_the_first_stamp_stays(workflow: Workflow) -> None:
    from chalicelib.workflow.errors import StaleRunError

    mid = f"{DATE}-000021"
    workflow.seed_manifest(mid, status=keys.MANIFEST_RUNNING)
    owner = workflow.state_machine_arn.replace(":stateMachine:", ":execution:") + ":owner"
    workflow.set_owner(mid, owner)
    store = tasks.store()
    # an execution that does not own the manifest is refused and leaves no mark
    with pytest.raises(StaleRunError):
        store.mark_finalizing(mid, owner + "-other", "2025-01-15T01:00:00Z")
    assert "finalizing_since" not in workflow.manifest(mid)
    # the owner marks it; a retried Finalize keeps the first stamp
    store.mark_finalizing(mid, owner, "2025-01-15T01:00:00Z")
    store.mark_finalizing(mid, owner, "2025-01-15T02:00:00Z")
    assert workflow.manifest(mid)["finalizing_since"] == "2025-01-15T01:00:00Z"
