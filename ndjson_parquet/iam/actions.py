"""botocore's service models name every operation; the IAM action is ``<signingName>:<Operation>``
except for the few operations IAM authorises under another name (listed below, from the AWS
Service Authorization Reference)."""

from __future__ import annotations

from functools import cache

import botocore.session
from botocore import xform_name

# (boto3 service, operation) -> the IAM action that authorises it, where the name differs.
ACTION_ALIASES: dict[tuple[str, str], str] = {
    ("s3", "ListObjectsV2"): "s3:ListBucket",
    ("s3", "ListObjectVersions"): "s3:ListBucketVersions",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "DeleteObjects"): "s3:DeleteObject",  # checked per key
    ("s3", "CopyObject"): "s3:PutObject",  # on the target; the source needs s3:GetObject (own map entry)
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("lambda", "Invoke"): "lambda:InvokeFunction",
}
# IAM actions with no API operation of their own ("permission only" in the Service Authorization
# Reference): Step Functions' log delivery uses them on the role's behalf.
PERMISSION_ONLY = frozenset(
    {
        ("logs", "CreateLogDelivery"),
        ("logs", "GetLogDelivery"),
        ("logs", "UpdateLogDelivery"),
        ("logs", "DeleteLogDelivery"),
        ("logs", "ListLogDeliveries"),
    }
)
# Signing names that are not the IAM prefix.
PREFIX_ALIASES = {"monitoring": "cloudwatch"}


class UnknownOperation(ValueError):
    """The map names an operation botocore does not know."""


@cache
def _model(service: str):  # type: ignore[no-untyped-def]
    return botocore.session.get_session().get_service_model(service)


def operation_names(service: str) -> frozenset[str]:
    return frozenset(_model(service).operation_names)


def method_name(service: str, operation: str) -> str:
    """boto3's client method for the operation (``PutItem`` -> ``put_item``); fails if unknown."""
    if operation not in operation_names(service):
        raise UnknownOperation(f"{service} has no operation {operation!r}")
    return xform_name(operation)


def iam_prefix(service: str) -> str:
    metadata = _model(service).metadata
    prefix = str(metadata.get("signingName") or metadata["endpointPrefix"])
    return PREFIX_ALIASES.get(prefix, prefix)


def iam_action(service: str, operation: str) -> str:
    if (service, operation) not in PERMISSION_ONLY:
        method_name(service, operation)  # validates
    return ACTION_ALIASES.get((service, operation), f"{iam_prefix(service)}:{operation}")
