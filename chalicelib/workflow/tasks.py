"""The workflow's entry points with their collaborators built from settings and the shared lazy
clients (chalicelib.aws). app.py handlers and the local runtime call these, nothing else."""

from __future__ import annotations

from typing import Any

from chalicelib import aws
from chalicelib.settings import Settings, get_settings
from chalicelib.tracking_table import TrackingTable
from chalicelib.workflow.breaker import BreakerConfig
from chalicelib.workflow.claim_run import claim_run
from chalicelib.workflow.compensate import compensate
from chalicelib.workflow.errors import transient_aws_errors
from chalicelib.workflow.finalize import finalize


def breaker_config(s: Settings) -> BreakerConfig:
    return BreakerConfig(s.breaker_threshold, s.breaker_window_seconds, s.breaker_cooldown_seconds)


def store(s: Settings | None = None) -> TrackingTable:
    s = s or get_settings()
    return TrackingTable(aws.client("dynamodb"), s.table_name)


@transient_aws_errors
def claim_run_task(payload: dict[str, Any]) -> dict[str, Any]:
    s = get_settings()
    return claim_run(
        payload,
        store(s),
        s.manifest_bucket,
        s.manifest_prefix,
        s3=aws.client("s3"),
        convert_engine=s.convert_engine,
        lambda_max_bytes=s.lambda_max_bytes,
    )


@transient_aws_errors
def finalize_task(payload: dict[str, Any]) -> dict[str, Any]:
    s = get_settings()
    return finalize(
        payload,
        store(s),
        aws.client("s3"),
        s.shard_count,
        sns=aws.client("sns"),
        alerts_topic_arn=s.alerts_topic_arn,
    )


@transient_aws_errors
def compensate_task(payload: dict[str, Any]) -> dict[str, Any]:
    s = get_settings()
    return compensate(
        payload,
        store(s),
        aws.client("s3"),
        aws.client("sns"),
        max_attempts=s.max_attempts,
        shard_count=s.shard_count,
        breaker_cfg=breaker_config(s),
        alerts_topic_arn=s.alerts_topic_arn,
        table=s.table_ref(),
        glue=aws.client("glue") if s.table_ref() and s.iceberg_catalog == "glue" else None,
    )
