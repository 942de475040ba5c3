"""The converter Lambda's abnormal ends in a local run fall back to Glue as the state machine says:
its local sandbox raises the names Lambda does (Sandbox.Timedout, Runtime.ExitError,
WorkerDiedError), the same manifest converts on Glue, no file spends an attempt, every row is in
the table exactly once (a run killed after its commit is replaced, never added to)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from ndjson_parquet.local.faults import Fault, FaultPlan
from ndjson_parquet.local.runtime import LocalPipeline, RunOptions, read_state

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def _input(root: Path, files: int) -> None:
    day = root / "2026-02-03"
    day.mkdir(parents=True)
    for n in range(files):
        (day / f"f{n}.ndjson").write_text(
            "".join(json.dumps({"file": n, "line": i, "v": f"x{i}"}) + "\n" for i in range(5)) + "not json\n"
        )


def _lambda_errors(run: LocalPipeline) -> list[str]:
    """The errors the state machine's Lambda tasks failed with, over every execution."""
    sfn = boto3.client("stepfunctions")
    names = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=run.state_machine_arn):
        for execution in page["executions"]:
            for event in sfn.get_execution_history(executionArn=execution["executionArn"])["events"]:
                details = event.get("taskFailedEventDetails")
                if details and details.get("resourceType") == "lambda":
                    names.append(details["error"])
    return sorted(names)


def test_a_timeout_after_the_commit_an_exit_and_a_dead_worker_fall_back_to_glue(tmp_path: Path) -> None:
    # GIVEN four one-file manifests for the converter Lambda: one is killed at its timeout after
    # committing, one's sandbox exits, one loses a worker, one converts
    _input(tmp_path / "in", 4)
    plan = FaultPlan(
        faults=[Fault("converter_timeout_after_commit"), Fault("converter_exit"), Fault("converter_worker_killed")]
    )
    opts = RunOptions(
        input_dir=tmp_path / "in",
        output_dir=tmp_path / "out",
        batch_max_files=1,
        shards=1,
        idle_timeout_seconds=120,
        engine="lambda",
    )
    captured: dict[str, list[str]] = {}

    def inspect(endpoint: object) -> None:  # while the run's moto account is still up
        captured["errors"] = _lambda_errors(run)
        state = read_state(boto3.client("dynamodb"), run.outputs["TableName"])
        captured["attempts"] = [int(i.get("attempts") or 0) for i in state.file_items]

    # WHEN the pipeline runs
    run = LocalPipeline(opts, faults=plan)
    report = run.run(on_ready=inspect)
    # THEN each failed invocation surfaced with Lambda's name through lambda:invoke
    kinds = ("converter_timeout_after_commit", "converter_exit", "converter_worker_killed")
    assert dict(plan.injected) == dict.fromkeys(kinds, 1)
    assert captured["errors"] == ["Runtime.ExitError", "Sandbox.Timedout", "WorkerDiedError"]
    # and those manifests converted on Glue, the fourth on Lambda; everything reconciles, each row once
    assert report.engines == {"lambda": 1, "glue": 3}, report.problems
    assert report.reconciled, report.problems
    assert (report.rows, report.quarantined, report.table_rows) == (20, 4, 20)
    # and no file spent an attempt on the Lambda failures
    assert captured["attempts"] == [0, 0, 0, 0]
    assert report.spark_started  # Glue ran: the JVM started, lazily
    assert run.converter.cold_starts == 3  # the timed-out and the exited sandbox were replaced
