"""Seeded, reproducible fault injection for the local runtime (tests and campaigns only).

Production code has no fault hooks. The one seam is botocore's event system on the shared
clients of ``chalicelib.aws.clients``: a ``FaultPlan`` registers ``before-parameter-build`` /
``before-call`` / ``after-call`` handlers on them, so an injected fault is an exception (or a
response) exactly where a real one would surface:

- a *crash* at a boundary is raised by the handler of that API call: ``after`` points raise once
  the call's effect is durable, ``before`` points before it is sent. It comes in two kinds: an
  ``InjectedCrash`` (an ``Exception``: the step's own error handling sees it, as it would an SDK
  error) or, for a fault planned with ``exit=True``, an ``InjectedExit`` (a ``BaseException``:
  no ``except Exception`` in the step can catch it, so the invocation ends there, as a Lambda
  timeout, OOM or kill ends it; only the runtime playing Lambda catches it);
- *throttling* is a ``ClientError`` (``ProvisionedThroughputExceededException`` for DynamoDB,
  ``ThrottlingException`` elsewhere) raised before the call, i.e. a throttle that outlasted the
  SDK's own retries (the hard case: the handler sees it);
- a PutEvents *partial failure* short-circuits the call (before-call) with a 200 response whose
  ``FailedEntryCount`` is 1 (the event is not delivered); a *lost ack* lets the event through and
  rewrites the parsed answer to say it failed (delivered, but the caller believes it was not).

The parts AWS plays that are not API calls of our clients are wrapped by the runtime through the
plan's ``wrap_*`` methods: Lambda event-source deliveries (each batch delivered 1-3 times,
shuffled), the Step Functions Lambda tasks (crash after a task's effect), the Glue runner
(failure before / crash after the job's work) and the rule's StartExecution (start failure).

Every decision comes from ``random.Random(seed)``, so a seed replays the same plan; the order of
calls can still vary with thread timing, so a replay is "the same faults", not the same trace.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError


class InjectedCrash(Exception):
    """A step failed at a fault point with an error its own code can see and handle."""


class InjectedExit(BaseException):
    """A step's process ended abruptly at a fault point (Lambda timeout, OOM, kill): a
    ``BaseException`` so that no ``except Exception`` in production code intercepts it. Only
    the runtime's stand-ins for Lambda, Glue and Step Functions catch it (``STEP_FAILURES``)."""


# What the runtime's stand-ins for Lambda / Glue / Step Functions treat as "the step failed".
STEP_FAILURES: tuple[type[BaseException], ...] = (Exception, InjectedExit)


class InjectedGlueFailure(Exception):
    """The Glue job run failed (injected)."""


class InjectedStartFailure(Exception):
    """StartExecution from the EventBridge rule failed (injected)."""


# --- fault points ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiPoint:
    """A fault point on an API call of the shared clients: service, operation, when, and a
    predicate on the call's parameters (and the task step it runs in, if any)."""

    service: str  # botocore service name: dynamodb, s3, events, sqs, sns, stepfunctions
    operations: tuple[str, ...]
    when: str  # "before" | "after"
    matches: Callable[[dict[str, Any], str], bool] = lambda params, step: True


def _attr(params: dict[str, Any], section: str, name: str) -> str:
    value = (params.get(section) or {}).get(name) or {}
    return str(value.get("S", "")) if isinstance(value, dict) else ""


def _is_file_put(p: dict[str, Any], step: str) -> bool:
    return _attr(p, "Item", "sk") == "FILE"


def _is_counter_add(p: dict[str, Any], step: str) -> bool:
    return _attr(p, "Key", "pk").startswith("COUNTER#") and "ADD" in str(p.get("UpdateExpression", ""))


def _is_seal_win(p: dict[str, Any], step: str) -> bool:
    return _attr(p, "Item", "sk") == "MANIFEST" and _attr(p, "Item", "status") == "sealing"


def _is_manifest_write(p: dict[str, Any], step: str) -> bool:
    import os

    return p.get("Bucket") == os.environ.get("MANIFEST_BUCKET")


def _in_step(name: str) -> Callable[[dict[str, Any], str], bool]:
    return lambda p, step: step == name


# Crash points named by the boundary they cut (the list). Each is "the step dies here".
CRASH_POINTS: dict[str, ApiPoint] = {
    "after_file_put": ApiPoint("dynamodb", ("PutItem",), "after", _is_file_put),
    "after_counter_add": ApiPoint("dynamodb", ("UpdateItem",), "after", _is_counter_add),
    "after_seal_win": ApiPoint("dynamodb", ("PutItem",), "after", _is_seal_win),
    "between_claim_and_manifest_write": ApiPoint("s3", ("PutObject",), "before", _is_manifest_write),
    "between_manifest_write_and_put_events": ApiPoint("events", ("PutEvents",), "before"),
    # after finalize's first file-move transaction (files converted, manifest not yet succeeded)
    "inside_finalize": ApiPoint("dynamodb", ("TransactWriteItems",), "after", _in_step("finalize")),
    "inside_compensate": ApiPoint("dynamodb", ("TransactWriteItems", "UpdateItem"), "after", _in_step("compensate")),
}
# Points that are not API calls of the shared clients (wrapped by the runtime).
WRAPPED_POINTS = ("after_claim_run", "before_glue", "after_glue")
ALL_CRASH_POINTS = tuple(CRASH_POINTS) + WRAPPED_POINTS
# Other fault kinds, by name.
GLUE_FAILURE = "glue_failure"
START_FAILURE = "sfn_start_failure"
PUT_EVENTS_PARTIAL = "put_events_partial_failure"
PUT_EVENTS_LOST_ACK = "put_events_lost_ack"
THROTTLE = "throttle"
# Faults that fail a whole run (the manifest is compensated, its files' attempts + 1).
RUN_FAILING = ("after_claim_run", "before_glue", "after_glue", "glue_failure")
DUPLICATE = "duplicate_delivery"
# The converter Lambda's abnormal ends (its sandbox, ndjson_parquet/local/sandbox.py): each falls
# back to Glue for the same manifest, no attempt spent. The stall each one asks of the sandbox:
CONVERTER_FAULTS: dict[str, dict[str, Any]] = {
    # overruns its timeout before converting anything: Sandbox.Timedout, nothing written
    "converter_timeout": {"timeout": 1.0, "before": 3600.0},
    # killed at its timeout after its work committed (the Glue run replaces the manifest's rows)
    "converter_timeout_after_commit": {"timeout": 0.5, "after": 3600.0},
    # killed wherever it is 0.5 s in: mid-convert or mid-commit
    "converter_killed_mid_run": {"kill_after": 0.5},
    # its process exits mid-invocation: Runtime.ExitError
    "converter_exit": {"exit": "before"},
    "converter_exit_after_commit": {"exit": "after"},
    # its process exits right after its Iceberg commit, before the run summary's final write and
    # before it answers (the window a staged summary covers): Runtime.ExitError
    "converter_exit_mid_commit": {"exit": "commit"},
    # a worker of its process pool is killed (as the OOM killer would): WorkerDiedError
    "converter_worker_killed": {"kill_worker": 0.0},
    # a timeout shorter than its deadline margin (20 s): the handler raises ConverterDeadlineError
    # itself at its start. 19 s, not less: the local host's clock also counts a replaced sandbox's
    # cold start (imports, 5-10 s under load), which would otherwise end it as Sandbox.Timedout.
    "converter_deadline": {"timeout": 19.0},
}
# Converter faults that may leave the manifest committed by the Lambda (the Glue run replaces it).
CONVERTER_AFTER_COMMIT = ("converter_timeout_after_commit", "converter_exit_after_commit", "converter_exit_mid_commit")
# Faults only a Glue run reaches (forced glue, or a Lambda run falling back to Glue).
GLUE_ONLY = ("before_glue", "after_glue", GLUE_FAILURE)
ENGINES = ("auto", "glue")  # what a randomized plan runs with (auto: small manifests go to the Lambda)
ALL_KINDS = (
    *ALL_CRASH_POINTS,
    GLUE_FAILURE,
    START_FAILURE,
    PUT_EVENTS_PARTIAL,
    PUT_EVENTS_LOST_ACK,
    *CONVERTER_FAULTS,
)


# Points every scenario (3-6 files, manifests of up to 2, so 2+ manifests) reaches at least twice.
SURE_POINTS = (
    "after_file_put",
    "after_counter_add",
    "after_seal_win",
    "between_claim_and_manifest_write",
    "between_manifest_write_and_put_events",
    "after_claim_run",
)


def _sure(fault: Fault, engine: str) -> bool:
    """Whether a scenario is sure to reach this fault's point more than ``skip`` times."""
    if fault.skip > 1:
        return fault.point in ("after_file_put", "after_counter_add") and fault.skip <= 2
    if fault.point in CONVERTER_FAULTS:
        return engine != "glue"
    if fault.point in GLUE_ONLY:
        return engine == "glue"
    return fault.point in (*SURE_POINTS, "inside_finalize", START_FAILURE, PUT_EVENTS_PARTIAL, PUT_EVENTS_LOST_ACK)


@dataclass
class Fault:
    """Fire at a point: skip the first ``skip`` matching events, then fire ``times`` times, each
    with ``probability``."""

    point: str
    skip: int = 0
    times: int = 1
    probability: float = 1.0
    exit: bool = False  # crash points: end the step abruptly (InjectedExit), not with an error
    delay: float | None = None  # converter_killed_mid_run: seconds into the invocation it is killed
    seen: int = 0
    fired: int = 0


@dataclass
class FaultPlan:
    seed: int = 0
    faults: list[Fault] = field(default_factory=list)
    throttle_rate: float = 0.0  # fraction of calls of the shared clients throttled
    throttle_cap: int = 0  # at most this many throttles per plan
    duplicate_rate: float = 0.0  # chance a delivered batch is delivered 2-3 times (shuffled)
    # The run's conversion engine (RunOptions.engine): auto sends the scenarios' small manifests to
    # the converter Lambda, glue forces every manifest to Glue (the converter faults never fire).
    engine: str = "auto"
    injected: Counter[str] = field(default_factory=Counter)
    exits: int = 0  # how many of the injected crashes were abrupt exits

    def __post_init__(self) -> None:
        unknown = [f.point for f in self.faults if f.point not in ALL_KINDS]
        if unknown:
            raise ValueError(f"unknown fault points: {unknown}; known: {', '.join(ALL_KINDS)}")
        if self.engine not in ("auto", "lambda", "glue"):
            raise ValueError(f"unknown engine {self.engine!r}")
        self._rng = random.Random(self.seed)
        self._lock = threading.RLock()
        self._local = threading.local()
        self._installed: list[Any] = []

    # --- construction --------------------------------------------------------------------
    @classmethod
    def crash_at(cls, point: str, seed: int = 0, skip: int = 0, times: int = 1, exit: bool = False) -> FaultPlan:
        return cls(seed=seed, faults=[Fault(point, skip=skip, times=times, exit=exit)])

    @classmethod
    def random(cls, seed: int) -> FaultPlan:
        """A randomized scenario: 1-4 crash points, maybe Glue/start/PutEvents failures,
        maybe throttling and duplicate deliveries. Budgets stay below MAX_ATTEMPTS (3) failures
        of one file and the circuit breaker's threshold (5), so every fault is recoverable."""
        rng = random.Random(seed)
        faults = [Fault(p, skip=rng.randint(0, 2), times=1) for p in rng.sample(ALL_CRASH_POINTS, rng.randint(1, 4))]
        for kind in (GLUE_FAILURE, START_FAILURE, PUT_EVENTS_PARTIAL, PUT_EVENTS_LOST_ACK):
            if rng.random() < 0.3:
                faults.append(Fault(kind, skip=rng.randint(0, 2), times=1))
        # At most MAX_ATTEMPTS - 1 (= 2) faults that fail a whole run: a third failure of the same
        # file quarantines it by design (seed 1177 of the first campaign did exactly that).
        failing = [f for f in faults if f.point in RUN_FAILING]
        faults = [f for f in faults if f.point not in RUN_FAILING or f in failing[:2]]
        # Half the crashes are abrupt exits; drawn from their own generator so that adding them
        # left every earlier seed's points, skips and rates as they were.
        exits = random.Random(f"exit-{seed}")
        for fault in faults:
            fault.exit = fault.point in ALL_CRASH_POINTS and exits.random() < 0.5
        throttle = rng.random() < 0.5
        # The engine and the converter Lambda's ends (falling back to Glue), from their own
        # generators too. Forced glue: no converter fault (none could fire). Auto: every manifest
        # of a scenario goes to the Lambda, so a Glue-only fault is reached only through a
        # fallback: it gets a converter fault ahead of it, and fires on the first Glue run.
        engine = "glue" if random.Random(f"engine-{seed}").random() < 0.35 else "auto"
        lam = random.Random(f"lambda-{seed}")
        glue_only = [f for f in faults if f.point in GLUE_ONLY]
        if engine == "auto" and (glue_only or lam.random() < 0.6):
            kind = lam.choice(sorted(CONVERTER_FAULTS))
            converter = Fault(kind, skip=lam.randint(0, 1), times=1)
            if kind == "converter_killed_mid_run":  # mid-convert or mid-commit: a warm run takes ~1 s
                converter.delay = round(lam.uniform(0.2, 2.0), 2)
            faults.append(converter)
            for fault in glue_only:
                fault.skip = 0
        # A plan must inject something: if none of its faults is sure to be reached (e.g. only
        # inside_compensate, with no run failing), one at a point every scenario reaches joins it
        # (its own generator: a plan that had one is unchanged; campaign 2026-12-07, seed 1045).
        if not any(_sure(f, engine) for f in faults):
            sure = random.Random(f"sure-{seed}")
            faults.append(Fault(sure.choice(SURE_POINTS), skip=sure.randint(0, 1), exit=sure.random() < 0.5))
        return cls(
            seed=seed,
            engine=engine,
            faults=faults,
            throttle_rate=round(rng.uniform(0.005, 0.04), 3) if throttle else 0.0,
            throttle_cap=rng.randint(1, 8) if throttle else 0,
            duplicate_rate=rng.choice([0.0, 0.5, 1.0]),
        )

    def describe(self) -> str:
        parts = [
            f"{f.point}(skip={f.skip},times={f.times}{',exit' if f.exit else ''}"
            + (f",delay={f.delay}" if f.delay is not None else "")
            + ")"
            for f in self.faults
        ]
        if self.engine != "auto":
            parts.insert(0, f"engine={self.engine}")
        if self.throttle_cap:
            parts.append(f"throttle(rate={self.throttle_rate},cap={self.throttle_cap})")
        if self.duplicate_rate:
            parts.append(f"duplicates(rate={self.duplicate_rate})")
        return f"seed={self.seed}: " + ", ".join(parts or ["no faults"])

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())

    @property
    def planned_fired(self) -> int:
        """How many of the planned faults (not throttles, not duplicate deliveries) fired."""
        return sum(f.fired for f in self.faults)

    def unfired(self) -> list[str]:
        """The planned faults that never fired (their point was not reached often enough)."""
        return [f.point for f in self.faults if f.fired == 0]

    @property
    def converter_fallbacks(self) -> int:
        """Converter faults that fired: each sent one Lambda run of a manifest on to Glue."""
        return sum(self.injected[k] for k in CONVERTER_FAULTS)

    # --- decisions -----------------------------------------------------------------------
    def _fire(self, point: str) -> bool:
        """One matching event at ``point``: does a fault fire now? (counts it if so)"""
        return self._firing(point) is not None

    def _firing(self, point: str) -> Fault | None:
        """The fault that fires at this matching event of ``point``, if any (counted)."""
        with self._lock:
            for fault in self.faults:
                if fault.point != point or fault.fired >= fault.times:
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip or self._rng.random() >= fault.probability:
                    continue
                fault.fired += 1
                self.injected[point] += 1
                if fault.exit:
                    self.exits += 1
                return fault
        return None

    @staticmethod
    def _crash(exit: bool, message: str) -> BaseException:
        """The exception a firing crash raises: an abrupt exit, or an error the step can see."""
        return InjectedExit(f"injected exit: {message}") if exit else InjectedCrash(message)

    def _throttle(self) -> bool:
        with self._lock:
            if self.injected[THROTTLE] >= self.throttle_cap or self._rng.random() >= self.throttle_rate:
                return False
            self.injected[THROTTLE] += 1
            return True

    @property
    def step(self) -> str:
        return getattr(self._local, "step", "")

    # --- the botocore seam ---------------------------------------------------------------
    def install(self, registry: Any, services: Iterable[str] = ("dynamodb", "s3", "events", "sqs", "sns")) -> None:
        """Register the plan's handlers on the registry's clients (created now if needed).
        Call after the registry was (re)configured; ``uninstall`` removes them."""
        for service in services:
            client = registry.get(service)
            events = client.meta.events
            handlers = [
                ("before-parameter-build", self._on_params),
                ("before-call", self._on_before_call),
                ("after-call", self._on_after_call),
            ]
            for event, handler in handlers:
                events.register(f"{event}.{client.meta.service_model.service_id.hyphenize()}", handler)
                self._installed.append((events, f"{event}.{client.meta.service_model.service_id.hyphenize()}", handler))

    def uninstall(self) -> None:
        for events, name, handler in self._installed:
            events.unregister(name, handler)
        self._installed.clear()

    def _on_params(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        service, op = model.service_model.service_name, model.name
        decided: list[tuple[str, str, bool]] = []  # (when, fault name, abrupt exit)
        for name, point in CRASH_POINTS.items():
            matched = point.service == service and op in point.operations and point.matches(params, self.step)
            fault = self._firing(name) if matched else None
            if fault is not None:
                decided.append((point.when, name, fault.exit))
        if service == "events" and op == "PutEvents":
            if self._fire(PUT_EVENTS_PARTIAL):
                decided.append(("send", PUT_EVENTS_PARTIAL, False))
            elif self._fire(PUT_EVENTS_LOST_ACK):
                decided.append(("after", PUT_EVENTS_LOST_ACK, False))
        if self.throttle_cap and self._throttle():
            decided.append(("before", THROTTLE, False))
        context["ndjson_faults"] = decided

    def _on_before_call(self, model: Any, context: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]] | None:
        for when, name, exit in context.get("ndjson_faults", ()):
            if when != "before":
                continue
            if name == THROTTLE:
                code = (
                    "ProvisionedThroughputExceededException"
                    if model.service_model.service_name == "dynamodb"
                    else "ThrottlingException"
                )
                error = {"Code": code, "Message": "injected throttle"}
                raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, model.name)
            raise self._crash(exit, f"injected crash {name} (before {model.name})")
        if ("send", PUT_EVENTS_PARTIAL, False) in context.get("ndjson_faults", ()):
            # Returning (http, parsed) from before-call short-circuits the request: the event is
            # never sent, and PutEvents answers 200 with the entry failed, as EventBridge does.
            parsed = {
                "FailedEntryCount": 1,
                "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "injected partial failure"}],
            }
            return _Http(200), parsed
        return None

    def _on_after_call(self, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        for when, name, exit in context.get("ndjson_faults", ()):
            if when != "after":
                continue
            if name == PUT_EVENTS_LOST_ACK:
                entries = parsed.get("Entries") or [{}]
                parsed["FailedEntryCount"] = len(entries)
                parsed["Entries"] = [{"ErrorCode": "InternalFailure", "ErrorMessage": "injected lost ack"}] * len(
                    entries
                )
                continue
            raise self._crash(exit, f"injected crash {name} (after {model.name})")

    # --- wrappers for the parts the runtime plays ----------------------------------------
    def wrap_delivery(self, handle: Callable[[list[Any]], Any]) -> Callable[[list[Any]], Any]:
        """An event-source mapping that delivers each batch 1-3 times, in shuffled order (the
        handler must be idempotent; a raising delivery propagates, so the batch is retried)."""

        def deliver(batch: list[Any]) -> Any:
            with self._lock:
                copies = 1
                if self.duplicate_rate and self._rng.random() < self.duplicate_rate:
                    copies = self._rng.choice([2, 3])
                    self.injected[DUPLICATE] += copies - 1
                orders = []
                for _ in range(copies):
                    order = list(batch)
                    if self.duplicate_rate:
                        self._rng.shuffle(order)
                    orders.append(order)
            result = None
            for order in orders:
                result = handle(order)
            return result

        return deliver

    def wrap_task(self, name: str, handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
        """A Step Functions Lambda task: API faults inside it know its name (``inside_finalize``),
        and ``after_<name>`` crashes it once its effect is done."""

        def task(event: Any) -> Any:
            previous = self.step
            self._local.step = name
            try:
                result = handler(event)
            finally:
                self._local.step = previous
            if f"after_{name}" in ALL_CRASH_POINTS:
                fault = self._firing(f"after_{name}")
                if fault is not None:
                    raise self._crash(fault.exit, f"injected crash after_{name}")
            return result

        return task

    def wrap_converter(self, invoke: Callable[..., Any]) -> Callable[[Any], Any]:
        """The converter Lambda's invocations (``invoke(event, stall)``: its SandboxPool's): a
        firing converter fault has this invocation's sandbox end as it says (``CONVERTER_FAULTS``)."""

        def converter(event: Any) -> Any:
            for kind, stall in CONVERTER_FAULTS.items():
                fault = self._firing(kind)
                if fault is not None:
                    stall = dict(stall)
                    if fault.delay is not None and "kill_after" in stall:
                        stall["kill_after"] = fault.delay
                    return invoke(event, stall)
            return invoke(event)

        return converter

    def wrap_glue(self, runner: Callable[[dict[str, str]], None]) -> Callable[[dict[str, str]], None]:
        def run(arguments: dict[str, str]) -> None:
            if self._fire(GLUE_FAILURE):
                raise InjectedGlueFailure("injected Glue job failure")
            fault = self._firing("before_glue")
            if fault is not None:
                raise self._crash(fault.exit, "injected crash before_glue")
            runner(arguments)
            fault = self._firing("after_glue")
            if fault is not None:
                raise self._crash(fault.exit, "injected crash after_glue (the job's output is committed)")

        return run

    def wrap_start(self, start: Callable[..., str]) -> Callable[..., str]:
        def start_execution(*args: Any, **kwargs: Any) -> str:
            if self._fire(START_FAILURE):
                raise InjectedStartFailure("injected StartExecution failure")
            return start(*args, **kwargs)

        return start_execution


@dataclass(frozen=True)
class _Http:
    """The bit of an HTTP response botocore reads after a short-circuited call."""

    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
