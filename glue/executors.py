"""Where the conversion tasks run: Spark (the Glue job) or a pool of worker processes (the Lambda
converter). The conversion core (glue/job.py) maps picklable task functions (``run_task``,
``run_conform`` of glue/convert.py) over picklable specs through one of these; both give the same
results in the same order.

``ProcessExecutor`` uses ``multiprocessing.Process`` + ``Pipe`` only: Lambda has no ``/dev/shm``, so
``Pool`` and ``Queue`` (POSIX semaphores) fail there. Its workers stay alive between runs (a warm
Lambda container converts its next manifest without starting processes). What Spark did for us,
it does itself:

* a task that raises a transient error (glue/isolation.py ``is_transient``) is retried, up to
  ``MAX_ATTEMPTS`` attempts in all (Glue's ``spark.task.maxFailures`` = 4); a task that keeps
  failing, or fails deterministically, fails the map with its own exception;
* a worker that dies (the OOM killer, a crash, the isolation ``kill`` fault's ``os._exit(137)``)
  raises ``WorkerDiedError``; the dead worker is replaced on the next map;
* with a deadline (``time.monotonic()`` seconds), ``check_deadline`` raises
  ``ConverterDeadlineError`` once less than ``margin`` seconds are left, and a map still running
  then is aborted (its workers terminated) with the same error.

When a map fails, the workers still running its other tasks are terminated before the error is
raised: no task of a failed run writes anything after the job's cleanup deleted its staging.

This module imports neither pyspark nor pyarrow: the Lambda artifact has no pyspark.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.spawn
import pickle
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol, runtime_checkable

from glue.isolation import is_transient

log = logging.getLogger("ndjson_parquet.executors")

MAX_ATTEMPTS = 4  # a task's attempts in all, as Glue's spark.task.maxFailures
DEADLINE_MARGIN_S = 20.0  # time kept for the commit, the run summary and the handler's reply
# Imported (``module``) or called (``module:function``) by every worker when it starts, not by its
# first task: a warm pool's first run converts at once.
PRELOAD = ("glue.convert", "glue.executors:warm_up")

# The start method: "spawn". Measured on this machine (2 cores, Python 3.11, 2 workers each
# importing glue.convert, 2026-12-07; /tmp/startup script in notes-core.md):
#   fork        10-15 ms  (a multi-threaded parent: the same, but see below)
#   forkserver  350-400 ms the first time (the server imports glue.convert), then 15 ms
#   spawn       460-670 ms every time (each worker imports glue.convert, in parallel)
# fork is ruled out: the local runtime runs the converter inside a multi-threaded process (moto's
# server threads, botocore's and pyarrow's pools), and a child forked while another thread holds a
# lock (logging, an import lock, malloc's) deadlocks on it. forkserver would be the fastest safe
# choice for *replacing* a worker, but on Python 3.11 its server listens on a socket file under
# /tmp/pymp-*, which the converter handler deletes when it clears /tmp at the start of each call
# (a killed call leaves scratch behind): every later worker start would then fail. spawn depends
# on no file, inherits no thread or lock, and its cost is paid once per container (cold start),
# since workers stay warm between runs; the first start costs about what forkserver's does.
# spawn's children normally re-run the parent's main module first (as ``__mp_main__``): a script
# without an ``if __name__ == "__main__"`` guard would start its whole work again in every worker
# (and fail: "An attempt has been made to start a new process before..."), and a guarded one is
# imported for nothing. Our workers need only importable modules (glue.*), so the preparation data
# of the processes started here (and only those: a thread-local flag) carries no main module.
START_METHOD = "spawn"
_SPAWNING = threading.local()
_get_preparation_data = multiprocessing.spawn.get_preparation_data


def _preparation_data(name: str) -> dict[str, Any]:
    data = _get_preparation_data(name)
    if getattr(_SPAWNING, "active", False):
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
    return data


multiprocessing.spawn.get_preparation_data = _preparation_data


class WorkerDiedError(RuntimeError):
    """A worker process ended abruptly (OOM kill, crash) while running a task."""


class ConverterDeadlineError(RuntimeError):
    """Too little time is left before the deadline (the Lambda's): the run stops before it commits."""


@runtime_checkable
class Executor(Protocol):
    name: str  # "glue" (Spark) or "lambda" (process pool): the run summary's ``engine``

    @property
    def parallelism(self) -> int: ...  # task count floor (was sc.defaultParallelism)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]: ...

    def check_deadline(self, stage: str) -> None: ...


class SparkExecutor:
    """Tasks as Spark tasks: ``sc.parallelize(items, len(items)).map(fn).collect()``, one partition
    per item, after shipping glue/ and chalicelib/ to the workers. Spark retries tasks itself."""

    name = "glue"

    def __init__(self, spark: Any) -> None:
        from glue.shipping import ship_modules

        self.spark = spark
        self.sc = spark.sparkContext
        ship_modules(self.sc)

    @property
    def parallelism(self) -> int:
        return int(self.sc.defaultParallelism)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        items = list(items)
        if not items:
            return []
        return self.sc.parallelize(items, len(items)).map(fn).collect()

    def check_deadline(self, stage: str) -> None:
        """A Glue job has no deadline of its own here (its timeout is the job's)."""

    def close(self) -> None:
        """The session is its owner's to stop."""


def as_executor(engine: Any) -> Executor:
    """An Executor as is; a SparkSession wrapped in a SparkExecutor (existing callers)."""
    if isinstance(engine, Executor):
        return engine
    if hasattr(engine, "sparkContext"):
        return SparkExecutor(engine)
    raise TypeError(f"not an executor or a SparkSession: {type(engine).__name__}")


# ---------------------------------------------------------------- the process pool


def _worker_main(conn: Connection, preload: tuple[str, ...]) -> None:
    """A worker's loop: receive ``(fn, item)``, send back ``("ok", result)`` or
    ``("err", exception, traceback text)``; ``None`` (or the parent gone) ends it."""
    import importlib

    for entry in preload:
        module, _, function = entry.partition(":")
        loaded = importlib.import_module(module)
        if function:
            getattr(loaded, function)()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if message is None:
            return
        fn, item = message
        try:
            reply: tuple[Any, ...] = ("ok", fn(item))
        except BaseException as exc:  # every failure goes back to the parent
            reply = ("err", exc, traceback.format_exc())
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # an unpicklable result or exception: say what it was
            text = reply[2] if reply[0] == "err" else ""
            error = RuntimeError(f"task reply could not be pickled ({type(exc).__name__}: {exc}); {reply[1]!r}")
            data = pickle.dumps(("err", error, text), protocol=pickle.HIGHEST_PROTOCOL)
        conn.send_bytes(data)


def warm_up() -> None:
    """What a task's first conversion would otherwise pay: pyarrow's compute functions and, where
    pandas is installed (not in the Lambda artifact), pyarrow's lazy pandas import (0.9 s here)."""
    from glue.lines import may_hold_long_int

    may_hold_long_int(b"{}")


class _Worker:
    def __init__(self, ctx: Any, preload: tuple[str, ...]) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child, preload), daemon=True, name="converter-worker")
        _SPAWNING.active = True
        try:
            self.process.start()
        finally:
            _SPAWNING.active = False
        child.close()

    def send(self, fn: Callable[[Any], Any], item: Any) -> None:
        self.conn.send((fn, item))

    def end(self, timeout: float = 5.0) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(None)
        self.process.join(timeout)
        if self.process.is_alive():
            self.kill()
        self.conn.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class ProcessExecutor:
    """``workers`` worker processes (one per vCPU), reused across runs until ``close()``.

    ``deadline``: ``time.monotonic()`` seconds by which the run must have ended (None: none); a warm
    Lambda sets it again for every call. ``margin``: seconds kept before it for the commit."""

    name = "lambda"

    def __init__(
        self,
        workers: int,
        deadline: float | None = None,
        margin: float = DEADLINE_MARGIN_S,
        max_attempts: int = MAX_ATTEMPTS,
        preload: tuple[str, ...] = PRELOAD,
        start_method: str = START_METHOD,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self.deadline = deadline
        self.margin = margin
        self.max_attempts = max_attempts
        self._preload = tuple(preload)
        self._ctx = multiprocessing.get_context(start_method)
        self._pool: list[_Worker] = []
        self._closed = False
        self._fill()

    @property
    def parallelism(self) -> int:
        return self.workers

    def pids(self) -> list[int]:
        """The live workers' process ids (tests: a warm pool keeps them across runs)."""
        return [w.process.pid for w in self._pool if w.process.pid is not None]

    def seconds_left(self) -> float | None:
        """Seconds until the deadline minus the margin (None without a deadline)."""
        if self.deadline is None:
            return None
        return self.deadline - self.margin - time.monotonic()

    def check_deadline(self, stage: str) -> None:
        left = self.seconds_left()
        if left is not None and left <= 0:
            raise ConverterDeadlineError(
                f"{stage}: {left + self.margin:.1f} s left before the deadline, {self.margin:g} s needed to finish"
            )

    def _fill(self) -> None:
        self._pool = [w for w in self._pool if w.process.is_alive()]
        while len(self._pool) < self.workers:
            self._pool.append(_Worker(self._ctx, self._preload))

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """``fn`` over ``items`` in the workers, results in the items' order."""
        if self._closed:
            raise RuntimeError("ProcessExecutor is closed")
        items = list(items)
        if not items:
            return []
        self.check_deadline("convert")
        self._fill()
        missing = object()
        results: list[Any] = [missing] * len(items)
        attempts = [0] * len(items)
        pending = deque(range(len(items)))
        idle = list(self._pool)
        busy: dict[_Worker, int] = {}
        try:
            while pending or busy:
                while pending and idle:
                    worker, index = idle.pop(), pending.popleft()
                    attempts[index] += 1
                    try:
                        worker.send(fn, items[index])
                    except (BrokenPipeError, ConnectionResetError):  # it died while idle
                        busy[worker] = index
                        raise self._died(worker, index) from None
                    busy[worker] = index
                left = self.seconds_left()
                if left is not None and left <= 0:
                    self.check_deadline("convert")
                ready = set(wait([w.conn for w in busy] + [w.process.sentinel for w in busy], left))
                if not ready:
                    self.check_deadline("convert")  # woke up at the deadline
                for worker in list(busy):
                    if worker.conn not in ready and worker.process.sentinel not in ready:
                        continue
                    index = busy[worker]
                    try:
                        reply = pickle.loads(worker.conn.recv_bytes()) if worker.conn.poll() else None
                    except (EOFError, OSError):
                        reply = None
                    if reply is None:  # its sentinel fired and it left no reply
                        raise self._died(worker, index)
                    del busy[worker]
                    idle.append(worker)
                    if reply[0] == "ok":
                        results[index] = reply[1]
                        continue
                    exc, text = reply[1], reply[2]
                    if is_transient(exc) and attempts[index] < self.max_attempts:
                        name = type(exc).__name__
                        log.warning("task %d: transient %s (attempt %d), retried", index, name, attempts[index])
                        pending.append(index)
                        continue
                    if text:
                        exc.add_note(f"in worker process (task {index}, attempt {attempts[index]}):\n{text}")
                    raise exc
        except Exception as exc:
            # A deadline ends the other tasks now; any other failure lets them finish first (their
            # workers stay warm), so no task of a failed run writes after the job's cleanup.
            self._abort(busy, drain=not isinstance(exc, ConverterDeadlineError))
            raise
        except BaseException:
            self._abort(busy, drain=False)
            raise
        return results

    def _died(self, worker: _Worker, index: int) -> WorkerDiedError:
        worker.process.join(5)
        code = worker.process.exitcode
        return WorkerDiedError(f"worker process {worker.process.pid} died (exit code {code}) running task {index}")

    def _abort(self, busy: dict[_Worker, int], drain: bool) -> None:
        """The workers of a failed map still running a task: with ``drain``, wait for their replies
        (dropped) until the deadline; the dead ones and those still running then are killed and
        replaced by the next map."""
        running, doomed = dict(busy), []
        while drain and running:
            left = self.seconds_left()
            if left is not None and left <= 0:
                break
            ready = set(wait([w.conn for w in running] + [w.process.sentinel for w in running], left))
            for worker in list(running):
                if worker.conn not in ready and worker.process.sentinel not in ready:
                    continue
                del running[worker]
                try:
                    if not worker.conn.poll():
                        raise EOFError
                    worker.conn.recv_bytes()  # it replied: alive and idle again
                except (EOFError, OSError):
                    doomed.append(worker)
        doomed += running
        for worker in doomed:
            worker.kill()
        self._pool = [w for w in self._pool if w not in doomed]

    def close(self) -> None:
        """End every worker (idempotent)."""
        self._closed = True
        for worker in self._pool:
            worker.end()
        self._pool = []

    def __enter__(self) -> ProcessExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
