"""Throttles and lost answers inside the workflow's tasks: retried by the state machine, never
paid for with a file's attempts, and never leaving a manifest running with nobody to finish it."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from chalicelib import aws, keys
from chalicelib.transient import is_transient
from chalicelib.workflow import tasks
from chalicelib.workflow.errors import TransientError
from chalicelib.workflow.recover import recover_from_settings
from ndjson_parquet.local.faults import FaultPlan
from tests.functional.workflow.conftest import DATE, Workflow

LATER = time.time() + 3600  # "now" for recover: well past RECOVER_AFTER_SECONDS


def _claim(manifest_id: str, execution_arn: str) -> dict:
    event = {"detail": {"manifest_id": manifest_id, "date_prefix": DATE}}
    return tasks.claim_run_task({"event": event, "execution_arn": execution_arn})


@pytest.mark.parametrize(
    ("code", "status"),
    [("ProvisionedThroughputExceededException", 400), ("ThrottlingException", 400), ("InternalError", 500)],
)
def test_a_throttled_task_raises_the_error_the_state_machine_retries(
    workflow: Workflow, code: str, status: int
) -> None:
    # GIVEN DynamoDB answers the task's first call with a throttle that outlasted the SDK's retries
    with Stubber(aws.client("dynamodb")) as stub:
        stub.add_client_error("get_item", service_error_code=code, http_status_code=status)
        # WHEN the claim runs; THEN it fails as TransientError (the ASL's Retry names it), cause kept
        with pytest.raises(TransientError, match=code) as raised:
            _claim(f"{DATE}-000031", "arn:aws:states:us-east-1:123456789012:execution:sm:x")
    assert isinstance(raised.value.__cause__, ClientError)


def test_no_answer_at_all_is_retryable_and_a_bad_request_is_not() -> None:
    assert is_transient(EndpointConnectionError(endpoint_url="https://dynamodb"))
    assert is_transient(ReadTimeoutError(endpoint_url="https://dynamodb"))
    bad = ClientError({"Error": {"Code": "ValidationException"}, "ResponseMetadata": {"HTTPStatusCode": 400}}, "Query")
    assert not is_transient(bad)


def test_a_permanent_aws_error_keeps_its_type(workflow: Workflow) -> None:
    with Stubber(aws.client("dynamodb")) as stub:
        stub.add_client_error("get_item", service_error_code="ValidationException", http_status_code=400)
        with pytest.raises(ClientError) as raised:
            _claim(f"{DATE}-000032", "arn:aws:states:us-east-1:123456789012:execution:sm:x")
    assert not isinstance(raised.value, TransientError)


def test_claim_retried_by_its_own_execution_still_runs(workflow: Workflow) -> None:
    # GIVEN a sealed manifest claimed by execution A
    mid = f"{DATE}-000033"
    workflow.seed_manifest(mid)
    a = "arn:aws:states:us-east-1:123456789012:execution:sm:a"
    first = _claim(mid, a)
    # WHEN A's claim runs again (its first answer was lost) and B, a duplicate delivery, claims too
    again = _claim(mid, a)
    other = _claim(mid, "arn:aws:states:us-east-1:123456789012:execution:sm:b")
    # THEN A still runs the manifest (counted once), and B is the duplicate
    assert (first["action"], again["action"], other["action"]) == ("run", "run", "skip")
    item = workflow.manifest(mid)
    assert (item["status"], item["execution_arn"], int(item["run_count"])) == (keys.MANIFEST_RUNNING, a, 1)


def test_throttles_inside_an_execution_are_retried_without_spending_attempts(workflow: Workflow) -> None:
    # GIVEN every task's first two DynamoDB calls throttled (beyond the SDK's retries)
    mid = f"{DATE}-000034"
    pks = workflow.seed_manifest(mid)
    plan = FaultPlan(seed=3, throttle_rate=1.0, throttle_cap=2)
    plan.install(aws.clients, services=("dynamodb",))
    try:
        # WHEN ManifestReady starts the execution
        workflow.put_manifest_ready(mid)
        [execution] = workflow.wait_all(1, timeout=120)
    finally:
        plan.uninstall()
    # THEN the throttles happened, the tasks were retried, and the run succeeded on its first attempt
    assert plan.injected["throttle"] == 2
    assert execution["status"] == "SUCCEEDED", workflow.failures(execution["executionArn"])
    assert workflow.manifest(mid)["status"] == keys.MANIFEST_SUCCEEDED
    assert all(workflow.file(pk)["status"] == keys.CONVERTED for pk in pks)
    assert all(int(workflow.file(pk).get("attempts", 0)) == 0 for pk in pks)


def test_running_manifest_under_a_succeeded_execution_is_compensated(workflow: Workflow) -> None:
    # GIVEN an execution that succeeded (for another manifest) ...
    done = f"{DATE}-000035"
    workflow.seed_manifest(done)
    workflow.put_manifest_ready(done)
    [execution] = workflow.wait_all(1)
    assert execution["status"] == "SUCCEEDED"
    # ... named as the owner of a manifest still running (what a lost claim answer used to leave)
    mid = f"{DATE}-000036"
    pks = workflow.seed_manifest(mid, status=keys.MANIFEST_RUNNING)
    workflow.set_owner(mid, execution["executionArn"])
    # WHEN recover runs; THEN the orphan is compensated and its files wait for a new manifest
    report = recover_from_settings(now=LATER)
    assert report.counts()["compensated"] == 1, report.actions
    assert workflow.manifest(mid)["status"] == keys.MANIFEST_FAILED
    assert all(workflow.file(pk)["status"] == keys.PENDING for pk in pks)
    # and the manifest that really succeeded is left alone
    assert workflow.manifest(done)["status"] == keys.MANIFEST_SUCCEEDED
