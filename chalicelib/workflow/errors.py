"""Errors the state machine tells apart by name (a Lambda error's ``errorType`` is the class name)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from chalicelib.transient import is_transient


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


def transient_aws_errors(task: Callable[_P, _R]) -> Callable[_P, _R]:
    """A Step Functions task whose AWS call was throttled or got no answer raises
    ``TransientError``, which the ASL retries with backoff; any other error keeps its type (the
    Catch decides). Without this a throttle storm would fail the run and spend one of each
    file's MAX_ATTEMPTS (a chaos campaign quarantined a file that way). Safe because every task
    is idempotent per execution. What counts as transient: ``chalicelib/transient.py``."""

    @wraps(task)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return task(*args, **kwargs)
        except (ClientError, ConnectionError, HTTPClientError) as exc:
            if is_transient(exc):
                raise TransientError(f"{type(exc).__name__}: {exc}") from exc
            raise

    return run
