"""Fault isolation: one file never takes down its manifest (docs/invariants.md #9).

Each file of a Spark task is read and converted inside ``guard``. An exception there is judged:

* **transient** (the same call may succeed a moment later: an S3 ``SlowDown``/5xx/throttle that
  outlasted botocore's own retries, any other botocore or AWS error, a timeout, a lost connection,
  any ``OSError``, ``MemoryError``): re-raised. The task fails, the run fails, and the usual retries
  apply (Spark's task retries, the state machine's, Compensate's requeue). An environment problem
  (a missing grant, a vanished object) is never the file's fault either: it fails the run, named.
* **deterministic** (everything else: a bug, a library limit such as ``ArrowInvalid`` or a
  ``RecursionError``, a ``.gz`` that does not decompress): the file is **set aside whole**. It
  yields ONE quarantine record (line 1, empty ``raw``, reason ``conversion_error: <Type>: <message>``
  or ``invalid_gzip: ...``) and counts ``lines = 1, rows = 0, quarantined = 1, blank = 0``: the
  object counts as one unit, the one record that stands for it, so ``lines = rows + quarantined +
  blank`` holds; ``set_aside`` carries the reason into the run summary, and Finalize moves the file
  to ``quarantined`` with that reason (an alert and the ``FilesSetAside`` metric) while the rest of
  the manifest commits. None of the file's rows are written: the file's table only joins the task's
  part once its conversion finished.

``INJECT`` is a test hook: a fault the driver ships to the tasks of the next runs. It is ``None``
unless a test sets it (nothing in production does), and then only files whose bytes contain its
marker are affected.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from typing import Literal

MAX_MESSAGE = 500

# Deterministic although they subclass OSError: a corrupt gzip stream is a property of the bytes.
_DETERMINISTIC_OS_ERRORS: tuple[type[BaseException], ...] = (gzip.BadGzipFile, EOFError, zlib.error)


def _transient_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [OSError, MemoryError]  # OSError: timeouts, connections, I/O
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        types += [BotoCoreError, ClientError]
    except ImportError:  # pragma: no cover - botocore is always installed with boto3
        pass
    try:
        from urllib3.exceptions import HTTPError

        types.append(HTTPError)
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


_TRANSIENT = _transient_types()


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` says nothing about the file's bytes: the run must fail and be retried."""
    if isinstance(exc, _DETERMINISTIC_OS_ERRORS):
        return False
    return isinstance(exc, _TRANSIENT)


def conversion_error(exc: BaseException) -> str:
    """The quarantine reason of a file set aside: ``conversion_error: <Type>: <message>``."""
    message = " ".join(str(exc).split())
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - 3] + "..."
    name = type(exc).__name__
    return f"conversion_error: {name}: {message}" if message else f"conversion_error: {name}"


@dataclass(frozen=True)
class InjectedFault:
    """Test hook: converting a file whose bytes contain ``marker`` raises. ``deterministic`` raises
    a RuntimeError (set aside), ``transient`` an S3 ``SlowDown`` ClientError (fails the run),
    ``kill`` ends the worker process abruptly (as the OOM killer would: the whole run fails;
    only ever inside a Spark worker or a ProcessExecutor worker, never in a test's own process).

    ``times`` with ``tally`` (a local folder): the fault fires on its first ``times`` hits only, each
    hit leaving a file in ``tally`` (shared by every worker process), so a test can make a task fail
    transiently twice and then succeed, and count the attempts."""

    marker: bytes
    kind: Literal["deterministic", "transient", "kill"] = "deterministic"
    times: int | None = None
    tally: str | None = None

    def check(self, uri: str, raw: bytes) -> None:
        if self.marker not in raw:
            return
        if self.tally is not None:
            import os
            import uuid

            hits = len(os.listdir(self.tally))
            if self.times is not None and hits >= self.times:
                return
            with open(os.path.join(self.tally, uuid.uuid4().hex), "w"):
                pass
        if self.kind == "kill":
            import os

            os._exit(137)
        if self.kind == "transient":
            from botocore.exceptions import ClientError

            raise ClientError(
                {
                    "Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."},
                    "ResponseMetadata": {"HTTPStatusCode": 503},
                },
                "GetObject",
            )
        raise RuntimeError(f"injected conversion failure for {uri.rsplit('/', 1)[-1]}")


INJECT: InjectedFault | None = None  # set by tests only; read by the driver (glue/job.py)
