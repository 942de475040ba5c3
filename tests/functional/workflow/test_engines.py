"""The engine choice executed by moto's interpreter from the one ASL file: ClaimRun's rule, the Lambda
converter's path to Finalize, its fallback to Glue (no attempt spent) and its other failures (the saga)."""

from __future__ import annotations

import pytest

from chalicelib import keys
from chalicelib.workflow import tasks
from chalicelib.workflow.engine import GZIP_EXPANSION
from ndjson_parquet.local.faults import InjectedExit
from tests.functional.workflow.conftest import DATE, MANIFESTS, Workflow


class ConverterDeadlineError(RuntimeError):
    """Named as the converter's (Step Functions matches the class name)."""


def _claim(manifest_id: str, arn: str = "arn:aws:states:us-east-1:123456789012:execution:sm:x") -> dict:
    return tasks.claim_run_task({"event": {"detail": {"manifest_id": manifest_id}}, "execution_arn": arn})


def test_claim_run_decides_the_engine_from_the_manifests_work_bytes(
    workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow.seed_manifest(f"{DATE}-000101")  # 3 plain files of 100 bytes
    workflow.seed_manifest(f"{DATE}-000102")
    workflow.use_engine("auto", monkeypatch, lambda_max_bytes=300)
    claim = _claim(f"{DATE}-000101")
    assert (claim["action"], claim["bytes"], claim["engine"]) == ("run", 300, "lambda")
    # a duplicate delivery answers the same keys (the ResultSelector reads them on every path)
    dup = _claim(f"{DATE}-000101", "arn:aws:states:us-east-1:123456789012:execution:sm:other")
    assert (dup["action"], dup["bytes"], dup["engine"]) == ("skip", 300, "lambda")
    workflow.use_engine("auto", monkeypatch, lambda_max_bytes=299)
    # without its JSON the manifest's item bytes count as compressed: toward Glue, never a guess at Lambda
    key = workflow.manifest(f"{DATE}-000102")["manifest_uri"].split(f"{MANIFESTS}/", 1)[1]
    workflow.s3.delete_object(Bucket=MANIFESTS, Key=key)
    claim = _claim(f"{DATE}-000102")
    assert (claim["bytes"], claim["engine"]) == (300 * GZIP_EXPANSION, "glue")
    workflow.use_engine("lambda", monkeypatch, lambda_max_bytes=0)
    assert _claim(f"{DATE}-000102")["engine"] == "lambda"  # forced, whatever the size


def test_a_small_manifest_is_converted_by_the_lambda_function_and_finalized(
    workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow.use_engine("auto", monkeypatch)
    pks = workflow.seed_manifest(f"{DATE}-000111")
    workflow.put_manifest_ready(f"{DATE}-000111")
    [execution] = workflow.wait_all(1)
    assert execution["status"] == "SUCCEEDED", workflow.failures(execution["executionArn"])
    # the converter got the agreed payload; Glue never ran
    [event] = workflow.converter.events
    assert event == {
        "manifest_id": f"{DATE}-000111",
        "manifest_uri": workflow.manifest(f"{DATE}-000111")["manifest_uri"],
        "execution_arn": execution["executionArn"],
        "run": 1,
    }
    assert workflow.glue.runs == []
    item = workflow.manifest(f"{DATE}-000111")
    assert (item["status"], item["engine"], item["run_id"]) == (keys.MANIFEST_SUCCEEDED, "lambda", "lambda-run-1")
    assert all(workflow.file(pk)["status"] == keys.CONVERTED for pk in pks)


@pytest.mark.parametrize(
    # the converter's own deadline, and a process that ended (OOM kill: the task host reports Runtime.ExitError);
    # every fallback name is checked statically (tests/unit/test_workflow_asl.py)
    "error",
    [ConverterDeadlineError("too little time left"), InjectedExit("oom")],
)
def test_a_lambda_run_out_of_time_or_memory_falls_back_to_glue_without_spending_attempts(
    workflow: Workflow, monkeypatch: pytest.MonkeyPatch, error: BaseException
) -> None:
    workflow.use_engine("auto", monkeypatch)
    pks = workflow.seed_manifest(f"{DATE}-000121", attempts=2)  # one attempt short of quarantine
    workflow.converter.fail_with = error
    workflow.put_manifest_ready(f"{DATE}-000121")
    [execution] = workflow.wait_all(1)
    # THEN Glue converted the same manifest in the same execution, and nothing was compensated
    assert execution["status"] == "SUCCEEDED", workflow.failures(execution["executionArn"])
    assert len(workflow.converter.events) == 1 and len(workflow.glue.runs) == 1
    assert workflow.glue.runs[0]["--MANIFEST_PATH"] == workflow.converter.events[0]["manifest_uri"]
    item = workflow.manifest(f"{DATE}-000121")
    assert (item["status"], item["engine"]) == (keys.MANIFEST_SUCCEEDED, "glue")
    assert item["run_id"] and not item["run_id"].startswith("lambda-run")  # the Glue JobRunId
    for pk in pks:
        f = workflow.file(pk)
        assert (f["status"], int(f["attempts"])) == (keys.CONVERTED, 2)
    history = workflow.sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    assert entered.index("ConvertWithLambda") < entered.index("FallBackToGlue") < entered.index("ConvertManifest")
    assert "Compensate" not in entered
    assert workflow.alerts() == []


def test_any_other_converter_error_compensates_as_a_failed_glue_run_does(
    workflow: Workflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow.use_engine("auto", monkeypatch)
    pks = workflow.seed_manifest(f"{DATE}-000131")
    workflow.converter.fail_with = ValueError("a bug")
    workflow.put_manifest_ready(f"{DATE}-000131")
    [execution] = workflow.wait_all(1)
    assert execution["status"] == "FAILED"
    assert workflow.glue.runs == []  # no fallback: a deterministic failure keeps today's isolation
    item = workflow.manifest(f"{DATE}-000131")
    assert (item["status"], item["error"], item["engine"]) == (keys.MANIFEST_FAILED, "ValueError", "lambda")
    assert all(workflow.file(pk)["status"] == keys.PENDING for pk in pks)
    [alert] = workflow.alerts()
    assert alert["kind"] == "manifest_failed" and alert["error"] == "ValueError"
