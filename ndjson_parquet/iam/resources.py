"""The ARNs the map's calls touch, as templates rendered two ways: concrete (one stage in one
account, for evaluating policies) or as patterns (account, region and names wildcarded, for the
operator policy this package emits). Names follow infra/pipeline.yaml and .chalice/config.json."""

from __future__ import annotations

from collections.abc import Mapping

ACCOUNT = "123456789012"
REGION = "us-east-1"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"

# {n} = ndjson-parquet-<stage>; {any} = a sample name in concrete ARNs, "*" in patterns.
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
    "output_object": "arn:aws:s3:::{n}-output-{account}-{region}/{any}",
    "quarantine_bucket": "arn:aws:s3:::{n}-quarantine-{account}-{region}",
    "quarantine_object": "arn:aws:s3:::{n}-quarantine-{account}-{region}/{any}",
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
    "glue_job": "arn:aws:glue:{region}:{account}:job/{n}-convert",
    "glue_catalog": "arn:aws:glue:{region}:{account}:catalog",
    "glue_connection": "arn:aws:glue:{region}:{account}:connection/{n}-vpc",
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


def arn(key: str, stage: str) -> str:
    """The concrete ARN a call touches in ``stage`` (one sample account, region and object)."""
    return RESOURCES[key].format(n=stage_prefix(stage), account=ACCOUNT, region=REGION, any="sample-1", key_id=KEY_ID)


def pattern(key: str, stage: str) -> str:
    """The same resource as a policy pattern valid in any account and region."""
    return RESOURCES[key].format(n=stage_prefix(stage), account="*", region="*", any="*", key_id="*")
