"""A Lambda function's execution environment, played locally: one long-lived Python process per
sandbox, as Lambda keeps one warm per concurrent invocation.

The converter Lambda (``converter/handler.py``) is served this way, not in the runtime's own
process, for the three things Lambda does to a function that a thread cannot reproduce:

- its own environment: the function's variables (the job arguments, ``TABLE_NAME`` among them,
  which in the runtime's process names the tracking table) and its execution role's keys in
  ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, as Lambda injects them; so its S3 and catalog
  calls are signed as the role's IAM user under enforcement, and nothing else signs for it;
- what stays warm: module state (the handler's process pool of workers) lives as long as the
  sandbox, across invocations, and is gone when the sandbox is replaced;
- how an invocation ends abnormally: at the function's timeout the sandbox is killed (SIGKILL)
  and the invocation fails with ``Sandbox.Timedout``; a sandbox that exits during an invocation
  fails it with ``Runtime.ExitError``, one killed by a signal it did not get from the host (the
  kernel's OOM killer sends SIGKILL) with ``Runtime.OutOfMemory``; the next invocation gets a new
  sandbox (a cold start). An exception the handler raises fails the invocation with its class
  name as ``errorType``, as Lambda's Python runtime reports it; the state machine's
  ``lambda:invoke`` task sees each of these as its error name (``LocalTaskHost.serve_lambda``).

The protocol is one JSON object per line: the host writes ``{"event", "timeout_ms", "stall"}`` to
the sandbox's stdin, the sandbox answers on the file descriptor that was its stdout (the
handler's own prints and logs go to stderr). ``stall`` (tests and campaigns only, via
``ndjson_parquet.local.faults``) plays a converter that does not end well:
- ``timeout``: this invocation's timeout in seconds (the function's otherwise);
- ``before`` / ``after``: seconds the sandbox sleeps before the handler runs / after it returned
  (its work committed); with ``after``, the handler sees the function's own timeout and the
  ``timeout`` counts from the handler's return (the sandbox says ``{"phase": "handled"}``), so the
  kill lands after the commit;
- ``kill_after``: the host kills the sandbox this many seconds in, wherever the handler is (its
  context still shows the function's timeout: as if the work were slower than planned);
- ``exit``: ``"before"`` or ``"after"``: the sandbox process exits there (``os._exit(1)``);
  ``"commit"``: it exits as the converter's Iceberg commit returns (``glue.job.commit_manifest``),
  before the run summary's final write and before the handler returns;
- ``kill_worker``: from this many seconds into the handler until it returns, the sandbox SIGKILLs
  every child process it has (the workers of the converter's process pool: memory pressure and
  the OOM killer), so a task is lost with its worker.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class FunctionError(RuntimeError):
    """An invocation failed with the error name Lambda reports (``errorType``)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass(frozen=True)
class FunctionConfig:
    """What the host needs of a Lambda function's configuration."""

    name: str
    handler: str  # "module:function", importable in the sandbox
    timeout_seconds: float
    memory_mb: int
    environment: Mapping[str, str]
    # Sandboxes at once (reserved concurrency): a further invocation waits for one to be free.
    concurrency: int = 1
    # A variable that gets the sandbox's own scratch folder (its /tmp, also TMPDIR), if any.
    scratch_variable: str | None = None
    # Modules imported in the init phase, before the first invocation (what the handler imports
    # on first use): a sandbox started ahead of its first invocation is then warm for it.
    preload: tuple[str, ...] = ()


class _Sandbox:
    def __init__(self, config: FunctionConfig) -> None:
        self.config = config
        self.tmp = tempfile.mkdtemp(prefix=f"lambda-{config.name}-")
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            **config.environment,
            "AWS_LAMBDA_FUNCTION_NAME": config.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(config.timeout_seconds)),
            # The sandbox's own /tmp: the converter clears its scratch space at every start.
            "TMPDIR": self.tmp,
            # The function's code: this repository (converter/, glue/), as the artifact holds it.
            "PYTHONPATH": os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH", "")) if p),
        }
        if config.scratch_variable:
            env[config.scratch_variable] = self.tmp
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ndjson_parquet.local.sandbox", config.handler, *config.preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            start_new_session=True,  # its workers go with it when it is killed (the process group)
        )
        self._buffer = b""
        self._eof = False
        self.killed_by_host = False
        self.invocations = 0

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def invoke(self, event: Any, stall: Mapping[str, Any] | None) -> Any:
        """The handler's result, or ``FunctionError`` named as Lambda names the failure."""
        stall = dict(stall or {})
        timeout = float(stall.get("timeout") or self.config.timeout_seconds)
        # What the handler's context says is left, and when the host kills the sandbox.
        context_timeout = self.config.timeout_seconds if stall.get("after") or stall.get("kill_after") else timeout
        kill_after = float(stall.get("kill_after") or (1e9 if stall.get("after") else timeout))
        deadline = time.monotonic() + kill_after
        request = {"event": event, "timeout_ms": int(context_timeout * 1000), "stall": stall}
        self.invocations += 1
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(request, default=str) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._exit_error() from None
        line = self._read_line(deadline)
        if line is not None and json.loads(line).get("phase") == "handled":
            line = self._read_line(time.monotonic() + timeout)  # the timeout starts now (docstring)
        if line is None:
            if not self._eof:
                self.kill()  # Lambda's message:
                shown = kill_after if stall.get("kill_after") else timeout
                raise FunctionError("Sandbox.Timedout", f"Task timed out after {shown:.2f} seconds")
            raise self._exit_error()
        answer = json.loads(line)
        if "errorType" in answer:
            raise FunctionError(answer["errorType"], answer.get("errorMessage", ""))
        return answer["result"]

    def _read_line(self, deadline: float) -> bytes | None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:  # EOF: the sandbox exited
                self._eof = True
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _exit_error(self) -> FunctionError:
        code = self.proc.wait()
        if code == -signal.SIGKILL and not self.killed_by_host:
            return FunctionError("Runtime.OutOfMemory", "Runtime exited with error: signal: killed")
        return FunctionError("Runtime.ExitError", f"Runtime exited with error: exit status {code}")

    def kill(self) -> None:
        """End the sandbox and every process it started (its workers)."""
        self.killed_by_host = True
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def close(self) -> None:
        """A quiet end: stdin closed, the sandbox finishes its loop; killed if it does not."""
        if self.alive and self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        self.kill()


class SandboxPool:
    """The sandboxes of one function: an invocation takes a warm one (or starts one, up to
    ``concurrency``); a sandbox that timed out or exited is replaced on the next invocation."""

    def __init__(self, config: FunctionConfig, prestart: bool = True) -> None:
        self.config = config
        self._idle: list[_Sandbox] = []
        self._all: list[_Sandbox] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max(1, config.concurrency))
        self.cold_starts = 0
        self._closed = False
        if prestart:  # the first invocation's cold start overlaps the uploads
            self._idle.append(self._start())

    def _start(self) -> _Sandbox:
        sandbox = _Sandbox(self.config)
        self._all.append(sandbox)
        self.cold_starts += 1
        return sandbox

    def invoke(self, event: Any, stall: Mapping[str, Any] | None = None) -> Any:
        """One invocation; ``stall`` (faults.py): how it is to end badly (module docstring)."""
        with self._slots:
            with self._lock:
                if self._closed:
                    raise FunctionError("Lambda.ServiceException", f"function {self.config.name} is shut down")
                while self._idle and not self._idle[-1].alive:
                    self._idle.pop().kill()
                sandbox = self._idle.pop() if self._idle else self._start()
            try:
                result = sandbox.invoke(event, stall)
            except FunctionError as exc:
                if exc.error_type.startswith(("Sandbox.", "Runtime.")):
                    sandbox.kill()  # a new sandbox serves the next invocation (a cold start)
                    with self._lock:
                        self._all.remove(sandbox)
                else:
                    with self._lock:
                        self._idle.append(sandbox)
                raise
            with self._lock:
                self._idle.append(sandbox)
            return result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sandboxes, self._all, self._idle = list(self._all), [], []
        for sandbox in sandboxes:
            sandbox.close()

    @property
    def pids(self) -> list[int]:
        """The live sandboxes' process ids (tests: the warm process is the same one)."""
        with self._lock:
            return [s.proc.pid for s in self._all if s.alive]


# --------------------------------------------------------------------------- the sandbox side


class LambdaContext:
    """The Lambda context object: its deadline is the function's configured timeout."""

    def __init__(self, timeout_ms: int) -> None:
        name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _kill_children(delay: float, done: threading.Event) -> None:
    """From ``delay`` seconds from now until ``done``, SIGKILL every child process of this sandbox."""
    time.sleep(delay)
    me = os.getpid()
    while not done.wait(0.005):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                    parent = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == me:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry), signal.SIGKILL)


def _exit_after_commit() -> Any:
    """Have this sandbox exit the moment the converter's table commit returns (its snapshot is
    the table's); returns what undoes it (the commit failed, the handler raised)."""
    from glue import job

    original = job.commit_manifest

    def commit_then_exit(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        os._exit(1)

    job.commit_manifest = commit_then_exit

    def restore() -> None:
        job.commit_manifest = original

    return restore


def _load(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr or "handler")


def serve(spec: str, preload: tuple[str, ...] = ()) -> int:
    """The sandbox's loop: read a request, run the handler, answer; until stdin closes."""
    import logging

    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # the handler's prints go to stderr, never into the answers
    # Lambda's Python runtime gives the root logger a handler (to CloudWatch; here stderr).
    level = os.environ.get("LOG_LEVEL", "WARNING").upper()
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("ndjson_parquet.local.sandbox")
    init_started = time.monotonic()
    handler = _load(spec)  # the init phase: imports happen once per sandbox
    for module in preload:
        importlib.import_module(module)
    log.info("INIT %s: %.0f ms", spec, (time.monotonic() - init_started) * 1000)
    for raw in sys.stdin:
        if not raw.strip():
            continue
        request = json.loads(raw)
        context = LambdaContext(int(request["timeout_ms"]))
        stall = request.get("stall") or {}
        try:
            if stall.get("exit") == "before":
                os._exit(1)
            time.sleep(float(stall.get("before", 0)))
            killing = threading.Event()
            if stall.get("kill_worker") is not None:
                args = (float(stall["kill_worker"]), killing)
                threading.Thread(target=_kill_children, args=args, daemon=True).start()
            restore = _exit_after_commit() if stall.get("exit") == "commit" else None
            try:
                result = handler(request["event"], context)
            finally:
                killing.set()
                if restore is not None:
                    restore()
            if stall.get("exit") == "after":
                os._exit(1)
            if stall.get("after"):
                answers.write(json.dumps({"phase": "handled"}) + "\n")
                answers.flush()
                time.sleep(float(stall["after"]))
            answer: dict[str, Any] = {"result": result}
        except Exception as exc:  # Lambda's Python runtime: the exception's class is errorType
            answer = {
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc)[-5:],
            }
        answers.write(json.dumps(answer, default=str) + "\n")
        answers.flush()
        used = int(request["timeout_ms"]) - context.get_remaining_time_in_millis()
        log.info("REPORT RequestId: %s Duration: %d ms", context.aws_request_id, used)
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1], tuple(sys.argv[2:])))
