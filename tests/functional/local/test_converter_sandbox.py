"""The local Lambda sandbox (ndjson_parquet/local/sandbox.py): a function process kept warm, its
own environment, and the error names Lambda gives a timeout, an exit and an out-of-memory end,
through the state machine's lambda:invoke as through the task host."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from ndjson_parquet.local.sandbox import FunctionConfig, FunctionError, SandboxPool

HANDLER = "tests.functional.local.sandbox_handlers:echo"


def _config(timeout: float = 30.0, **env: str) -> FunctionConfig:
    return FunctionConfig(
        name="ndjson-parquet-local-converter",
        handler=HANDLER,
        timeout_seconds=timeout,
        memory_mb=3538,
        environment={"TABLE_NAME": "iceberg-table", "AWS_ACCESS_KEY_ID": "AKIACONVERTER", **env},
    )


@pytest.fixture
def pool() -> Iterator[SandboxPool]:
    p = SandboxPool(_config())
    yield p
    p.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie waiting for its parent is gone as far as work goes
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_the_sandbox_stays_warm_with_its_own_environment_and_deadline(pool: SandboxPool) -> None:
    first = pool.invoke({})
    second = pool.invoke({})
    # one process for both invocations, module state kept: a warm container
    assert (first["pid"], first["started"]) == (second["pid"], second["started"])
    assert pool.cold_starts == 1
    assert first["pid"] != os.getpid()
    # the function's environment, not the runtime's (where TABLE_NAME is the tracking table)
    assert first["env"]["TABLE_NAME"] == "iceberg-table"
    assert first["env"]["AWS_ACCESS_KEY_ID"] == "AKIACONVERTER"
    assert first["env"]["TMPDIR"] != "/tmp" and first["env"]["TMPDIR"].startswith(os.path.realpath("/tmp")[:4])
    assert first["memory"] == 3538
    # the context's deadline is the configured timeout
    assert 25_000 < first["remaining_ms"] <= 30_000


def test_a_handler_exception_is_named_by_its_class(pool: SandboxPool) -> None:
    with pytest.raises(FunctionError) as info:
        pool.invoke({"raise": "worker 12 ended"})
    assert (info.value.error_type, str(info.value)) == ("WorkerDiedError", "worker 12 ended")
    assert pool.invoke({})["pid"] in pool.pids  # the sandbox survives a handled error
    assert pool.cold_starts == 1


def test_an_overrun_is_sandbox_timedout_and_the_sandbox_is_replaced(pool: SandboxPool) -> None:
    before = pool.invoke({})["pid"]
    started = time.monotonic()
    with pytest.raises(FunctionError) as info:
        pool.invoke({}, {"timeout": 0.5, "before": 60})
    assert info.value.error_type == "Sandbox.Timedout"
    assert "timed out after 0.50 seconds" in str(info.value)
    assert time.monotonic() - started < 5
    assert not _alive(before)  # killed, as Lambda ends a timed-out sandbox
    after = pool.invoke({})
    assert after["pid"] != before and pool.cold_starts == 2


def test_a_timeout_after_the_work_is_done_still_fails_the_invocation(pool: SandboxPool, tmp_path: Path) -> None:
    # the handler's effect (a commit) is durable, then the sandbox is killed at its timeout
    marker = tmp_path / "commit"
    with pytest.raises(FunctionError) as info:
        pool.invoke({"write": str(marker)}, {"timeout": 0.5, "after": 60})
    assert info.value.error_type == "Sandbox.Timedout"
    assert marker.read_text() == "committed"


def test_an_exit_is_runtime_exit_error(pool: SandboxPool) -> None:
    with pytest.raises(FunctionError) as info:
        pool.invoke({}, {"exit": "before"})
    assert info.value.error_type == "Runtime.ExitError"
    assert "exit status 1" in str(info.value)
    assert pool.invoke({})["pid"]  # a new sandbox serves the next invocation


def test_a_kill_by_the_kernel_is_runtime_out_of_memory(pool: SandboxPool) -> None:
    with pytest.raises(FunctionError) as info:
        pool.invoke({"sigkill_self": True})
    assert info.value.error_type == "Runtime.OutOfMemory"


def test_a_killed_worker_surfaces_as_the_handlers_worker_died_error(pool: SandboxPool) -> None:
    with pytest.raises(FunctionError) as info:
        pool.invoke({"child": True}, {"kill_worker": 0.2})
    assert info.value.error_type == "WorkerDiedError"
    assert "was killed" in str(info.value)


def test_close_ends_the_sandboxes_and_refuses_further_invocations() -> None:
    p = SandboxPool(_config())
    pid = p.invoke({})["pid"]
    p.close()
    assert not _alive(pid)
    with pytest.raises(FunctionError) as info:
        p.invoke({})
    assert info.value.error_type == "Lambda.ServiceException"


def test_the_task_host_reports_lambdas_error_names_through_invoke(aws: str) -> None:
    # GIVEN the converter served by the task host from a sandbox that overruns its timeout
    from ndjson_parquet.local.stepfunctions import LocalTaskHost

    host = LocalTaskHost(aws)
    # (the first call's cold start may take seconds on a loaded machine: only the second call
    # gets the short timeout it overruns)
    p = SandboxPool(_config(timeout=60), prestart=False)
    try:
        stalls: list[dict] = [{}, {"before": 60, "timeout": 0.5}]
        host.serve_lambda("ndjson-parquet-local-converter", lambda event: p.invoke(event, stalls.pop(0)))
        lam = boto3.client("lambda")
        ok = lam.invoke(FunctionName="ndjson-parquet-local-converter", Payload=b"{}")
        assert "FunctionError" not in ok and json.loads(ok["Payload"].read())["pid"] in p.pids
        # WHEN the state machine's lambda:invoke calls it
        got = lam.invoke(FunctionName="ndjson-parquet-local-converter", Payload=b"{}")
    finally:
        p.close()
    # THEN the function error is Lambda's timeout name, the error name the ASL catches
    assert got["FunctionError"]  # (moto says "Handled")
    assert json.loads(got["Payload"].read())["errorType"] == "Sandbox.Timedout"


def test_the_scratch_variable_names_the_sandboxes_own_folder() -> None:
    config = FunctionConfig(**{**_config().__dict__, "scratch_variable": "TABLE_NAME"})
    p = SandboxPool(config)
    try:
        env = p.invoke({})["env"]
    finally:
        p.close()
    assert env["TABLE_NAME"] == env["TMPDIR"]
    assert not Path(env["TMPDIR"]).exists()  # removed with the sandbox


def test_a_kill_mid_run_is_sandbox_timedout_while_the_context_shows_the_functions_timeout(
    pool: SandboxPool, tmp_path: Path
) -> None:
    with pytest.raises(FunctionError) as info:
        pool.invoke({}, {"kill_after": 0.5, "before": 60})
    assert info.value.error_type == "Sandbox.Timedout" and "after 0.50 seconds" in str(info.value)
    # an "after" stall: the handler saw the function's own timeout (30 s), not the stall's
    assert pool.invoke({}, {"timeout": 0.5, "after": 0.1})["remaining_ms"] > 25_000
