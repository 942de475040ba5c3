"""Handlers the sandbox tests run in a Lambda sandbox process (ndjson_parquet/local/sandbox.py)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

STARTED = time.time()  # module state: lives as long as the sandbox (a warm container)


class WorkerDiedError(RuntimeError):
    """Named as the converter's own error is: the invocation fails with this class name."""


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if event.get("write"):
        Path(event["write"]).write_text("committed")
    if event.get("sigkill_self"):
        os.kill(os.getpid(), signal.SIGKILL)
    if event.get("raise"):
        raise WorkerDiedError(event["raise"])
    if event.get("child"):  # a worker process; it is killed by the sandbox's kill_worker stall
        worker = multiprocessing.get_context("fork").Process(target=time.sleep, args=(30,))
        worker.start()
        worker.join()
        if worker.exitcode == -signal.SIGKILL:
            raise WorkerDiedError(f"worker {worker.pid} was killed")
    return {
        "pid": os.getpid(),
        "started": STARTED,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "memory": context.memory_limit_in_mb,
        "env": {k: os.environ.get(k) for k in ("TABLE_NAME", "AWS_ACCESS_KEY_ID", "TMPDIR")},
    }
