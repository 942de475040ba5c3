"""The one transient-error rule (chalicelib/transient.py), and the tracking table's transaction
retry that follows it: a cancelled transaction is retried only for conflicts and throttling."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import ANY, Stubber

from chalicelib import keys
from chalicelib.tracking_table import FileUpdate, TrackingTable
from chalicelib.transient import is_transient
from chalicelib.workflow.errors import StaleRunError, TransientError


def _error(code: str, status: int = 400, reasons: list[str] | None = None) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": code},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    if reasons is not None:
        response["CancellationReasons"] = [{"Code": r} for r in reasons]
    return ClientError(response, "TransactWriteItems")  # type: ignore[arg-type]


def _cancelled(*reasons: str) -> ClientError:
    return _error("TransactionCanceledException", reasons=list(reasons))


@pytest.mark.parametrize(
    "reasons",
    [
        ("TransactionConflict",),
        ("None", "TransactionConflict"),
        ("ThrottlingError", "None"),
        ("ProvisionedThroughputExceeded",),
        ("RequestLimitExceeded",),
        ("TransactionConflict", "ThrottlingError"),
    ],
)
def test_a_transaction_cancelled_only_by_conflicts_or_throttling_is_transient(reasons: tuple[str, ...]) -> None:
    assert is_transient(_cancelled(*reasons)) is True


@pytest.mark.parametrize(
    "reasons",
    [
        ("ConditionalCheckFailed",),
        ("ConditionalCheckFailed", "TransactionConflict"),  # one item's condition failed: retrying cannot help
        ("TransactionConflict", "ConditionalCheckFailed"),
        ("ValidationError",),
        ("ItemCollectionSizeLimitExceeded",),
        ("None", "None"),  # no item faulted: nothing says a retry would go differently
        (),
    ],
)
def test_a_transaction_cancelled_by_anything_else_is_not_transient(reasons: tuple[str, ...]) -> None:
    assert is_transient(_cancelled(*reasons)) is False


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ThrottlingException", 400),
        ("ProvisionedThroughputExceededException", 400),
        ("RequestLimitExceeded", 400),
        ("InternalServerError", 500),
        ("ServiceUnavailable", 503),
        ("TransactionConflictException", 400),
    ],
)
def test_throttling_5xx_and_conflicts_with_a_transaction_are_transient(code: str, status: int) -> None:
    assert is_transient(_error(code, status)) is True


@pytest.mark.parametrize(
    "code",
    ["ConditionalCheckFailedException", "ValidationException", "AccessDeniedException", "ResourceNotFoundException"],
)
def test_a_refused_request_is_not_transient(code: str) -> None:
    assert is_transient(_error(code)) is False


def test_no_answer_at_all_is_transient() -> None:
    assert is_transient(EndpointConnectionError(endpoint_url="https://dynamodb")) is True
    assert is_transient(ReadTimeoutError(endpoint_url="https://dynamodb")) is True
    assert is_transient(ValueError("not an AWS error")) is False


# --- the table's transaction retry follows the rule -------------------------------------------
MID = "2026-01-01-000001"
OWNER = "arn:aws:states:us-east-1:123456789012:execution:sm:a"


@pytest.fixture
def stubbed() -> Any:
    client = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        yield TrackingTable(client, "t"), stub


def _updates(n: int) -> list[FileUpdate]:
    return [FileUpdate(keys.file_pk(f"f{i}"), keys.CONVERTED, "converted#x", {}) for i in range(n)]


def _cancel(stub: Stubber, *reasons: str) -> None:
    stub.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        modeled_fields={"CancellationReasons": [{"Code": r} for r in reasons]},
    )


def _no_pause(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    pauses: list[int] = []
    monkeypatch.setattr("chalicelib.tracking_table.sleep_before_retry", pauses.append)
    return pauses


def test_a_conflict_is_retried_after_a_pause_and_the_files_move(stubbed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    table, stub = stubbed
    pauses = _no_pause(monkeypatch)
    _cancel(stub, "TransactionConflict", "None", "None")
    stub.add_response("transact_write_items", {}, {"TransactItems": ANY})
    assert table.move_claimed_files(MID, _updates(2), owner_execution_arn=OWNER) == 2
    assert pauses == [1]
    stub.assert_no_pending_responses()


def test_conflicts_that_outlast_the_retries_raise_transient(stubbed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    table, stub = stubbed
    pauses = _no_pause(monkeypatch)
    for _ in range(3):
        _cancel(stub, "ThrottlingError", "None")
    with pytest.raises(TransientError, match="ThrottlingError"):
        table.move_claimed_files(MID, _updates(1), owner_execution_arn=None, max_conflict_retries=2)
    assert pauses == [1, 2]


def test_a_cancel_by_a_failed_owner_check_is_never_retried(stubbed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    table, stub = stubbed
    pauses = _no_pause(monkeypatch)
    _cancel(stub, "None", "None", "ConditionalCheckFailed")
    with pytest.raises(StaleRunError):
        table.move_claimed_files(MID, _updates(2), owner_execution_arn=OWNER)
    assert pauses == []


def test_files_already_moved_are_dropped_and_the_rest_retried_at_once(
    stubbed: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    table, stub = stubbed
    pauses = _no_pause(monkeypatch)
    _cancel(stub, "ConditionalCheckFailed", "None", "None")  # file 0 moved by an earlier attempt
    stub.add_response("transact_write_items", {}, {"TransactItems": ANY})
    assert table.move_claimed_files(MID, _updates(2), owner_execution_arn=OWNER) == 1
    assert pauses == []


def test_a_cancel_for_an_invalid_request_is_raised_as_is(stubbed: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    table, stub = stubbed
    pauses = _no_pause(monkeypatch)
    _cancel(stub, "ValidationError", "None")
    with pytest.raises(ClientError) as raised:
        table.move_claimed_files(MID, _updates(1), owner_execution_arn=None)
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert not isinstance(raised.value, TransientError)
    assert pauses == []
