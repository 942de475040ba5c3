"""Where the operator commands find the pipeline: boto3's usual configuration (profile, region,
endpoint) plus the deployed stack's outputs, turned into the same environment variables the
Lambda functions get. Variables already set in the environment win, so a command can be
pointed at anything explicitly."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from urllib.parse import urlparse

import boto3

from ndjson_parquet.infra_template import OUTPUT_TO_ENV, stack_name


class StackNotFoundError(RuntimeError):
    """The stack of the requested stage does not exist at this endpoint/account."""


def add_aws_options(parser: argparse.ArgumentParser, with_stage: bool = True) -> None:
    """``--stage`` (unless the command declares its own: ``schema`` has OUT or --stage), endpoint,
    profile and region."""
    group = parser.add_argument_group("where the pipeline runs")
    if with_stage:
        group.add_argument(
            "--stage",
            default=os.environ.get("NDJSON_PARQUET_STAGE", "dev"),
            help="stage whose stack (ndjson-parquet-<stage>) to use; `run --keep-running` uses 'local'",
        )
    group.add_argument("--endpoint-url", help="AWS endpoint, e.g. the URL `run --keep-running` prints")
    group.add_argument("--profile", help="AWS profile (default: boto3's)")
    group.add_argument("--region", help="AWS region (default: boto3's)")


def environment_from_outputs(outputs: Mapping[str, str]) -> dict[str, str]:
    return {var: outputs[out] for out, var in OUTPUT_TO_ENV.items() if out in outputs}


def apply_aws_options(args: argparse.Namespace, needs_stack: bool = True) -> None:
    """Point boto3 (and the handlers' settings) at the chosen account/endpoint and stack."""
    from chalicelib import aws
    from chalicelib.settings import get_settings

    if getattr(args, "profile", None):
        os.environ["AWS_PROFILE"] = args.profile
    if getattr(args, "region", None):
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = args.region
    endpoint = getattr(args, "endpoint_url", None)
    if endpoint:
        os.environ["AWS_ENDPOINT_URL"] = endpoint
        host = urlparse(endpoint).hostname or ""
        if host in ("127.0.0.1", "localhost", "::1"):
            # A moto endpoint without IAM enforcement accepts any keys, so no profile is needed; the
            # local runtime enforces IAM and refuses these placeholders (InvalidClientTokenId):
            # export the operator keys `run --keep-running` prints (tests/e2e/test_kept_runtime.py).
            os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
            os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if needs_stack and "TABLE_NAME" not in os.environ:
        for var, value in stack_environment(args.stage).items():
            os.environ.setdefault(var, value)
    get_settings.cache_clear()
    aws.clients.clear()


def stack_environment(stage: str) -> dict[str, str]:
    cfn = boto3.client("cloudformation")
    name = stack_name(stage)
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except cfn.exceptions.ClientError as exc:
        raise StackNotFoundError(f"stack {name} not found ({exc.response['Error'].get('Message', exc)})") from None
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stacks[0].get("Outputs", [])}
    return environment_from_outputs(outputs)
