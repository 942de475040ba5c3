"""The whole pipeline on one machine: S3 → SQS → track_files → stream → count_arrivals →
EventBridge → convert-manifest (the ASL file) → the converter Lambda (a process pool) or the Glue
job (a SparkSession, started when the first manifest goes to Glue) → Iceberg table.

Nothing here re-implements a pipeline step. The runtime only plays the parts AWS plays:
- moto (in-process server) for every AWS API, resources created from ``infra/pipeline.yaml``;
- Lambda's event-source mappings: SQS batches and stream records handed, in Lambda's event
  shape, to the same Chalice handlers ``app.py`` deploys;
- the EventBridge rule's Step Functions target, and the Lambda/Glue task calls of moto's ASL
  interpreter (``ndjson_parquet.local.stepfunctions.LocalTaskHost``); the converter Lambda runs in
  its own sandbox process, kept warm across manifests, with its function's environment, timeout
  and role (``ndjson_parquet.local.sandbox``);
- the engine rule: ``--engine`` sets ClaimRun's CONVERT_ENGINE (``auto``: the stack's rule,
  manifests up to LAMBDA_MAX_BYTES go to the converter Lambda); no JVM starts (and Java is not
  needed) unless a manifest goes to Glue;
- Lambda's execution roles, with IAM enforced (the default): the stack is deployed by an
  administrator, then every handler, the state machine's tasks, the Glue job, the rule's target
  and the operator act as IAM users holding exactly their role's policy
  (``ndjson_parquet.local.iam``, ``ndjson_parquet.local.callers``); a missing grant is refused
  with an AccessDenied that names the user (the role) and the action;
- the scheduler: once the input is drained and nothing moves, ``flush_stale`` runs with a clock
  moved past BATCH_MAX_WAIT_SECONDS (a local run does not wait 15 minutes), and ``recover``
  runs the same way if a manifest is stuck.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from chalicelib import keys
from chalicelib.settings import DEFAULT_SUFFIXES
from chalicelib.tracking_table import TrackingTable
from ndjson_parquet.java_check import java_problem
from ndjson_parquet.local.iam import Caller
from ndjson_parquet.local.inputs import InputFile, scan_input
from ndjson_parquet.local.report import RunReport
from ndjson_parquet.local.server import LocalEndpoint, moto_server, prepare_account
from ndjson_parquet.sessions import new_session, reset_default_session

STAGE = "local"
# Held (failOnNewColumns refused the schema change) waits for an operator, not for the pipeline.
TERMINAL_MANIFEST = {keys.MANIFEST_SUCCEEDED, keys.MANIFEST_FAILED, keys.MANIFEST_HELD}
SETTLED_FILE = {keys.CONVERTED, keys.QUARANTINED, keys.SKIPPED, keys.HELD}


ENGINES = ("auto", "lambda", "glue")
# The converter function's configuration when the stack does not give it (template defaults).
CONVERTER_PRELOAD = ("pyiceberg.catalog.sql", "pyiceberg.io.pyarrow", "pyiceberg.table", "pyiceberg.partitioning")
# LAMBDA_MAX_BYTES without one: chalicelib/settings.py's default applies.
CONVERTER_DEFAULTS = {"ConverterTimeoutSeconds": "300", "ConverterMemoryMB": "3538"}


class RuntimeSetupError(RuntimeError):
    """The local run cannot start (no Java, bad input, port in use): one clear line."""


class JavaMissingError(RuntimeSetupError):
    """A manifest went to Glue and Spark cannot start: the same line ``make check-java`` prints."""


@dataclass(frozen=True)
class RunOptions:
    input_dir: Path
    output_dir: Path
    quarantine_dir: Path | None = None
    summary_json: Path | None = None
    batch_max_files: int = 200
    shards: int = 10
    compression: str = "snappy"
    schema_path: Path | None = None
    port: int = 0
    keep_running: bool = False
    idle_timeout_seconds: float = 300.0
    suffixes: tuple[str, ...] = tuple(DEFAULT_SUFFIXES.split(","))
    # The scheduler's stand-ins: recover runs after this many idle seconds, at most max_recovers
    # times; a handler that keeps raising is retried (as Lambda does) up to max_handler_failures.
    recover_idle_seconds: float = 20.0
    max_recovers: int = 3
    max_handler_failures: int = 25
    # The table's schema policy (glue/table_schema.py): addNewColumns, rescue or failOnNewColumns.
    schema_mode: str = "addNewColumns"
    # moto's IAM enforcement: every caller holds exactly its role's policy (see the module docstring).
    enforce_iam: bool = True
    # Tests only: role -> [(policy name, document)] replacing that role's policies (take a grant away).
    policy_overrides: dict[str, list[tuple[str, dict[str, Any]]]] | None = None
    # The conversion engine (ClaimRun's CONVERT_ENGINE): auto (the stack's rule), lambda or glue.
    engine: str = "auto"
    # The converter Lambda's timeout; None: the function's configured one (ConverterTimeoutSeconds).
    converter_timeout_seconds: float | None = None
    # Converter sandboxes at once (its reserved concurrency, locally; each holds its own workers;
    # one: on a small machine a second cold start competes with the first for the same cores).
    converter_concurrency: int = 1

    @property
    def quarantine(self) -> Path:
        return self.quarantine_dir or self.output_dir.parent / f"{self.output_dir.name}-quarantine"


Progress = Callable[[str], None]


@dataclass
class PipelineState:
    """What the table says, counted page by page (never one unbounded read)."""

    files_by_status: dict[str, int] = field(default_factory=dict)
    manifests_by_status: dict[str, int] = field(default_factory=dict)
    file_items: list[dict[str, Any]] = field(default_factory=list)
    manifest_items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def files(self) -> int:
        return sum(self.files_by_status.values())

    @property
    def unsettled_files(self) -> int:
        return sum(n for s, n in self.files_by_status.items() if s not in SETTLED_FILE)

    @property
    def open_manifests(self) -> int:
        return sum(n for s, n in self.manifests_by_status.items() if s not in TERMINAL_MANIFEST)


def read_state(dynamodb: Any, table: str, counts_only: bool = False) -> PipelineState:
    """The table's files and manifests; ``counts_only``: only the counts by status (the pump loop's
    poll: it reads two attributes of each item, and ``file_items``/``manifest_items`` stay empty)."""
    state = PipelineState()
    store = TrackingTable(dynamodb, table)
    for plain in store.scan_statuses() if counts_only else store.scan_items():
        sk = plain.get("sk")
        if sk == keys.FILE_SK:
            status = str(plain.get("status", "?"))
            state.files_by_status[status] = state.files_by_status.get(status, 0) + 1
            if not counts_only:
                state.file_items.append(plain)
        elif sk == keys.MANIFEST_SK:
            status = str(plain.get("status", "?"))
            state.manifests_by_status[status] = state.manifests_by_status.get(status, 0) + 1
            if not counts_only:
                state.manifest_items.append(plain)
    return state


def lambda_sqs_event(messages: list[Any], queue_arn: str) -> dict[str, Any]:
    """SQS messages in the event shape Lambda's SQS mapping delivers."""
    now_ms = str(int(time.time() * 1000))
    return {
        "Records": [
            {
                "messageId": m.message_id,
                "receiptHandle": str(uuid.uuid4()),
                "body": m.body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": now_ms},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": os.environ.get("AWS_REGION", "us-east-1"),
            }
            for m in messages
        ]
    }


class _Context:
    """The bits of a Lambda context object the handlers (powertools) read."""

    def __init__(self, name: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def configure_handlers(outputs: dict[str, str], opts: RunOptions, table: Any = None) -> dict[str, str]:
    """Give the in-process handlers the environment Chalice gives them in a stage: the stack's
    names plus the run's batching options. Cached settings and clients are dropped."""
    from chalicelib import aws
    from chalicelib.settings import get_settings
    from ndjson_parquet.stack_env import environment_from_outputs

    # The same output -> variable mapping the deploy writes into a stage's config.json.
    env = {
        **environment_from_outputs(outputs),
        "SHARD_COUNT": str(opts.shards),
        "BATCH_MAX_FILES": str(opts.batch_max_files),
        "BATCH_MAX_WAIT_SECONDS": "900",
        # A local run seals by size and flushes the rest once drained (the clock is moved, see
        # _pump_until_settled): the age rule off keeps its manifests the same however slow the
        # machine. bench/freshness.py switches both back to the stack's 60 s.
        "SEAL_MAX_AGE_SECONDS": "0",
        "ALLOWED_SUFFIXES": ",".join(opts.suffixes),
        "POWERTOOLS_SERVICE_NAME": "ndjson-parquet",
        "POWERTOOLS_METRICS_NAMESPACE": "NdjsonParquet",
        "POWERTOOLS_TRACE_DISABLED": "true",
        # The handlers' metrics go to stdout as EMF in Lambda; locally they would bury the table.
        "POWERTOOLS_METRICS_DISABLED": "true",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        "POWERTOOLS_LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        # ClaimRun's engine rule (chalicelib/settings.py): --engine, and the stack's byte limit.
        "CONVERT_ENGINE": opts.engine,
    }
    limit = stack_setting(outputs, "LambdaMaxBytes")
    if limit is not None:
        env["LAMBDA_MAX_BYTES"] = limit
    if table is not None:  # the local dataset's table (ndjson_parquet/local/dataset.py)
        env.update(
            {
                "ICEBERG_CATALOG": table.catalog,
                "ICEBERG_NAMESPACE": table.namespace,
                "ICEBERG_TABLE": table.name,
                "ICEBERG_CATALOG_URI": table.uri or "",
            }
        )
    os.environ.update(env)
    get_settings.cache_clear()
    aws.clients.clear()
    return env


def spark_is_running() -> bool:
    """Has a SparkContext (a JVM) been started in this process? Without pyspark imported, no."""
    import sys

    if "pyspark" not in sys.modules:
        return False
    from glue.spark import session_running

    return session_running()


@contextmanager
def warm_spark(eager: bool = False) -> Iterator[Callable[[], Any]]:
    """The SparkSession of the run's Glue manifests, kept for every one of them. Started when the
    first Glue run asks for it (no JVM for a run whose manifests all go to the converter Lambda),
    after checking Java (``JavaMissingError``, the one line of ``make check-java``); ``eager``
    (``--engine glue``) starts it in the background at once, so the 8-10 s of JVM start overlap
    the uploads. A session that already existed (a caller's, e.g. a test's) is reused and left
    running: only the one started here is stopped."""
    holder: dict[str, Any] = {}
    lock = threading.Lock()

    def start() -> None:
        with lock:
            if holder:
                return
            problem = java_problem()
            if problem:
                holder["error"] = JavaMissingError(problem)
                return
            try:
                from glue.ndjson_to_parquet import spark_session
                from glue.spark import session_running

                holder["existing"] = session_running()
                holder["spark"] = spark_session()
            except BaseException as exc:  # surfaced to the Glue run, not swallowed
                holder["error"] = RuntimeError(f"SparkSession failed to start: {exc}")

    thread = threading.Thread(target=start, name="spark-start", daemon=True) if eager else None
    if thread is not None:
        thread.start()

    def get() -> Any:
        start()
        if "error" in holder:
            raise holder["error"]
        return holder["spark"]

    try:
        yield get
    finally:
        if thread is not None:
            thread.join()
        with lock:
            if "spark" in holder and not holder.get("existing"):
                holder["spark"].stop()


def glue_runner(
    get_spark: Callable[[], Any],
    default_arguments: dict[str, str],
    opts: RunOptions,
    role: Caller | None = None,
    table: Any = None,
):
    """A Glue run of the job script, in the warm session: the job's default arguments, then the
    run's (as Glue merges them), then the local overrides of --compression/--schema and of the
    table (``table``: the local dataset's SQL catalog and location, glue/table.py). With ``role``,
    the job's S3 calls (driver and Spark tasks) are signed with the Glue role's keys."""
    from glue.storage import S3Config

    s3 = None
    if role is not None:
        env = S3Config.from_env()
        s3 = S3Config(env.endpoint_url, env.region, role.access_key, role.secret_key, None)

    def run(arguments: dict[str, str]) -> None:
        from glue.ndjson_to_parquet import parse_args, run_job

        merged = job_arguments(default_arguments, arguments, opts, table)
        argv: list[str] = []
        for name in JOB_ARGUMENTS:
            if merged.get(name):
                argv += [name, str(merged[name])]
        run_job(get_spark(), parse_args(argv), s3)

    return run


# The job's arguments, as the Glue job takes them (``--NAME``) and the converter Lambda's
# environment variables of the same names (converter/handler.py).
JOB_ARGUMENTS = (
    "--MANIFEST_PATH",
    "--OUTPUT_PATH",
    "--QUARANTINE_PATH",
    "--COMPRESSION_TYPE",
    "--SCHEMA_PATH",
    "--TARGET_FILE_MB",
    "--TABLE_CATALOG",
    "--CATALOG_URI",
    "--TABLE_LOCATION",
    "--TABLE_NAMESPACE",
    "--TABLE_NAME",
    "--SCHEMA_MODE",
)


def job_arguments(
    default_arguments: dict[str, str], arguments: dict[str, str], opts: RunOptions, table: Any = None
) -> dict[str, str]:
    """The job's default arguments, then the run's (as Glue merges them), then the local
    overrides of --compression/--schema and of the table (the local dataset's SQL catalog and
    location, glue/table.py)."""
    merged = {**default_arguments, **arguments, "--COMPRESSION_TYPE": opts.compression}
    if opts.schema_path is not None:
        merged["--SCHEMA_PATH"] = str(opts.schema_path.resolve())
    if table is not None:
        merged.update(
            {
                "--TABLE_CATALOG": table.catalog,
                "--CATALOG_URI": table.uri,
                "--TABLE_LOCATION": table.location,
                "--TABLE_NAMESPACE": table.namespace,
                "--TABLE_NAME": table.name,
                "--SCHEMA_MODE": table.mode,
            }
        )
    return merged


def stack_setting(outputs: Any, name: str) -> str | None:
    """A stack parameter's value: the deployed stack's output of that name when it has one, else
    the template's default, else the value this runtime assumes (``CONVERTER_DEFAULTS``)."""
    from ndjson_parquet.infra_template import load_template

    if outputs.get(name):
        return str(outputs[name])
    declared = load_template()["Parameters"].get(name) or {}
    value = declared.get("Default", CONVERTER_DEFAULTS.get(name))
    return None if value is None else str(value)


def converter_config(
    function: Any,
    outputs: dict[str, str],
    default_arguments: dict[str, str],
    opts: RunOptions,
    role: Caller | None,
    table: Any = None,
) -> Any:
    """The converter Lambda as the stack configures it (``function``: moto's object for it, None
    when moto's CloudFormation did not create it: then the template's defaults), with the local
    overrides the Glue job gets too, the local endpoint, and the role's keys (Lambda puts its
    execution role's credentials in the environment; without enforcement, the administrator's)."""
    from ndjson_parquet.local.sandbox import FunctionConfig

    configured = dict(getattr(function, "environment_vars", None) or {})
    merged = job_arguments(default_arguments, {}, opts, table)
    env = {**configured, **{name.removeprefix("--"): str(v) for name, v in merged.items() if v}}
    env.pop("MANIFEST_PATH", None)  # the manifest comes in the event
    env.update(
        {
            "AWS_ENDPOINT_URL": os.environ.get("AWS_ENDPOINT_URL", ""),
            "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
            "AWS_DEFAULT_REGION": os.environ.get("AWS_REGION", "us-east-1"),
            "AWS_ACCESS_KEY_ID": role.access_key if role else os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            "AWS_SECRET_ACCESS_KEY": role.secret_key if role else os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        }
    )
    for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):  # the role's keys, alone
        env.pop(name, None)
    timeout = opts.converter_timeout_seconds or float(
        getattr(function, "timeout", None) or stack_setting(outputs, "ConverterTimeoutSeconds") or 300
    )
    memory = int(getattr(function, "memory_size", None) or stack_setting(outputs, "ConverterMemoryMB") or 3538)
    from ndjson_parquet.infra_template import function_name

    return FunctionConfig(
        name=function_name(STAGE, "converter"),
        handler="converter.handler:handler",
        timeout_seconds=timeout,
        memory_mb=memory,
        environment=env,
        concurrency=opts.converter_concurrency,
        # Lambda's /tmp, which the converter empties at every call: the sandbox's own folder.
        scratch_variable="CONVERTER_SCRATCH_DIR",
        # What the job imports on first use (the Iceberg catalog, pydantic models: 5-10 s on a busy
        # machine), in the init phase, which the prestarted sandbox spends while files upload.
        preload=CONVERTER_PRELOAD,
    )


@dataclass(frozen=True)
class SharedServices:
    """One moto server and one warm SparkSession reused by many runs (test suites, campaigns):
    each run starts from an empty moto account (``reset``) and redeploys the stack."""

    endpoint: LocalEndpoint
    get_spark: Callable[[], Any]

    def reset(self) -> None:
        """An empty account; with enforcement, a new administrator whose keys stay in the
        environment (the caller's checks after a run use them)."""
        prepare_account(self.endpoint.url, enforce_iam=self.endpoint.enforce_iam)


@contextmanager
def _restored_environment() -> Iterator[None]:
    """A run points the handlers' settings at its stack through os.environ (as Lambda does);
    afterwards the process gets its environment, settings and clients back, so an in-process
    run (tests, campaigns) leaves nothing behind for the next caller."""
    from chalicelib import aws
    from chalicelib.settings import get_settings

    saved = dict(os.environ)
    saved_factory = aws.clients.session_factory  # a run may swap in acting_session
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        aws.clients.session_factory = saved_factory
        aws.clients.clear()
        reset_default_session()


@contextmanager
def shared_services(port: int = 0, enforce_iam: bool = True) -> Iterator[SharedServices]:
    with moto_server(port=port, enforce_iam=enforce_iam) as endpoint, warm_spark() as get_spark:
        yield SharedServices(endpoint, get_spark)  # Spark starts with the first manifest sent to Glue


class LocalPipeline:
    """One local run; ``run()`` returns the report (never raises for data problems: those are
    listed in ``report.problems`` and make the exit code non-zero). ``faults`` (tests only): a
    ``ndjson_parquet.local.faults.FaultPlan`` installed on the handlers' clients for the run."""

    def __init__(self, opts: RunOptions, progress: Progress | None = None, faults: Any = None) -> None:
        self.opts = opts
        self.faults = faults
        self.progress = progress or (lambda _msg: None)
        self.report = RunReport(output=str(opts.output_dir), quarantine=str(opts.quarantine))
        # role -> the IAM user acting for it (tracker, batching, workflow, states, glue, events,
        # operator); empty when IAM is not enforced.
        self.callers: dict[str, Caller] = {}
        self._table: Any = None
        self.converter: Any = None  # the converter Lambda's SandboxPool (sandbox.py), once served
        self._closers: list[Callable[[], None]] = []

    def acting(self, role: str) -> AbstractContextManager[None]:
        """The context in which the handlers' clients sign as ``role`` (no-op when not enforced)."""
        from ndjson_parquet.local.callers import acting_as

        return acting_as(self.callers[role]) if self.callers else nullcontext()

    # ---------------------------------------------------------------- setup
    def _prepare_dataset(self) -> None:
        """Empty the output folders and name the table: the job commits to it during the run."""
        from ndjson_parquet.local.collect import prepare_output_dir
        from ndjson_parquet.local.dataset import LocalDataset

        prepare_output_dir(self.opts.output_dir)
        prepare_output_dir(self.opts.quarantine)
        LocalDataset(self.opts.output_dir, self.table, self.opts.quarantine).write_marker()

    @property
    def table(self) -> Any:
        """The deployed job's table on the local catalog (``_use_deployed_table``); before the
        deploy, the names the template will give it."""
        from ndjson_parquet.local.dataset import local_table_config

        return self._table or local_table_config(self.opts.output_dir, mode=self.opts.schema_mode)

    def _use_deployed_table(self, job_arguments: dict[str, str]) -> None:
        """Take the table's names and schema mode from the job the template deployed, so the local
        run commits where the stack's job would; only the catalog and the location are local."""
        from ndjson_parquet.local.dataset import LocalDataset, table_from_job_arguments

        self._table = table_from_job_arguments(self.opts.output_dir, job_arguments)
        LocalDataset(self.opts.output_dir, self._table, self.opts.quarantine).write_marker()

    def preflight(self) -> list[InputFile]:
        if self.opts.engine not in ENGINES:
            raise RuntimeSetupError(f"unknown engine {self.opts.engine!r}; use one of {', '.join(ENGINES)}")
        # Java only when a manifest must go to Glue; with auto, the first Glue run checks it.
        problem = java_problem() if self.opts.engine == "glue" else None
        if problem:
            raise RuntimeSetupError(problem)
        if self.opts.schema_path is not None and not self.opts.schema_path.is_file():
            raise RuntimeSetupError(f"schema file {self.opts.schema_path} does not exist")
        from glue.convert import COMPRESSIONS

        if self.opts.compression.lower() not in COMPRESSIONS:
            raise RuntimeSetupError(
                f"unknown compression {self.opts.compression!r}; use one of {', '.join(sorted(COMPRESSIONS))}"
            )
        from ndjson_parquet.local.collect import OutputDirError, check_output_dir
        from ndjson_parquet.local.inputs import InputError

        try:
            check_output_dir(self.opts.output_dir)
            check_output_dir(self.opts.quarantine)
        except OutputDirError as exc:
            raise RuntimeSetupError(str(exc)) from None
        try:
            return scan_input(self.opts.input_dir, "", self.opts.suffixes)
        except InputError as exc:
            raise RuntimeSetupError(str(exc)) from None

    def run(
        self, on_ready: Callable[[LocalEndpoint], None] | None = None, shared: SharedServices | None = None
    ) -> RunReport:
        files = self.preflight()
        self._prepare_dataset()
        if shared is not None:
            # Before the environment is saved: the new administrator's keys outlive the run.
            shared.reset()
        with _restored_environment():
            return self._run(files, on_ready, shared)

    def _run(
        self, files: list[InputFile], on_ready: Callable[[LocalEndpoint], None] | None, shared: SharedServices | None
    ) -> RunReport:
        started = time.perf_counter()
        try:
            if shared is not None:
                try:
                    self._run_in(shared.endpoint, files, shared.get_spark)
                    self.report.spark_started = spark_is_running()
                finally:
                    if self.faults is not None:
                        self.faults.uninstall()
                self.report.elapsed_seconds = time.perf_counter() - started
                if on_ready is not None:
                    on_ready(shared.endpoint)
                return self.report
            eager = self.opts.engine == "glue"  # every manifest goes to Glue: start the JVM during the uploads
            with (
                moto_server(port=self.opts.port, enforce_iam=self.opts.enforce_iam) as endpoint,
                warm_spark(eager) as get_spark,
            ):
                try:
                    self._run_in(endpoint, files, get_spark)
                    self.report.spark_started = spark_is_running()
                    self.report.elapsed_seconds = time.perf_counter() - started
                    if on_ready is not None:
                        on_ready(endpoint)
                finally:
                    self._close()
            return self.report
        finally:
            self._close()

    def _close(self) -> None:
        """End what the run started for itself (the converter's sandboxes and their workers)."""
        while self._closers:
            self._closers.pop()()

    def _run_in(self, endpoint: LocalEndpoint, files: list[InputFile], get_spark: Callable[[], Any]) -> None:
        from ndjson_parquet.infra_template import deploy_to_endpoint, function_name, load_template, stack_name
        from ndjson_parquet.local.stepfunctions import LocalTaskHost

        self.progress("deploying infra/pipeline.yaml into moto")
        # moto logs one warning per unsupported resource; the runtime reports them once below.
        moto_log = logging.getLogger("moto")
        level = moto_log.level
        moto_log.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                # The schema mode is the stack's SchemaMode parameter, as in AWS (the job reads it).
                params = {"Stage": STAGE, "SchemaMode": self.opts.schema_mode}
                if "ConvertEngine" in load_template()["Parameters"]:  # the stack's engine rule (infra)
                    params["ConvertEngine"] = self.opts.engine
                outputs = deploy_to_endpoint(boto3.client("cloudformation"), stack_name(STAGE), params)
        finally:
            moto_log.setLevel(level)
        self.report.unsupported_resources = list(outputs.not_created)
        if outputs.fixups:
            self.progress(
                "applied from the template where moto's CloudFormation does not: " + "; ".join(outputs.fixups)
            )
        if outputs.not_created:
            self.progress("not created by moto (not needed to run locally): " + ", ".join(outputs.not_created))
        job_arguments = boto3.client("glue").get_job(JobName=outputs["GlueJobName"])["Job"].get("DefaultArguments", {})
        self._use_deployed_table(job_arguments)
        configure_handlers(outputs, self.opts, self.table)
        self.outputs = outputs
        if endpoint.enforce_iam:
            self._create_callers()
        if self.faults is not None:
            from chalicelib import aws

            self.faults.install(aws.clients)

        import app as chalice_app

        host = LocalTaskHost(endpoint.url)
        function_arns = {}
        for name in ("claim_run", "finalize", "compensate"):
            handler = getattr(chalice_app, name)
            fname = function_name(STAGE, name)

            def task(event: Any, h: Any = handler, n: str = fname) -> Any:
                with self.acting("workflow"):  # the function's execution role
                    return h(event, _Context(n))

            if self.faults is not None:
                task = self.faults.wrap_task(name, task)
            function_arns[name] = host.serve_lambda(fname, task)
        from ndjson_parquet.infra_template import read_asl

        if "${ConverterFunctionArn}" in read_asl():  # the state machine sends manifests to the converter
            function_arns["converter"] = self._serve_converter(host, outputs, dict(job_arguments))
        self._deploy_state_machine(host, outputs, function_arns)
        get_glue_spark = self._glue_spark(get_spark)
        runner = glue_runner(get_glue_spark, dict(job_arguments), self.opts, self.callers.get("glue"), self.table)
        if self.faults is not None:
            runner = self.faults.wrap_glue(runner)
            host.start_execution = self.faults.wrap_start(host.start_execution)  # the rule's StartExecution
        host.serve_glue_job(outputs["GlueJobName"], runner)
        events = boto3.client("events")
        bus = outputs["EventBusName"]
        for rule in events.list_rules(EventBusName=bus).get("Rules", []):
            host.route_rule(bus, rule["Name"])

        self._upload(files, outputs["InputBucketName"], outputs.get("InputPrefix", ""))
        self._pump_until_settled(chalice_app, outputs)
        self._collect(files, outputs)

    def _serve_converter(self, host: Any, outputs: dict[str, str], job_arguments: dict[str, str]) -> str:
        """The converter Lambda, in its sandbox processes (``sandbox.py``), configured as the stack
        configures the function; its calls signed as the converter role under enforcement."""
        from moto.awslambda.utils import get_backend

        from ndjson_parquet.infra_template import function_name
        from ndjson_parquet.local.sandbox import SandboxPool

        name = function_name(STAGE, "converter")
        try:  # the function moto's CloudFormation created from the template, if it did
            function = get_backend(host.account_id, host.region).get_function(name, None)
        except Exception:  # moto raises its own UnknownFunctionException
            function = None
        role = self.callers.get("converter")
        if self.callers and role is None:
            raise RuntimeSetupError("IAM is enforced but the stack has no converter role to sign the converter's calls")
        config = converter_config(function, outputs, job_arguments, self.opts, role, self.table)
        self.converter = SandboxPool(config)
        self._closers.append(self.converter.close)
        invoke = self.converter.invoke
        if self.faults is not None:
            invoke = self.faults.wrap_task("converter", self.faults.wrap_converter(invoke))
        return host.serve_lambda(name, invoke)

    def _glue_spark(self, get_spark: Callable[[], Any]) -> Callable[[], Any]:
        """``get_spark`` for the Glue runs; a missing Java fails the run with its one line and is
        named in the report (the manifest went to Glue: Spark needs Java 17)."""

        def get() -> Any:
            try:
                return get_spark()
            except JavaMissingError as exc:
                problem = f"a manifest went to Glue: {exc}"
                if problem not in self.report.problems:
                    self.report.problems.append(problem)
                raise

        return get

    def _create_callers(self) -> None:
        """One IAM user per role with exactly its policy; the handlers' clients sign as the role
        acting in their context; the task host acts for the state machine and target roles."""
        from chalicelib import aws
        from ndjson_parquet.local.callers import acting_session
        from ndjson_parquet.local.iam import create_callers

        self.callers = create_callers(boto3.client("iam"), STAGE, self.opts.policy_overrides)
        aws.clients.session_factory = acting_session
        aws.clients.clear()

    def _role_arn(self, role: str) -> str:
        from ndjson_parquet.local.iam import role_name

        return boto3.client("iam").get_role(RoleName=role_name(STAGE, role))["Role"]["Arn"]

    def _deploy_state_machine(self, host: Any, outputs: dict[str, str], function_arns: dict[str, str]) -> None:
        """moto's CloudFormation keeps the state machine in its non-executing backend and ignores
        DefinitionSubstitutions; create the same ASL file, substituted as the template does,
        under the same name (so the rule's target ARN points at it) in the executing backend."""
        from ndjson_parquet.infra_template import render_definition
        from ndjson_parquet.local.stepfunctions import deploy_state_machine

        definition = render_definition(
            {
                "GlueJobName": outputs["GlueJobName"],
                "TableName": outputs["TableName"],
                "ClaimRunFunctionArn": function_arns["claim_run"],
                "FinalizeFunctionArn": function_arns["finalize"],
                "CompensateFunctionArn": function_arns["compensate"],
                **({"ConverterFunctionArn": function_arns["converter"]} if "converter" in function_arns else {}),
                "AlertsTopicArn": outputs["AlertsTopicArn"],
                "OutputPath": outputs["OutputPath"],
                "QuarantinePath": outputs["QuarantinePath"],
                "ManifestBucket": outputs["ManifestBucketName"],
            }
        )
        name = outputs["StateMachineArn"].rsplit(":", 1)[1]
        # The stack's execution role: under enforcement the interpreter's task calls carry its policy.
        role_arn = self._role_arn("states")
        arn = deploy_state_machine(boto3.client("stepfunctions"), name, definition, role_arn)
        if self.callers:
            host.act_for_roles({role_arn: self.callers["states"], self._role_arn("events"): self.callers["events"]})
        else:
            host.act_for_roles({})
        if arn != outputs["StateMachineArn"]:
            raise RuntimeError(f"state machine ARN {arn} differs from the stack's {outputs['StateMachineArn']}")
        self.state_machine_arn = arn

    # ---------------------------------------------------------------- steps
    def _upload(self, files: list[InputFile], bucket: str, prefix: str) -> None:
        s3 = boto3.client("s3")
        trackable = [f for f in files if f.trackable]
        ignored = [f for f in files if not f.trackable]
        if ignored:
            self.progress(
                f"ignoring {len(ignored)} file(s) without a tracked suffix ({', '.join(self.opts.suffixes)}): "
                + ", ".join(f.key for f in ignored[:5])
                + (" ..." if len(ignored) > 5 else "")
            )
        self.uploaded: dict[str, InputFile] = {}
        for n, f in enumerate(trackable, 1):
            key = f"{prefix.strip('/')}/{f.key}" if prefix.strip("/") else f.key
            s3.upload_file(str(f.path), bucket, key)
            self.uploaded[f"s3://{bucket}/{key}"] = f
            self.progress(f"upload {n}/{len(trackable)}")

    def serve_until_interrupted(self) -> None:
        """``run --keep-running``: keep playing Lambda's event sources and the schedule, so what
        arrives after the run (an upload, a poison message, a replay) is processed as the deployed
        pipeline would; until Ctrl-C."""
        import app as chalice_app

        stop = threading.Event()

        def on_interrupt(signum: int, frame: Any) -> None:
            # The first Ctrl-C lets the step in flight (a handler batch, a Glue run) finish, so the
            # JVM and moto's threads shut down from a quiet state; a KeyboardInterrupt raised in
            # the middle of a py4j call or a request can leave them blocking the exit.
            if stop.is_set():
                raise KeyboardInterrupt  # a second Ctrl-C stops at once
            stop.set()

        previous = signal.signal(signal.SIGINT, on_interrupt)
        try:
            with contextlib.suppress(KeyboardInterrupt):
                self._pump_until_settled(chalice_app, self.outputs, serving=True, stop=stop)
        finally:
            signal.signal(signal.SIGINT, previous)

    def _pump_until_settled(
        self, chalice_app: Any, outputs: dict[str, str], serving: bool = False, stop: threading.Event | None = None
    ) -> None:
        from chalicelib.batching import flush_stale
        from chalicelib.workflow.recover import recover_from_settings
        from ndjson_parquet.local.callers import acting_session
        from ndjson_parquet.local.pumps import StreamPump, pump_sqs

        # Lambda's event-source mappings poll with the function's role: the pumps' clients sign
        # as the role acting around them (the runtime's own reads below use the administrator's).
        polling = acting_session() if self.callers else new_session()
        sqs = polling.client("sqs")
        requeue_sqs = boto3.client("sqs")  # the runtime's stand-in for a visibility timeout (pumps.py)
        dynamodb = boto3.client("dynamodb")
        queue_url = outputs["IngestQueueUrl"]
        queue_arn = outputs["IngestQueueArn"]
        stream_arn = outputs["TableStreamArn"]
        track = chalice_app.track_files
        count = chalice_app.count_arrivals

        def handle_sqs(messages: list[Any]) -> None:
            track(lambda_sqs_event(messages, queue_arn), _Context(f"ndjson-parquet-{STAGE}-track_files"))

        def handle_stream(records: list[dict[str, Any]]) -> None:
            count({"Records": records}, _Context(f"ndjson-parquet-{STAGE}-count_arrivals"))

        if self.faults is not None:  # duplicate and out-of-order deliveries
            handle_sqs = self.faults.wrap_delivery(handle_sqs)
            handle_stream = self.faults.wrap_delivery(handle_stream)
        # Kept across calls (serving after the run): a new pump would start again at TRIM_HORIZON.
        stream = getattr(self, "_stream_pump", None) or StreamPump(
            polling.client("dynamodbstreams"), stream_arn, handle_stream
        )
        self._stream_pump = stream
        expected = len(self.uploaded)
        last_change = last_progress = time.monotonic()  # last_change also paces flush/recover
        last_line = ""
        recovers = 0
        failures: dict[str, int] = {}

        def attempt(what: str, role: str, step: Callable[[], Any]) -> Any:
            """Run a handler step as Lambda would: an exception means the batch (or the scheduled
            run) is retried later, not that the run is over; ``failures`` bounds it."""
            from ndjson_parquet.local.faults import STEP_FAILURES

            try:
                with self.acting(role):
                    out = step()
            except STEP_FAILURES as exc:  # an error, or an injected abrupt exit of the invocation
                failures[what] = failures.get(what, 0) + 1
                self.last_failure = f"{what} failed {failures[what]} time(s) in a row: {type(exc).__name__}: {exc}"
                logging.getLogger(__name__).warning("%s (retried)", self.last_failure)
                return None
            failures[what] = 0
            return out

        stop = stop or threading.Event()
        while not stop.is_set():
            moved = (
                attempt(
                    "track_files",
                    "tracker",
                    lambda: pump_sqs(sqs, queue_url, handle_sqs, batch_size=100, requeue_sqs=requeue_sqs),
                )
                or 0
            ) + (attempt("count_arrivals", "batching", stream.pump) or 0)
            if max(failures.values(), default=0) > self.opts.max_handler_failures:
                self.report.problems.append(f"gave up: {self.last_failure}")
                return
            state = read_state(dynamodb, outputs["TableName"], counts_only=True)
            line = self._progress_line(state, expected)
            if line != last_line:
                self.progress(line)
                last_line = line
                last_change = last_progress = time.monotonic()
            if moved:
                last_change = last_progress = time.monotonic()
                continue
            if state.files >= expected and state.unsettled_files == 0 and state.open_manifests == 0:
                if not serving:
                    return
                stop.wait(0.5)  # serving: wait for the next upload or replay (or Ctrl-C)
                last_progress = time.monotonic()
                continue
            idle = time.monotonic() - last_change
            pending = state.files_by_status.get(keys.PENDING, 0)
            if pending and state.open_manifests == 0 and state.files >= expected:
                # Input drained, nothing sealing or running: seal the remainder now, as the
                # scheduled flush would after BATCH_MAX_WAIT_SECONDS.
                later = datetime.now(UTC) + timedelta(seconds=int(os.environ["BATCH_MAX_WAIT_SECONDS"]) + 1)
                attempt("flush_stale", "batching", lambda t=later: flush_stale(now=t))
                last_change = time.monotonic()
                continue
            if idle > self.opts.recover_idle_seconds and recovers < self.opts.max_recovers:
                # Something is stuck (a seal without an event, a dead execution): what the
                # scheduled recover does, with its threshold already passed.
                # Each run's clock is an hour past the previous one's: recover stamps what it
                # finishes (a resumed seal's sealed_at) with its clock, and the next run must see
                # those stamps as old, as the real schedule would an hour later.
                attempt(
                    "recover", "workflow", lambda n=recovers: recover_from_settings(now=time.time() + 3600 * (n + 1))
                )
                recovers += 1
                last_change = time.monotonic()
                continue
            if not serving and time.monotonic() - last_progress > self.opts.idle_timeout_seconds:
                self.report.problems.append(
                    f"gave up after {self.opts.idle_timeout_seconds:.0f} s without progress: {line}"
                )
                return
            time.sleep(0.2)

    def _progress_line(self, state: PipelineState, expected: int) -> str:
        f = state.files_by_status
        m = state.manifests_by_status
        return (
            f"files tracked {state.files}/{expected} · pending {f.get(keys.PENDING, 0)} · "
            f"claimed {f.get(keys.CLAIMED, 0)} · converted {f.get(keys.CONVERTED, 0)} · "
            f"manifests {sum(m.values())} (succeeded {m.get(keys.MANIFEST_SUCCEEDED, 0)}, "
            f"failed {m.get(keys.MANIFEST_FAILED, 0)})"
        )

    # ---------------------------------------------------------------- results
    def _collect(self, files: list[InputFile], outputs: dict[str, str]) -> None:
        from ndjson_parquet.local.collect import collect_results

        collect_results(self, outputs)
