"""A commit that kept losing to other manifests' commits: transient, told apart by name.

Many small manifests commit to one Iceberg table; each commit is optimistic (the catalog swaps the
metadata pointer only if nobody moved it: Glue's ``UpdateTable`` ``VersionId``, the SQL catalog's
``UPDATE ... WHERE metadata_location = <old>``) and ``glue/table.py`` retries a lost swap in place,
with jittered backoff, until its deadline. Only when the conflicts outlast that does it raise
``TableCommitConflictError`` (a ``TableCommitError``) with a message that starts with
``COMMIT_CONFLICT``. Nothing was committed then, and nothing about the data is wrong: Compensate
(chalicelib/workflow/compensate.py) returns the files to pending as they were (no attempt spent,
no narrowing, the breaker not counted). A deterministic refusal (a data file holding other
manifests' rows) stays a plain ``TableCommitError`` and keeps today's isolation.

How it reaches Compensate: from the Lambda converter the error name is the class name
(``{"Error": "TableCommitConflictError", "Cause": "{\\"errorMessage\\": ...}"}``); from a Glue
run it is ``States.TaskFailed`` with the job run as JSON in the cause, its ``ErrorMessage``
holding the message. ``is_commit_conflict`` recognises both.

Standard library only: the Lambda functions import it, and they have no pyarrow.
"""

from __future__ import annotations

import json
from typing import Any

ERROR_NAME = "TableCommitConflictError"
# What the message of a conflict-exhausted commit starts with (after "<name>: " on Glue).
COMMIT_CONFLICT = "Iceberg commit conflicts outlasted the retry deadline: "


def conflict_message(manifest_id: str, attempts: int, waited_seconds: float, last: str) -> str:
    return f"{COMMIT_CONFLICT}manifest {manifest_id}, {attempts} attempts in {waited_seconds:.1f} s; last: {last}"


def _error_text(cause: Any) -> str:
    text = "" if cause is None else str(cause)
    try:
        decoded = json.loads(text)
    except ValueError:
        return text
    if isinstance(decoded, dict):
        for key in ("ErrorMessage", "errorMessage"):
            if isinstance(decoded.get(key), str):
                return decoded[key]
    return text


def is_commit_conflict(error: Any) -> bool:
    """True when a Step Functions error object ``{"Error", "Cause"}`` is a conflict-exhausted commit."""
    if not isinstance(error, dict):
        return False
    if error.get("Error") == ERROR_NAME:
        return True
    return COMMIT_CONFLICT in _error_text(error.get("Cause"))
