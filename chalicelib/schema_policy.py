"""The schema-change refusal, in one place for the job that raises it and the saga that reads it.

In schema mode ``failOnNewColumns`` the Glue job (glue/job.py) fails a manifest that would change
the table's schema with ``SchemaChangeError(refusal_message(changes))`` and commits nothing. The
run FAILS with that text in its ``ErrorMessage``; Step Functions hands Compensate the error as
``{"Error": "States.TaskFailed", "Cause": "<the GetJobRun JobRun as JSON>"}`` (the local runtime's
Glue stand-in reports ``"<ExceptionName>: <message>"`` as the ErrorMessage, same shape).
``parse_refusal`` finds the marker in that cause and returns the changes it names, so Compensate
holds the manifest's files instead of retrying them (chalicelib/workflow/compensate.py).

Standard library only: the Lambda functions import it, and they have no pyarrow.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# What the job's message starts with; the changes follow, joined by ", ".
SCHEMA_CHANGE_REFUSED = "schema mode failOnNewColumns: the manifest would change the table's schema: "
# The name the saga records for such a failure (MANIFEST ``error``, the alert).
ERROR_NAME = "SchemaChangeRefused"
# One change is "<kind> <path> <type>" (glue/table_schema.py Change.describe); a type may itself
# contain ", " (struct<a: int64, b: string>), so changes are split only before a kind.
_KINDS = ("added", "widened")
_SPLIT = re.compile(r", (?=(?:" + "|".join(_KINDS) + r") )")


@dataclass(frozen=True)
class SchemaRefusal:
    """The changes a refused manifest would have made, as the job named them."""

    changes: tuple[str, ...]  # "added user.plan string", "widened n int -> bigint"

    @property
    def fields(self) -> tuple[str, ...]:
        """The dotted paths of the changed fields (``user.plan``), in the job's order."""
        return tuple(c.split(" ", 2)[1] for c in self.changes if " " in c)


def refusal_message(changes: Iterable[str]) -> str:
    """The job's message for a refusal of ``changes`` (each ``Change.describe()``)."""
    return SCHEMA_CHANGE_REFUSED + ", ".join(changes)


def _error_text(cause: Any) -> str:
    """The failure text inside a Step Functions ``Cause``: a Glue .sync task's cause is the job
    run as JSON (its ``ErrorMessage``); a Lambda's is ``{"errorMessage": ...}``; else the text."""
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


def parse_refusal(cause: Any) -> SchemaRefusal | None:
    """The refusal named in a failed run's cause, or None when the failure is anything else.

    The changes run from the marker to the end of that line (Glue may append a traceback on the
    next lines). A cause cut short keeps the changes it still names; a marker with no change
    after it is still a refusal (``changes`` empty): the files must not be retried either."""
    text = _error_text(cause)
    at = text.find(SCHEMA_CHANGE_REFUSED)
    if at < 0:
        return None
    rest = text[at + len(SCHEMA_CHANGE_REFUSED) :].splitlines()
    listed = rest[0].strip() if rest else ""
    changes = tuple(c.strip() for c in _SPLIT.split(listed) if c.strip())
    return SchemaRefusal(changes)
