"""The ARNs the map's calls touch, as templates rendered two ways: concrete (one stage in one
account, for evaluating policies) or as patterns (account, region and names wildcarded, for the
operator policy this package emits). Names follow infra/pipeline.yaml and .chalice/config.json."""

from __future__ import annotations

from collections.abc import Mapping

ACCOUNT = "123456789012"
REGION = "us-east-1"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"

# The Iceberg table's Glue names with the stack's defaults (GlueDatabaseName "" = ndjson_parquet_<stage>,
# GlueTableName dataset, infra/pipeline.yaml); a stage deployed with other names is checked with these.
DATASET_TABLE = "dataset"

# {n} = ndjson-parquet-<stage>; {db}/{table} = the Iceberg table's database and name;
# {any} = a sample name in concrete ARNs, "*" in patterns.
RESOURCES: Mapping[str, str] = {
    "*": "*",
    "table": "arn:aws:dynamodb:{region}:{account}:table/{n}-tracking",
    "index": "arn:aws:dynamodb:{region}:{account}:table/{n}-tracking/index/status-index",
    "stream": "arn:aws:dynamodb:{region}:{account}:table/{n}-tracking/stream/{any}",
    "ingest_queue": "arn:aws:sqs:{region}:{account}:{n}-ingest",
    "ingest_dlq": "arn:aws:sqs:{region}:{account}:{n}-ingest-dlq",
    "events_dlq": "arn:aws:sqs:{region}:{account}:{n}-events-dlq",
    "stream_dlq": "arn:aws:sqs:{region}:{account}:{n}-stream-dlq",
    "input_bucket": "arn:aws:s3:::{n}-input-{account}-{region}",
    "input_object": "arn:aws:s3:::{n}-input-{account}-{region}/{any}",
    "manifests_bucket": "arn:aws:s3:::{n}-manifests-{account}-{region}",
    "manifests_object": "arn:aws:s3:::{n}-manifests-{account}-{region}/{any}",
    "output_bucket": "arn:aws:s3:::{n}-output-{account}-{region}",
    # --OUTPUT_PATH (s3://<output>/data/): run summaries, staging; the Glue role is granted this prefix only.
    "output_object": "arn:aws:s3:::{n}-output-{account}-{region}/data/{any}",
    "quarantine_bucket": "arn:aws:s3:::{n}-quarantine-{account}-{region}",
    "quarantine_object": "arn:aws:s3:::{n}-quarantine-{account}-{region}/{any}",
    # The Iceberg table's files (--TABLE_LOCATION s3://<output>/table): a prefix of their own.
    "table_data_object": "arn:aws:s3:::{n}-output-{account}-{region}/table/data/{any}",
    "table_metadata_object": "arn:aws:s3:::{n}-output-{account}-{region}/table/metadata/{any}",
    "scripts_bucket": "arn:aws:s3:::{n}-scripts-{account}-{region}",
    "scripts_object": "arn:aws:s3:::{n}-scripts-{account}-{region}/glue/{any}",
    "scripts_tmp_object": "arn:aws:s3:::{n}-scripts-{account}-{region}/tmp/{any}",
    "bus": "arn:aws:events:{region}:{account}:event-bus/{n}",
    "archive": "arn:aws:events:{region}:{account}:archive/{n}-manifests",
    "replay": "arn:aws:events:{region}:{account}:replay/{any}",
    "state_machine": "arn:aws:states:{region}:{account}:stateMachine:{n}-convert-manifest",
    "execution": "arn:aws:states:{region}:{account}:execution:{n}-convert-manifest:{any}",
    "topic": "arn:aws:sns:{region}:{account}:{n}-alerts",
    "data_key": "arn:aws:kms:{region}:{account}:key/{key_id}",
    "lambda_log_group": "arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{n}-{any}",
    "lambda_log_stream": "arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{n}-{any}:log-stream:{any}",
    "glue_log_group": "arn:aws:logs:{region}:{account}:log-group:/aws-glue/{n}",
    "glue_log_stream": "arn:aws:logs:{region}:{account}:log-group:/aws-glue/{n}:log-stream:{any}",
    "claim_run_function": "arn:aws:lambda:{region}:{account}:function:{n}-claim_run",
    "finalize_function": "arn:aws:lambda:{region}:{account}:function:{n}-finalize",
    "compensate_function": "arn:aws:lambda:{region}:{account}:function:{n}-compensate",
    "converter_function": "arn:aws:lambda:{region}:{account}:function:{n}-converter",
    "converter_log_stream": "arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{n}-converter:log-stream:{any}",
    "glue_job": "arn:aws:glue:{region}:{account}:job/{n}-convert",
    "glue_catalog": "arn:aws:glue:{region}:{account}:catalog",
    "glue_connection": "arn:aws:glue:{region}:{account}:connection/{n}-vpc",
    "glue_database": "arn:aws:glue:{region}:{account}:database/{db}",
    "glue_table": "arn:aws:glue:{region}:{account}:table/{db}/{table}",
    # The table optimizers' fixed log groups (AWS Glue, "Table optimization prerequisites").
    **{
        f"{kind}_log_{what}": f"arn:aws:logs:{{region}}:{{account}}:log-group:/aws-glue/iceberg-{name}/logs{suffix}"
        for kind, name in (("compaction", "compaction"), ("retention", "retention"), ("orphan", "orphan-file-deletion"))
        for what, suffix in (("group", ""), ("stream", ":log-stream:{any}"))
    },
    "stack": "arn:aws:cloudformation:{region}:{account}:stack/{n}/{any}",
    "eni": "arn:aws:ec2:{region}:{account}:network-interface/{any}",
    "subnet": "arn:aws:ec2:{region}:{account}:subnet/{any}",
    "security_group": "arn:aws:ec2:{region}:{account}:security-group/{any}",
}


def stage_prefix(stage: str) -> str:
    return f"ndjson-parquet-{stage}"


def alias(stage: str) -> str:
    """The data key's alias; Lambda and operator policies find the key by it."""
    return f"alias/{stage_prefix(stage)}"


def dataset_database(stage: str) -> str:
    """The Iceberg table's Glue database (Glue and Athena names take no hyphens)."""
    return f"ndjson_parquet_{stage}"


def render(key: str, stage: str, *, account: str, region: str, sample: str, key_id: str) -> str:
    """``RESOURCES[key]`` for ``stage`` with the given account, region, sample name and key id."""
    return RESOURCES[key].format(
        n=stage_prefix(stage),
        db=dataset_database(stage),
        table=DATASET_TABLE,
        account=account,
        region=region,
        any=sample,
        key_id=key_id,
    )


def arn(key: str, stage: str) -> str:
    """The concrete ARN a call touches in ``stage`` (one sample account, region and object)."""
    return render(key, stage, account=ACCOUNT, region=REGION, sample="sample-1", key_id=KEY_ID)


def pattern(key: str, stage: str) -> str:
    """The same resource as a policy pattern valid in any account and region."""
    return render(key, stage, account="*", region="*", sample="*", key_id="*")
