"""The static call map: every AWS call each role makes, with the resource it touches.

One entry per (call site, operation, resource). To add a call, add one line to the path (group
of calls) that makes it:

    code("chalicelib/workflow/resplit.py", "s3", "PutObject", "manifests_object", "write a narrower manifest"),

``code`` is a boto3 call in this repository (the file must contain ``.<method>(``, and
tests/unit/test_iam_callmap.py fails on a boto3 call in app.py, chalicelib/, glue/ or the
operator commands that no entry names). ``aws`` is what AWS does with the role on its behalf
(event source mappings, log delivery, tracing, VPC interfaces). Operations are botocore names;
the IAM action is derived (``actions.iam_action``) unless ``action`` says otherwise. Resource
keys are in ``resources.RESOURCES``. Implicit KMS actions (SSE-KMS buckets, queues, topic) are
added by ``expand`` from ``KMS_ENCRYPTED`` and ``IMPLICIT_KMS``, so they need no entry here.
``lib`` is a call our code makes through a library (pyiceberg's Glue catalog and its pyarrow
FileIO, called from glue/table.py): ``via`` names the library module; where that module calls boto3
itself (``scan.LIBRARY_CLIENTS``), the test checks the call is still there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from ndjson_parquet.iam.actions import iam_action


@dataclass(frozen=True)
class Call:
    service: str  # boto3 client name
    operation: str  # botocore operation name
    resource: str  # key of resources.RESOURCES
    why: str
    site: str | None = None  # repository file that makes the call; None: AWS acts on the role's behalf
    action: str | None = None  # IAM action when it is not the operation's own (e.g. CopyObject's source)
    context: Mapping[str, str] = field(default_factory=dict)  # condition keys the request carries
    implicit_kms: bool = True  # False where the operation reads no object data (HeadObject)
    path: str = ""  # filled by ``calls_of``: the path the call belongs to
    via: str | None = None  # library module that makes the call for ``site`` (not in the site's own text)

    @property
    def iam_action(self) -> str:
        return self.action or iam_action(self.service, self.operation)

    @property
    def where(self) -> str:
        return self.site or "AWS on the role's behalf"


def code(site: str, service: str, operation: str, resource: str, why: str, **kw: object) -> Call:
    return Call(service, operation, resource, why, site=site, **kw)  # type: ignore[arg-type]


def aws(service: str, operation: str, resource: str, why: str, **kw: object) -> Call:
    return Call(service, operation, resource, why, **kw)  # type: ignore[arg-type]


def lib(site: str, via: str, service: str, operation: str, resource: str, why: str, **kw: object) -> Call:
    return Call(service, operation, resource, why, site=site, via=via, **kw)  # type: ignore[arg-type]


TABLE = "chalicelib/tracking_table.py"  # every read and write of the tracking table
BATCHING = "chalicelib/batching.py"
PUBLISHER = "chalicelib/event_publisher.py"
GLUE_IO = "glue/storage.py"
S3_DELETE = "chalicelib/s3_delete.py"  # DeleteObjects for paths.py (compensate) and glue/storage.py
COMMITS = "chalicelib/table_commits.py"  # Compensate's read of the table's commits (no pyiceberg)
TABLE_PY = "glue/table.py"  # the Iceberg table: pyiceberg's GlueCatalog and FileIO, on the job's driver
GLUE_CATALOG = "pyiceberg.catalog.glue"  # boto3 Glue calls (GetTable, UpdateTable)
FILE_IO = "pyiceberg.io.pyarrow"  # S3 requests by pyarrow's S3FileSystem (C++): no Python call to check
TABLE_CATALOG = ("glue_catalog", "glue_database", "glue_table")  # Glue authorizes table calls on all three

PATHS: dict[str, tuple[Call, ...]] = {
    # ---------------------------------------------------------------- every Lambda function
    "lambda_runtime": (
        aws("logs", "CreateLogGroup", "lambda_log_group", "Lambda creates the function's log group"),
        aws("logs", "CreateLogStream", "lambda_log_stream", "Lambda writes the function's logs (and EMF metrics)"),
        aws("logs", "PutLogEvents", "lambda_log_stream", "Lambda writes the function's logs (and EMF metrics)"),
        aws("xray", "PutTraceSegments", "*", "active tracing (xray: true in .chalice/config.json)"),
        aws("xray", "PutTelemetryRecords", "*", "active tracing (xray: true in .chalice/config.json)"),
        # Only with subnet_ids/security_group_ids (functions in private subnets).
        aws("ec2", "DescribeNetworkInterfaces", "*", "VPC: Lambda manages the function's interfaces"),
        aws("ec2", "CreateNetworkInterface", "eni", "VPC: Lambda creates the function's interface"),
        aws("ec2", "CreateNetworkInterface", "subnet", "VPC: ... in the stage's subnet"),
        aws("ec2", "CreateNetworkInterface", "security_group", "VPC: ... with the stage's security group"),
        aws("ec2", "DeleteNetworkInterface", "eni", "VPC: Lambda removes idle interfaces"),
        aws("ec2", "AssignPrivateIpAddresses", "eni", "VPC: Lambda addresses the interface"),
        aws("ec2", "UnassignPrivateIpAddresses", "eni", "VPC: Lambda releases the address"),
    ),
    # ---------------------------------------------------------------- tracker (track_files)
    "ingest_event_source": (
        aws("sqs", "ReceiveMessage", "ingest_queue", "SQS event source mapping polls the ingest queue"),
        aws("sqs", "DeleteMessage", "ingest_queue", "SQS event source mapping deletes a processed batch"),
        aws("sqs", "GetQueueAttributes", "ingest_queue", "SQS event source mapping reads the queue's settings"),
    ),
    "track": (
        code(TABLE, "dynamodb", "PutItem", "table", "put_file: idempotent conditional put of a FILE item"),
        code("chalicelib/tracker.py", "sqs", "SendMessage", "ingest_dlq", "route a permanent failure to the DLQ"),
    ),
    # ---------------------------------------------------------------- batching (count_arrivals, flush_stale)
    "stream_event_source": (
        aws("dynamodbstreams", "DescribeStream", "stream", "stream event source mapping"),
        aws("dynamodbstreams", "GetShardIterator", "stream", "stream event source mapping"),
        aws("dynamodbstreams", "GetRecords", "stream", "stream event source mapping"),
        aws("dynamodbstreams", "ListStreams", "*", "stream event source mapping (no resource-level permission)"),
        aws("sqs", "SendMessage", "stream_dlq", "the mapping's on-failure destination (ndjson_parquet/postdeploy.py)"),
    ),
    "count_and_seal": (
        code(TABLE, "dynamodb", "UpdateItem", "table", "count_files/open_date/claim_file/mark_sealed/advance_seal"),
        code(TABLE, "dynamodb", "BatchGetItem", "table", "read_totals of a date's shard counters"),
        code(TABLE, "dynamodb", "PutItem", "table", "begin_seal: the MANIFEST item before any claim"),
        code(TABLE, "dynamodb", "DeleteItem", "table", "abandon_seal: drop an empty seal"),
        code(TABLE, "dynamodb", "Query", "index", "pending_pages/open_dates on the status index"),
        code(TABLE, "dynamodb", "GetItem", "table", "get_manifest"),
        code(TABLE, "dynamodb", "GetItem", "table", "the seal breaker's state (SealGate)"),
        code(TABLE, "dynamodb", "PutItem", "table", "the seal breaker's transition"),
    ),
    # finish_seal / emit_manifest_ready / resume_seal: batching seals, recover finishes a seal.
    "finish_seal": (
        code(TABLE, "dynamodb", "GetItem", "table", "resume_seal reads the MANIFEST item"),
        code(TABLE, "dynamodb", "Query", "index", "resume_seal: files claimed by the manifest"),
        code(TABLE, "dynamodb", "UpdateItem", "table", "mark_sealed/advance_seal/mark_emitted"),
        code(TABLE, "dynamodb", "DeleteItem", "table", "abandon_seal: an empty seal is dropped"),
        code(BATCHING, "s3", "PutObject", "manifests_object", "write the manifest JSON"),
        code(PUBLISHER, "events", "PutEvents", "bus", "emit ManifestReady"),
    ),
    # ------------------------------------------------ workflow (claim_run, finalize, compensate, recover)
    "claim_run": (
        code(TABLE, "dynamodb", "UpdateItem", "table", "start_run: sealed -> running"),
        code(TABLE, "dynamodb", "GetItem", "table", "get_manifest"),
        code("chalicelib/workflow/paths.py", "s3", "GetObject", "manifests_object", "the engine: the manifest's bytes"),
    ),
    "finalize": (
        code("chalicelib/workflow/paths.py", "s3", "GetObject", "manifests_object", "read the manifest"),
        code("chalicelib/workflow/paths.py", "s3", "GetObject", "output_object", "read the run summary"),
        code(TABLE, "dynamodb", "Query", "index", "files claimed by the manifest"),
        code(TABLE, "dynamodb", "UpdateItem", "table", "mark_finalizing/end_run"),
        code(TABLE, "dynamodb", "TransactWriteItems", "table", "move files", action="dynamodb:UpdateItem"),
        code(TABLE, "dynamodb", "TransactWriteItems", "table", "owner check", action="dynamodb:ConditionCheckItem"),
        code(TABLE, "dynamodb", "GetItem", "table", "record_success on the seal breaker"),
        code(TABLE, "dynamodb", "PutItem", "table", "record_success on the seal breaker"),
        code("chalicelib/workflow/alerts.py", "sns", "Publish", "topic", "alert: files set aside by the job"),
    ),
    "compensate": (
        code(TABLE, "dynamodb", "GetItem", "table", "get_manifest"),
        code(TABLE, "dynamodb", "Query", "index", "files claimed by the manifest"),
        code(TABLE, "dynamodb", "UpdateItem", "table", "end_run: manifest failed (or held)"),
        code(TABLE, "dynamodb", "TransactWriteItems", "table", "files back (or held)", action="dynamodb:UpdateItem"),
        code(TABLE, "dynamodb", "TransactWriteItems", "table", "owner check", action="dynamodb:ConditionCheckItem"),
        code("chalicelib/workflow/paths.py", "s3", "ListObjectsV2", "output_bucket", "list the run's partial output"),
        code("chalicelib/workflow/paths.py", "s3", "ListObjectsV2", "quarantine_bucket", "list the run's quarantine"),
        code(S3_DELETE, "s3", "DeleteObjects", "output_object", "delete_tree: the partial output"),
        code(S3_DELETE, "s3", "DeleteObjects", "quarantine_object", "delete_tree: the run's quarantine"),
        code(TABLE, "dynamodb", "GetItem", "table", "record_failure on the seal breaker"),
        code(TABLE, "dynamodb", "PutItem", "table", "record_failure on the seal breaker"),
        code("chalicelib/workflow/alerts.py", "sns", "Publish", "topic", "alert: breaker opened / manifest held"),
        # Did the failed run commit to the table? Then it is rolled forward (chalicelib/table_commits.py).
        *(code(COMMITS, "glue", "GetTable", r, "the table's current metadata pointer") for r in TABLE_CATALOG),
        code(COMMITS, "s3", "GetObject", "table_metadata_object", "the snapshots of the current metadata"),
    ),
    "recover": (
        code(TABLE, "dynamodb", "Query", "index", "iter_manifests by status"),
        code(TABLE, "dynamodb", "Scan", "index", "scan_index_pages: files claimed by no manifest"),
        code(TABLE, "dynamodb", "GetItem", "table", "does the orphan's MANIFEST exist"),
        code(TABLE, "dynamodb", "TransactWriteItems", "table", "release orphans", action="dynamodb:UpdateItem"),
        code("chalicelib/workflow/recover.py", "stepfunctions", "DescribeExecution", "execution", "is the run dead"),
    ),
    # ---------------------------------------------------------------- Step Functions role (infra/statemachine)
    "states_tasks": (
        aws("lambda", "Invoke", "claim_run_function", "ASL task arn:aws:states:::lambda:invoke (ClaimRun)"),
        aws("lambda", "Invoke", "finalize_function", "ASL task lambda:invoke (Finalize)"),
        aws("lambda", "Invoke", "compensate_function", "ASL task lambda:invoke (Compensate)"),
        aws("glue", "StartJobRun", "glue_job", "ASL task glue:startJobRun.sync (ConvertManifest)"),
        aws("glue", "GetJobRun", "glue_job", "startJobRun.sync polls the run"),
        aws("glue", "GetJobRuns", "glue_job", "startJobRun.sync polls the run"),
        aws("glue", "BatchStopJobRun", "glue_job", "startJobRun.sync stops the run when the execution stops"),
        aws("lambda", "Invoke", "converter_function", "ASL task lambda:invoke (ConvertWithLambda)"),
        aws("sns", "Publish", "topic", "ASL task sns:publish (Alert, AlertUncompensated)"),
    ),
    "states_service": (
        *(
            aws(
                "logs",
                op,
                "*",
                "execution logging (LoggingConfiguration): log delivery has no resource-level permission",
            )
            for op in (
                "CreateLogDelivery",
                "GetLogDelivery",
                "UpdateLogDelivery",
                "DeleteLogDelivery",
                "ListLogDeliveries",
                "PutResourcePolicy",
                "DescribeResourcePolicies",
                "DescribeLogGroups",
            )
        ),
        *(
            aws("xray", op, "*", "TracingConfiguration enabled")
            for op in ("PutTraceSegments", "PutTelemetryRecords", "GetSamplingRules", "GetSamplingTargets")
        ),
    ),
    # ---------------------------------------------------------------- Glue job role
    "glue_job": (
        code(GLUE_IO, "s3", "GetObject", "manifests_object", "read the manifest"),
        code(GLUE_IO, "s3", "GetObject", "input_object", "read an input file (no version id)"),
        code(
            GLUE_IO, "s3", "GetObject", "input_object", "read exactly the tracked version", action="s3:GetObjectVersion"
        ),
        code(GLUE_IO, "s3", "HeadObject", "input_object", "size of a tracked file", implicit_kms=False),
        code(
            GLUE_IO,
            "s3",
            "HeadObject",
            "input_object",
            "size of a tracked version",
            action="s3:GetObjectVersion",
            implicit_kms=False,
        ),
        code(GLUE_IO, "s3", "HeadObject", "output_object", "size of a written part", implicit_kms=False),
        code(GLUE_IO, "s3", "GetObject", "output_object", "read a staged part"),
        code(GLUE_IO, "s3", "PutObject", "output_object", "write parts and the run summary"),
        code(GLUE_IO, "s3", "PutObject", "quarantine_object", "write quarantine records"),
        code(GLUE_IO, "s3", "ListObjectsV2", "output_bucket", "list staged/final parts"),
        code(GLUE_IO, "s3", "ListObjectsV2", "quarantine_bucket", "list staged/final quarantine"),
        code(GLUE_IO, "s3", "CopyObject", "output_object", "staged part -> final folder"),
        code(GLUE_IO, "s3", "CopyObject", "output_object", "copy source", action="s3:GetObject"),
        code(GLUE_IO, "s3", "CopyObject", "quarantine_object", "staged quarantine -> final folder"),
        code(GLUE_IO, "s3", "CopyObject", "quarantine_object", "copy source", action="s3:GetObject"),
        code(GLUE_IO, "s3", "DeleteObject", "output_object", "delete a staged file"),
        code(S3_DELETE, "s3", "DeleteObjects", "output_object", "storage: clear staging / an earlier run's parts"),
        code(S3_DELETE, "s3", "DeleteObjects", "quarantine_object", "storage: clear staging / earlier quarantine"),
    ),
    # The Iceberg table (--TABLE_NAME given): Spark tasks write data files into the table's location, the
    # driver commits them (glue/table.py) in one transaction per manifest.
    "glue_table": (
        code(GLUE_IO, "s3", "PutObject", "table_data_object", "Spark tasks write the table's data files"),
        code(GLUE_IO, "s3", "GetObject", "table_data_object", "conform reads a part written with another schema"),
        code(GLUE_IO, "s3", "HeadObject", "table_data_object", "size of a data file", implicit_kms=False),
        code(GLUE_IO, "s3", "DeleteObject", "table_data_object", "conform replaces an .arrow part by its .parquet"),
        code(S3_DELETE, "s3", "DeleteObjects", "table_data_object", "a run failing before its commit: its own files"),
        code(GLUE_IO, "s3", "ListObjectsV2", "output_bucket", "list the attempt's uncommitted files"),
        *(
            lib(TABLE_PY, GLUE_CATALOG, "glue", "GetTable", r, "load_table; the version before each commit")
            for r in TABLE_CATALOG
        ),
        *(code(TABLE_PY, "glue", "CreateTable", r, "the first commit creates the table") for r in TABLE_CATALOG),
        *(
            lib(TABLE_PY, GLUE_CATALOG, "glue", "UpdateTable", r, "each commit (optimistic on VersionId)")
            for r in TABLE_CATALOG
        ),
        lib(TABLE_PY, FILE_IO, "s3", "GetObject", "table_metadata_object", "read metadata, manifest lists, manifests"),
        lib(TABLE_PY, FILE_IO, "s3", "PutObject", "table_metadata_object", "write a commit's metadata and manifests"),
        lib(TABLE_PY, FILE_IO, "s3", "GetObject", "table_data_object", "parquet_file_to_data_file reads footers"),
        lib(TABLE_PY, FILE_IO, "s3", "HeadObject", "table_metadata_object", "exists check", implicit_kms=False),
        lib(
            TABLE_PY, FILE_IO, "s3", "ListObjectsV2", "output_bucket", "exists check of a missing key lists its prefix"
        ),
    ),
    "glue_service": (
        aws("s3", "GetObject", "scripts_object", "Glue reads the job script and --extra-py-files"),
        aws("s3", "ListObjectsV2", "scripts_bucket", "Glue lists --TempDir"),
        aws("s3", "PutObject", "scripts_tmp_object", "Glue writes --TempDir"),
        aws("s3", "GetObject", "scripts_tmp_object", "Glue reads --TempDir"),
        aws("s3", "DeleteObject", "scripts_tmp_object", "Glue cleans --TempDir"),
        aws("logs", "CreateLogGroup", "glue_log_group", "continuous logging"),
        aws("logs", "CreateLogStream", "glue_log_stream", "continuous logging"),
        aws("logs", "PutLogEvents", "glue_log_stream", "continuous logging"),
        aws("logs", "AssociateKmsKey", "glue_log_group", "security configuration: CloudWatch SSE-KMS"),
        aws("kms", "Encrypt", "data_key", "security configuration: CloudWatch logs encryption"),
        aws("kms", "DescribeKey", "data_key", "security configuration: the job checks the key"),
        aws("glue", "GetSecurityConfiguration", "glue_catalog", "the job's security configuration"),
        aws(
            "cloudwatch",
            "PutMetricData",
            "*",
            "--enable-metrics (no resource-level permission)",
            context={"cloudwatch:namespace": "Glue"},
        ),
        # Only when the stack is deployed with VpcId (Glue network connection).
        aws("glue", "GetConnection", "glue_connection", "VPC: the job's network connection"),
        *(
            aws("ec2", op, "*", "VPC: Glue inspects the connection's network (no resource-level permission)")
            for op in (
                "DescribeVpcEndpoints",
                "DescribeRouteTables",
                "DescribeNetworkInterfaces",
                "DescribeSecurityGroups",
                "DescribeSubnets",
                "DescribeVpcAttribute",
            )
        ),
        aws("ec2", "CreateNetworkInterface", "eni", "VPC: Glue creates the workers' interfaces"),
        aws("ec2", "CreateNetworkInterface", "subnet", "VPC: ... in the connection's subnet"),
        aws("ec2", "CreateNetworkInterface", "security_group", "VPC: ... with its security groups"),
        aws("ec2", "DeleteNetworkInterface", "eni", "VPC: Glue removes them after the run"),
        aws(
            "ec2",
            "CreateTags",
            "eni",
            "VPC: Glue tags its interfaces",
            context={"aws:TagKeys": "aws-glue-service-resource"},
        ),
        aws(
            "ec2",
            "DeleteTags",
            "eni",
            "VPC: Glue untags its interfaces",
            context={"aws:TagKeys": "aws-glue-service-resource"},
        ),
    ),
    # ---------------------------------------------------------------- converter function (ConverterRole)
    # converter/handler.py runs the Glue job's code (glue/job.py run_job with a process pool): its data calls
    # are the paths glue_job and glue_table; these are what Lambda does with the role for the function.
    "converter_runtime": (
        aws("logs", "CreateLogStream", "converter_log_stream", "Lambda writes the function's logs"),
        aws("logs", "PutLogEvents", "converter_log_stream", "Lambda writes the function's logs"),
        aws("kms", "Decrypt", "data_key", "Lambda decrypts the function's environment (KmsKeyArn)"),
        aws("xray", "PutTraceSegments", "*", "active tracing (TracingConfig Mode Active)"),
        aws("xray", "PutTelemetryRecords", "*", "active tracing (TracingConfig Mode Active)"),
        # Only with VpcId (the function in the private subnets).
        aws("ec2", "DescribeNetworkInterfaces", "*", "VPC: Lambda manages the function's interfaces"),
        aws("ec2", "CreateNetworkInterface", "eni", "VPC: Lambda creates the function's interface"),
        aws("ec2", "CreateNetworkInterface", "subnet", "VPC: ... in the stage's subnet"),
        aws("ec2", "CreateNetworkInterface", "security_group", "VPC: ... with the stage's security group"),
        aws("ec2", "DeleteNetworkInterface", "eni", "VPC: Lambda removes idle interfaces"),
        aws("ec2", "AssignPrivateIpAddresses", "eni", "VPC: Lambda addresses the interface"),
        aws("ec2", "UnassignPrivateIpAddresses", "eni", "VPC: Lambda releases the address"),
    ),
    # ---------------------------------------------------------------- Glue table optimizers (TableOptimizerRole)
    # Managed compaction, snapshot retention and orphan file deletion (TableMaintenance); all on the table's
    # prefix only, never on --OUTPUT_PATH or the quarantine.
    "table_optimizers": (
        *(
            aws("glue", op, r, "optimizers read the table and commit rewrites/expiry")
            for op in ("GetTable", "UpdateTable")
            for r in TABLE_CATALOG
        ),
        *(
            aws("s3", op, r, why)
            for r in ("table_data_object", "table_metadata_object")
            for op, why in (
                ("GetObject", "read data files and metadata"),
                ("PutObject", "compaction writes new files and metadata"),
                ("DeleteObject", "retention and orphan file deletion remove unreferenced files"),
            )
        ),
        aws("s3", "ListObjectsV2", "output_bucket", "orphan file deletion lists the table's prefix"),
        *(
            aws("logs", op, f"{kind}_{res}", "the optimizer's log group")
            for kind in ("compaction", "retention", "orphan")
            for op, res in (
                ("CreateLogGroup", "log_group"),
                ("CreateLogStream", "log_stream"),
                ("PutLogEvents", "log_stream"),
            )
        ),
    ),
    # ---------------------------------------------------------------- EventBridge target role
    "events_target": (aws("stepfunctions", "StartExecution", "state_machine", "ManifestReadyRule's target"),),
    # ---------------------------------------------------------------- operator CLI (ndjson_parquet/commands)
    "operator_stack": (
        code("ndjson_parquet/stack_env.py", "cloudformation", "DescribeStacks", "stack", "find the stack's outputs"),
    ),
    "operator_status": (
        code(TABLE, "dynamodb", "Scan", "index", "status: counts by status"),
        code(TABLE, "dynamodb", "GetItem", "table", "status: the seal breaker"),
        code("ndjson_parquet/commands/status.py", "sqs", "GetQueueAttributes", "ingest_dlq", "status: DLQ depth"),
        code("ndjson_parquet/commands/status.py", "sqs", "GetQueueAttributes", "events_dlq", "status: DLQ depth"),
    ),
    "operator_replay": (
        code("ndjson_parquet/commands/replay.py", "events", "DescribeEventBus", "bus", "replay: the bus's ARN"),
        code("ndjson_parquet/commands/replay.py", "events", "ListArchives", "*", "replay: the bus's archive"),
        code("ndjson_parquet/commands/replay.py", "events", "DescribeArchive", "archive", "replay: the archive"),
        code("ndjson_parquet/commands/replay.py", "events", "StartReplay", "archive", "replay a window"),
        code("ndjson_parquet/commands/replay.py", "events", "StartReplay", "replay", "replay a window"),
        code("ndjson_parquet/commands/replay.py", "events", "DescribeReplay", "replay", "wait for the replay"),
        code("ndjson_parquet/commands/replay.py", "stepfunctions", "ListExecutions", "state_machine", "count runs"),
        code("ndjson_parquet/commands/replay.py", "stepfunctions", "StartExecution", "state_machine", "one manifest"),
        code("ndjson_parquet/commands/replay.py", "stepfunctions", "DescribeExecution", "execution", "wait for it"),
    ),
    "operator_redrive": (
        code("ndjson_parquet/commands/redrive.py", "sqs", "ListDeadLetterSourceQueues", "ingest_dlq", "the source"),
        code("ndjson_parquet/commands/redrive.py", "sqs", "ReceiveMessage", "ingest_dlq", "read dead letters"),
        code("ndjson_parquet/commands/redrive.py", "sqs", "ReceiveMessage", "events_dlq", "read dead letters"),
        code("ndjson_parquet/commands/redrive.py", "sqs", "SendMessage", "ingest_queue", "move back to ingest"),
        code("ndjson_parquet/commands/redrive.py", "sqs", "DeleteMessage", "ingest_dlq", "after the send"),
        code("ndjson_parquet/commands/redrive.py", "sqs", "DeleteMessage", "events_dlq", "after the put"),
        code("ndjson_parquet/commands/redrive.py", "events", "PutEvents", "bus", "re-emit dead-lettered events"),
    ),
    "operator_release": (
        code(TABLE, "dynamodb", "GetItem", "table", "release: get_manifest"),
        code(TABLE, "dynamodb", "Query", "index", "release: held manifests, a manifest's held files"),
        code(TABLE, "dynamodb", "Scan", "index", "release --all: held files of any manifest"),
        code(TABLE, "dynamodb", "TransactWriteItems", "table", "held files back", action="dynamodb:UpdateItem"),
        code(TABLE, "dynamodb", "UpdateItem", "table", "release_manifest: held -> failed"),
    ),
    # `ndjson-parquet schema --stage S`: the table's metadata only (chalicelib/table_commits.py current_metadata).
    "operator_schema": (
        *(code(COMMITS, "glue", "GetTable", r, "schema: the table's metadata pointer") for r in TABLE_CATALOG),
        code(COMMITS, "s3", "GetObject", "table_metadata_object", "schema: the current metadata JSON"),
    ),
    "operator_backfill": (
        code("ndjson_parquet/commands/backfill.py", "s3", "ListObjectVersions", "input_bucket", "backfill: list"),
        code("ndjson_parquet/commands/backfill.py", "sqs", "GetQueueUrl", "ingest_queue", "backfill: the queue"),
        code("ndjson_parquet/commands/backfill.py", "sqs", "SendMessageBatch", "ingest_queue", "backfill: notify"),
    ),
}

# Roles and the paths they run. Chalice families share one policy file per family
# (ndjson_parquet/infra_template.py FUNCTION_FAMILIES); the others are infra/pipeline.yaml roles
# and the operator's policy, which ``policies.operator_policy`` derives from this map.
ROLES: dict[str, tuple[str, ...]] = {
    "tracker": ("lambda_runtime", "ingest_event_source", "track"),
    "batching": ("lambda_runtime", "stream_event_source", "count_and_seal", "finish_seal"),
    "workflow": ("lambda_runtime", "claim_run", "finalize", "compensate", "recover", "finish_seal"),
    "states": ("states_tasks", "states_service"),
    "glue": ("glue_job", "glue_table", "glue_service"),
    # The same conversion core as the Glue job, without Glue's own service calls (script, --TempDir, logs).
    "converter": ("converter_runtime", "glue_job", "glue_table"),
    "events": ("events_target",),
    "optimizer": ("table_optimizers",),
    # `ndjson-parquet recover` runs the scheduled recover with the operator's credentials.
    "operator": (
        "operator_stack",
        "operator_status",
        "operator_replay",
        "operator_redrive",
        "operator_release",
        "operator_schema",
        "operator_backfill",
        "recover",
        "compensate",
        "finish_seal",
    ),
}

# SSE-KMS with the stack's DataKey (infra/pipeline.yaml): S3 buckets (not access logs), the SQS
# queues and the SNS topic. DynamoDB uses the key through its own grants: callers need no KMS action.
KMS_ENCRYPTED = frozenset(
    {
        "input_object",
        "manifests_object",
        "output_object",
        "table_data_object",
        "table_metadata_object",
        "quarantine_object",
        "scripts_object",
        "scripts_tmp_object",
        "ingest_queue",
        "ingest_dlq",
        "events_dlq",
        "stream_dlq",
        "topic",
    }
)
# IAM action on an encrypted resource -> the KMS operations the caller needs (AWS S3/SQS/SNS docs).
IMPLICIT_KMS: dict[str, tuple[str, ...]] = {
    "s3:GetObject": ("Decrypt",),
    "s3:GetObjectVersion": ("Decrypt",),
    "s3:PutObject": ("GenerateDataKey",),
    "sqs:SendMessage": ("GenerateDataKey", "Decrypt"),
    "sqs:ReceiveMessage": ("Decrypt",),
    "sns:Publish": ("GenerateDataKey", "Decrypt"),
}


def calls_of(role: str) -> Iterator[Call]:
    """The role's calls, implicit KMS calls included (each tagged with its path)."""
    for path in ROLES[role]:
        for call in PATHS[path]:
            call = Call(**{**call.__dict__, "path": path})
            yield call
            if call.implicit_kms and call.resource in KMS_ENCRYPTED:
                for op in IMPLICIT_KMS.get(call.iam_action, ()):
                    yield Call(
                        "kms",
                        op,
                        "data_key",
                        f"implicit: {call.iam_action} on SSE-KMS {call.resource}",
                        site=call.site,
                        path=path,
                    )


def code_sites() -> set[tuple[str, str]]:
    """(file, boto3 method) of every code entry, for the scan."""
    from ndjson_parquet.iam.actions import method_name

    return {
        (c.site, method_name(c.service, c.operation)) for calls in PATHS.values() for c in calls if c.site and not c.via
    }


def library_calls() -> set[tuple[str, str]]:
    """(library module, boto3 method) of every ``lib`` entry, for the scan."""
    from ndjson_parquet.iam.actions import method_name

    return {(c.via, method_name(c.service, c.operation)) for calls in PATHS.values() for c in calls if c.via}
