"""Errors the state machine tells apart by name (a Lambda error's ``errorType`` is the class name)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from types import SimpleNamespace
from typing import ParamSpec, TypeVar

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
from botocore.retries.standard import (
    OrRetryChecker,
    RetryContext,
    ThrottledRetryableChecker,
    TransientRetryableChecker,
)


class WorkflowError(RuntimeError):
    """Base class; permanent unless said otherwise (no Retry in the ASL matches it)."""


class TransientError(WorkflowError):
    """Worth retrying as is: throttling, a lost race on an optimistic write. The ASL retries it."""


class ManifestNotFoundError(WorkflowError):
    """The event names a manifest with no MANIFEST item (it is recorded before it is announced)."""


class StaleRunError(WorkflowError):
    """This execution no longer owns the manifest (recover compensated it, or a newer run took it)."""


class ReconciliationError(WorkflowError):
    """The run summary does not add up: lines != rows + quarantined + blank, or files are missing."""


_P = ParamSpec("_P")
_R = TypeVar("_R")

# botocore's standard retry mode decides "the same call may succeed a moment later" (throttling
# codes, transient codes, 5xx, no answer at all); reuse its checkers rather than a copy of its lists.
_RETRYABLE = OrRetryChecker([ThrottledRetryableChecker(), TransientRetryableChecker()])


def is_retryable_aws_error(exc: BaseException) -> bool:
    """Would botocore's standard retry mode retry this? (Seen here, it outlasted those retries.)"""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        http = SimpleNamespace(status_code=status) if status else None
        return bool(_RETRYABLE.is_retryable(RetryContext(1, parsed_response=exc.response, http_response=http)))
    return bool(_RETRYABLE.is_retryable(RetryContext(1, caught_exception=exc)))


def transient_aws_errors(task: Callable[_P, _R]) -> Callable[_P, _R]:
    """A Step Functions task whose AWS call was throttled or got no answer raises
    ``TransientError``, which the ASL retries with backoff; any other error keeps its type (the
    Catch decides). Without this a throttle storm would fail the run and spend one of each
    file's MAX_ATTEMPTS (a chaos campaign quarantined a file that way). Safe because every task
    is idempotent per execution."""

    @wraps(task)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return task(*args, **kwargs)
        except (ClientError, ConnectionError, HTTPClientError) as exc:
            if is_retryable_aws_error(exc):
                raise TransientError(f"{type(exc).__name__}: {exc}") from exc
            raise

    return run
