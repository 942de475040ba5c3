"""Run the one convert-manifest ASL file on the in-process moto server.

moto executes ASL when ``stepfunctions.execute_state_machine`` is on, and its interpreter sends a
Task's ``lambda:invoke`` and ``glue:startJobRun.sync`` to moto's own Lambda and Glue backends over
HTTP (to ``localhost:$MOTO_PORT``). Those backends live in this process, so ``LocalTaskHost``
serves them here:

- Lambda: moto keeps one ``LambdaFunction`` object per function and runs it through its
  ``_invoke_lambda(event) -> (payload, errored, logs)`` (normally Docker). We give the objects of
  the functions we serve their own ``_invoke_lambda`` that calls our Python handler; an exception
  becomes a handled function error ``{"errorType", "errorMessage"}``, exactly what the interpreter
  turns into a catchable error name, as Lambda does. A function served from its own sandbox
  process (``ndjson_parquet.local.sandbox``: the converter) fails with the name Lambda gives its
  timeout, exit or out-of-memory end (``Sandbox.Timedout``, ``Runtime.ExitError``,
  ``Runtime.OutOfMemory``) or its handler's exception class.
- Glue: moto's ``FakeJob.start_job_run`` only records a run whose state jumps to SUCCEEDED. The
  job objects we serve get a ``start_job_run`` that records a run whose state is RUNNING while our
  runner works in a thread, then SUCCEEDED, or FAILED with the exception as ``ErrorMessage``;
  the interpreter's ``.sync`` polling (GetJobRun) sees exactly that.
- EventBridge: moto does not deliver to a Step Functions target (its rule raises
  NotImplementedError for one). ``route_rule`` gives the rule object a ``send_to_targets`` that
  starts an execution with the event as input (as the rule would), including archive replays,
  which carry ``replay-name``; other targets keep moto's behaviour. A start that fails goes to the
  target's dead-letter queue, like the rule's DeadLetterConfig.

These per-object overrides (three, all in this module) are the only places that reach into moto's
backends. With IAM enforced (``act_for_roles``), the interpreter's task calls, which moto signs
with fixed dummy keys, are signed by the IAM user standing for the execution role instead
(``_sign_as_execution_role``), and an EventBridge target's start is checked against its
target role's policy (``_check_target_role``). The interpreter gets one fix,
``_fix_glue_sync`` below: moto 5.2.5 fails every ``.sync`` task that has no task token
(``callback_endpoint.interrupt_all()`` on None in a ``finally``), so ``glue:startJobRun.sync``
could never succeed; and a faster clock for its waits, ``_compress_interpreter_waits``. Objects
are re-created by ``/moto-api/reset``: serve again.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
import threading
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import boto3

from ndjson_parquet.local.iam import Caller

log = logging.getLogger(__name__)

DEFAULT_ACCOUNT = "123456789012"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}

# Execution/target role ARN -> the IAM user acting for it (empty: IAM not enforced). Module-level
# because moto's interpreter is: its patched client factory reads it.
_ROLE_CALLERS: dict[str, Caller] = {}

LambdaHandler = Callable[[dict[str, Any]], Any]
GlueRunner = Callable[[dict[str, str]], None]


def deploy_state_machine(sfn: Any, name: str, definition: str, role_arn: str) -> str:
    """Create (or update) the state machine in moto's executing backend. Use this rather than
    moto's CloudFormation for the state machine: moto's CFN puts it in the non-executing backend
    and does not apply DefinitionSubstitutions."""
    for page in sfn.get_paginator("list_state_machines").paginate():
        for sm in page["stateMachines"]:
            if sm["name"] == name:
                sfn.update_state_machine(stateMachineArn=sm["stateMachineArn"], definition=definition, roleArn=role_arn)
                return sm["stateMachineArn"]
    return sfn.create_state_machine(name=name, definition=definition, roleArn=role_arn)["stateMachineArn"]


def wait_for_execution(sfn: Any, execution_arn: str, timeout: float = 120.0, poll: float = 0.2) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        desc = sfn.describe_execution(executionArn=execution_arn)
        if desc["status"] in TERMINAL:
            return desc
        if time.monotonic() > deadline:
            raise TimeoutError(f"execution {execution_arn} still {desc['status']} after {timeout}s")
        time.sleep(poll)


def _iso(value: Any) -> Any:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


def _fix_glue_sync() -> None:
    """Give moto's Glue task the ``.sync`` path without the None callback endpoint: poll the
    sync resolver (GetJobRun until terminal) exactly as moto's own ``_eval_sync`` does. Scoped to
    the Glue service task; idempotent."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_glue import (
        StateTaskServiceGlue,
    )

    if getattr(StateTaskServiceGlue, "_ndjson_parquet_sync_fix", False):
        return
    original = StateTaskServiceGlue._eval_integration_pattern

    def _eval_integration_pattern(self, env, resource_runtime_part, normalised_parameters, state_credentials):  # type: ignore[no-untyped-def]
        if self.resource.condition != ResourceCondition.Sync:
            return original(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        resolver = self._build_sync_resolver(
            env=env,
            resource_runtime_part=resource_runtime_part,
            normalised_parameters=normalised_parameters,
            state_credentials=state_credentials,
        )
        outcome = self._eval_sync(
            env=env, sync_resolver=resolver, timeout_seconds=None, callback_endpoint=None, heartbeat_endpoint=None
        )
        env.stack.append(outcome)

    StateTaskServiceGlue._eval_integration_pattern = _eval_integration_pattern
    StateTaskServiceGlue._ndjson_parquet_sync_fix = True


# A local run plays the interpreter's waits faster, as it plays the scheduler's (runtime.py): a
# Task's Retry waits (IntervalSeconds 1 doubling: 1 to 8 s a failed call, 10 to 30 s for Glue's)
# last a tenth as long, and the ``.sync`` task polls GetJobRun every 0.1 s instead of moto's
# 0.5 s. Attempts, their order and every outcome stay those of the ASL file.
RETRY_WAIT_SCALE = 0.1
SYNC_POLL_SECONDS = 0.1


class _ScaledRetryClock:
    """The ``time`` module as moto's retrier sees it: ``sleep`` scaled, the rest unchanged."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(seconds * RETRY_WAIT_SCALE)


def _compress_interpreter_waits() -> None:
    """Idempotent: both are module attributes moto's interpreter reads at each wait."""
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
        state_task_service_callback as callback,
    )

    retrier_decl.time = _ScaledRetryClock()  # type: ignore[assignment]
    callback._DELAY_SECONDS_SYNC_CONDITION_CHECK = SYNC_POLL_SECONDS  # type: ignore[misc]


def _sign_as_execution_role() -> None:
    """moto's interpreter makes its task calls (lambda:InvokeFunction, glue:StartJobRun, sns:Publish,
    dynamodb:*) with clients keyed "ak"/"sk"; under enforcement they are signed with the keys of
    the user acting for the execution's role (``_ROLE_CALLERS``), so they get that role's
    permissions. Replaces ``boto_client_for`` in the interpreter modules that imported it; idempotent."""
    import sys

    from moto.stepfunctions.parser.asl.utils import boto_client as module

    original = module.boto_client_for
    if getattr(original, "_ndjson_parquet_signed", False):
        return

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        if not _ROLE_CALLERS:
            return original(region, service, state_credentials)
        role_arn = getattr(state_credentials, "role_arn", None)
        caller = _ROLE_CALLERS.get(role_arn or "")
        if caller is None:
            raise PermissionError(f"no IAM user acts for the execution role {role_arn!r}")
        client = original(region, service, state_credentials)
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=client.meta.endpoint_url,
            aws_access_key_id=caller.access_key,
            aws_secret_access_key=caller.secret_key,
            aws_session_token="",
            config=client.meta.config,
        )

    boto_client_for._ndjson_parquet_signed = True  # type: ignore[attr-defined]
    for name, loaded in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.parser") and getattr(loaded, "boto_client_for", None) is original:
            loaded.boto_client_for = boto_client_for


class LocalTaskHost:
    """Serves the state machine's Lambda and Glue tasks from Python callables in this process."""

    def __init__(self, endpoint_url: str, region: str = "us-east-1", account_id: str = DEFAULT_ACCOUNT) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.account_id = account_id
        port = urlparse(endpoint_url).port
        # moto's interpreter reaches the server at localhost:$MOTO_PORT (default 5000), read per
        # call: point it at this server's random port.
        if port:
            os.environ["MOTO_PORT"] = str(port)
        self._glue_lock = threading.Lock()
        _fix_glue_sync()
        _compress_interpreter_waits()
        _sign_as_execution_role()
        # The role callers are module-level (moto's interpreter reads them): a new host starts
        # unenforced, so an earlier enforced run's users (gone with its moto account) never sign
        # this host's task calls. ``act_for_roles`` turns enforcement on for this host's run.
        _ROLE_CALLERS.clear()

    def act_for_roles(self, callers: Mapping[str, Caller]) -> None:
        """Enforce IAM on what this host plays: ``callers`` maps a role ARN (the state machine's
        execution role, the rule target's role) to the IAM user acting for it; empty = off."""
        _ROLE_CALLERS.clear()
        _ROLE_CALLERS.update(callers)

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)

    # --- Lambda ------------------------------------------------------------------------------
    def serve_lambda(self, function_name: str, handler: LambdaHandler) -> str:
        """Make ``function_name`` (created if missing) run ``handler(event)``; returns its ARN."""
        from moto.awslambda.utils import get_backend

        arn = self._ensure_function(function_name)
        fn = get_backend(self.account_id, self.region).get_function(function_name, None)

        def _invoke_lambda(event: Any = None) -> tuple[str, bool, str]:
            payload = event if isinstance(event, dict) else json.loads(event or "{}")
            from ndjson_parquet.local.faults import InjectedExit
            from ndjson_parquet.local.sandbox import FunctionError

            try:
                return json.dumps(handler(payload), default=str), False, ""
            except InjectedExit as exc:  # the function's process ended: Lambda reports an exit error
                body = {"errorType": "Runtime.ExitError", "errorMessage": f"Runtime exited: {exc}"}
                return json.dumps(body), True, ""
            except FunctionError as exc:  # a sandboxed function (sandbox.py): Lambda's own error name
                body = {"errorType": exc.error_type, "errorMessage": str(exc)}
                return json.dumps(body), True, ""
            except Exception as exc:
                body = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
                return json.dumps(body), True, traceback.format_exc()

        fn._invoke_lambda = _invoke_lambda  # the documented per-object override (module docstring)
        return arn

    def _ensure_function(self, name: str) -> str:
        # Create, and look up only on conflict: under IAM enforcement moto 5.2.5 miscomputes the
        # signature of Lambda GET requests (it hashes its parsed headers as the empty body).
        lam = self.client("lambda")
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("app.py", "def handler(event, context):\n    return event\n")
        try:
            resp = lam.create_function(
                FunctionName=name,
                Runtime="python3.11",
                Role=self._role_arn(),
                Handler="app.handler",
                Code={"ZipFile": buf.getvalue()},
            )
        except lam.exceptions.ResourceConflictException:
            from moto.awslambda.utils import get_backend

            return get_backend(self.account_id, self.region).get_function(name, None).function_arn
        return resp["FunctionArn"]

    def _role_arn(self, name: str = "local-task-host") -> str:
        iam = self.client("iam")
        try:
            return iam.get_role(RoleName=name)["Role"]["Arn"]
        except iam.exceptions.NoSuchEntityException:
            trust = {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
            return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]

    # --- Glue --------------------------------------------------------------------------------
    def serve_glue_job(self, job_name: str, runner: GlueRunner, serialize: bool = True) -> None:
        """Runs of ``job_name`` (created if missing) call ``runner(arguments)`` in a thread; an
        exception fails the run. ``serialize`` queues runs one at a time (one warm SparkSession)
        instead of refusing them with ConcurrentRunsExceededException."""
        from moto.glue.models import FakeJobRun, glue_backends

        glue = self.client("glue")
        try:
            glue.get_job(JobName=job_name)
        except glue.exceptions.EntityNotFoundException:
            glue.create_job(
                Name=job_name,
                Role=self._role_arn(),
                Command={"Name": "glueetl", "ScriptLocation": "s3://local/glue/ndjson_to_parquet.py"},
                GlueVersion="5.0",
                ExecutionProperty={"MaxConcurrentRuns": 100 if serialize else 1},
            )
        job = glue_backends[self.account_id][self.region].get_job(job_name)
        original_start = job.start_job_run
        lock = self._glue_lock if serialize else threading.Lock()

        class _LocalJobRun(FakeJobRun):
            """A run whose state is our runner's: RUNNING, then SUCCEEDED or FAILED."""

            outcome: str | None = None
            error: str = ""

            @property
            def status(self) -> str | None:  # type: ignore[override]
                return self.outcome or "RUNNING"

            @status.setter
            def status(self, value: str) -> None:
                self.outcome = value

            def as_dict(self) -> dict[str, Any]:
                out = super().as_dict()
                if self.error:
                    out["ErrorMessage"] = self.error
                return out

        def start_job_run(**kwargs: Any) -> str:
            run_id = original_start(**kwargs)
            index = next(i for i, r in enumerate(job.job_runs) if r.job_run_id == run_id)
            plain = job.job_runs[index]
            run = _LocalJobRun(job_name=job.name, arguments=plain.arguments)
            run.job_run_id = run_id
            job.job_runs[index] = run

            def work() -> None:
                with lock:
                    from ndjson_parquet.local.faults import STEP_FAILURES

                    try:
                        runner(dict(run.arguments or {}))
                        run.outcome = "SUCCEEDED"
                    except STEP_FAILURES as exc:  # an error, or the job's abrupt end: the run FAILED
                        log.warning("local glue run failed: %s", exc)
                        run.error = f"{type(exc).__name__}: {exc}"[:2000]
                        run.outcome = "FAILED"
                    run.completed_on = datetime.now(UTC)

            threading.Thread(target=work, name=f"glue-{job_name}-{run_id[:12]}", daemon=True).start()
            return run_id

        job.start_job_run = start_job_run  # the documented per-object override (module docstring)

    # --- EventBridge -------------------------------------------------------------------------
    def route_rule(self, bus_name: str, rule_name: str) -> None:
        """Deliver events matching the rule to its Step Functions targets, as EventBridge would."""
        from moto.events.models import Rule, events_backends

        rule = events_backends[self.account_id][self.region].event_buses[bus_name].rules[rule_name]
        host = self

        def send_to_targets(original_event: dict[str, Any], transform_input: bool = True) -> None:
            if not rule.event_pattern.matches_event(original_event):
                return
            others = [t for t in rule.targets if ":states:" not in t["Arn"]]
            for target in rule.targets:
                if ":states:" in target["Arn"]:
                    host._start_for_target(target, original_event)
            if others:
                proxy = copy.copy(rule)
                proxy.targets = others
                Rule.send_to_targets(proxy, original_event, transform_input)

        rule.send_to_targets = send_to_targets  # the documented per-object override (module docstring)

    def _start_for_target(self, target: dict[str, Any], event: dict[str, Any]) -> None:
        body = dict(event)
        body["time"] = _iso(body.get("time"))
        body.pop("ingestion-time", None)
        try:
            _check_target_role(target, "states:StartExecution", self.account_id)
            self.start_execution(target["Arn"], body)
        except Exception as exc:
            dlq = (target.get("DeadLetterConfig") or {}).get("Arn")
            log.warning("rule could not start %s: %s (dlq=%s)", target["Arn"], exc, dlq)
            if dlq:
                from moto.sqs.models import sqs_backends

                sqs_backends[self.account_id][self.region].send_message(
                    queue_name=dlq.rsplit(":", 1)[1], message_body=json.dumps(body)
                )

    def start_execution(self, state_machine_arn: str, event: dict[str, Any]) -> str:
        """Start the state machine with ``event`` as input (what the rule target does). In-process,
        so it also works from inside a moto request (a rule delivering PutEvents)."""
        from moto.stepfunctions.parser.models import stepfunctions_parser_backends

        backend = stepfunctions_parser_backends[self.account_id][self.region]
        execution = backend.start_execution(
            state_machine_arn, name=str(uuid.uuid4()), execution_input=json.dumps(event, default=str)
        )
        return execution.execution_arn


def _check_target_role(target: Mapping[str, Any], action: str, account_id: str) -> None:
    """EventBridge calls a target with the target's role: refuse the start when that role's
    user may not do ``action`` on the target (evaluated by moto's own policy engine). In-process
    starts bypass moto's request checks, so this is where the events role is enforced."""
    if not _ROLE_CALLERS:
        return
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.iam.models import iam_backends

    caller = _ROLE_CALLERS.get(target.get("RoleArn", ""))
    if caller is None:
        raise PermissionError(f"no IAM user acts for the target role {target.get('RoleArn')!r}")
    backend = iam_backends[account_id]["aws"]
    results = [
        IAMPolicy(backend.get_user_policy(caller.name, name)).is_action_permitted(action, target["Arn"])
        for name in backend.list_user_policies(caller.name)
    ]
    if PermissionResult.DENIED in results or PermissionResult.PERMITTED not in results:
        raise PermissionError(f"User: {caller.name} is not authorized to perform: {action} on {target['Arn']}")
