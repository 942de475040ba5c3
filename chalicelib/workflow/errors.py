"""Errors the state machine tells apart by name (a Lambda error's ``errorType`` is the class name)."""

from __future__ import annotations


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
