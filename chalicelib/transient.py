"""The one rule for "the same AWS call may succeed a moment later", used by every caller that
decides between retrying and giving up (batching, the workflow tasks, the tracking table).

botocore's standard retry mode already knows throttling codes, transient codes, 5xx and calls
that got no answer at all: its checkers are reused rather than a copy of their lists. Added on
top, for DynamoDB transactions: a ``TransactionCanceledException`` is transient only when every
item that cancelled it did so for a conflict with another transaction or for throttling. A
transaction cancelled by a ``ConditionalCheckFailed`` is a decision of the table (the state is
not what the writer expected) and retrying it as is can never succeed.
"""

from __future__ import annotations

from types import SimpleNamespace

from botocore.exceptions import ClientError
from botocore.retries.standard import (
    OrRetryChecker,
    RetryContext,
    ThrottledRetryableChecker,
    TransientRetryableChecker,
)

_BOTOCORE = OrRetryChecker([ThrottledRetryableChecker(), TransientRetryableChecker()])
# Cancellation reason codes (TransactWriteItems API reference) that a later attempt can clear.
RETRYABLE_CANCELLATION_REASONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)
# A single-item write that collided with a transaction in flight: the same write succeeds once
# the transaction is done. botocore's standard checkers do not list it.
_TRANSACTION_CONFLICT = "TransactionConflictException"
_TRANSACTION_CANCELED = "TransactionCanceledException"


def cancellation_reasons(exc: ClientError) -> list[str]:
    """The reason code of each item of a cancelled transaction, in request order ("None": no fault)."""
    return [str(r.get("Code") or "None") for r in exc.response.get("CancellationReasons", [])]


def is_transient(exc: BaseException) -> bool:
    """Would the same call, made again after a pause, be expected to succeed?"""
    if isinstance(exc, ClientError):
        # The error code is the only thing to go on here: the rule serves callers of any client
        # (and botocore's own checkers read the same field).
        code = exc.response.get("Error", {}).get("Code")
        if code == _TRANSACTION_CANCELED:
            faults = [c for c in cancellation_reasons(exc) if c != "None"]
            return bool(faults) and all(c in RETRYABLE_CANCELLATION_REASONS for c in faults)
        if code == _TRANSACTION_CONFLICT:
            return True
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        http = SimpleNamespace(status_code=status) if status else None
        return bool(_BOTOCORE.is_retryable(RetryContext(1, parsed_response=exc.response, http_response=http)))
    return bool(_BOTOCORE.is_retryable(RetryContext(1, caught_exception=exc)))
