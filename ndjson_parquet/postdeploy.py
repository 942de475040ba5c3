"""Post-deploy fix-ups Chalice cannot express, applied after ``chalice deploy``.

Chalice creates the event source mappings but exposes none of their failure settings:
- the SQS mapping of ``track_files`` gets ``ReportBatchItemFailures``, so a handler that
  returns ``batchItemFailures`` retries only those messages (without it, Lambda deletes the
  whole batch, failures included). Today's tracker is all-or-nothing for transient errors and
  returns nothing, which this setting treats as "all succeeded": same behaviour, no trap later.
- the DynamoDB-stream mapping of ``count_arrivals`` gets bisect-on-error, a retry and age limit
  and an on-failure destination, so a poison record cannot block its shard for 24 hours, and an
  event filter: only INSERTs of FILE items reach it (``batching.arrived_file`` ignores every
  other record anyway), so the counter, claim and conversion writes no longer invoke it (cost).
Every update is idempotent: a setting already in place is not sent again.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from ndjson_parquet.infra_template import function_name


@dataclass(frozen=True)
class StreamFailurePolicy:
    maximum_retry_attempts: int = 10
    maximum_record_age_seconds: int = 6 * 3600  # flush_stale seals what is left pending much sooner
    bisect_on_error: bool = True


DEFAULT_POLICY = StreamFailurePolicy()
# A subset of what batching.arrived_file accepts (it still checks status == pending itself).
COUNT_ARRIVALS_FILTER = json.dumps({"eventName": ["INSERT"], "dynamodb": {"NewImage": {"sk": {"S": ["FILE"]}}}})


class PostDeployError(RuntimeError):
    """A mapping the fix-ups need does not exist (was `chalice deploy` run for this stage?)."""


def _mapping(lambda_client: Any, function: str, source_arn: str) -> dict[str, Any]:
    pages = lambda_client.get_paginator("list_event_source_mappings").paginate(FunctionName=function)
    found = [m for page in pages for m in page["EventSourceMappings"] if m["EventSourceArn"] == source_arn]
    if len(found) != 1:
        raise PostDeployError(f"expected one event source mapping {source_arn} -> {function}, found {len(found)}")
    return found[0]


def desired_settings(outputs: Mapping[str, str], policy: StreamFailurePolicy = DEFAULT_POLICY) -> dict:
    """Function -> (source ARN, settings) the fix-ups enforce; pure, so it is tested on its own."""
    return {
        "track_files": (
            outputs["IngestQueueArn"],
            {"FunctionResponseTypes": ["ReportBatchItemFailures"]},
        ),
        "count_arrivals": (
            outputs["TableStreamArn"],
            {
                "FunctionResponseTypes": ["ReportBatchItemFailures"],
                "BisectBatchOnFunctionError": policy.bisect_on_error,
                "MaximumRetryAttempts": policy.maximum_retry_attempts,
                "MaximumRecordAgeInSeconds": policy.maximum_record_age_seconds,
                "DestinationConfig": {"OnFailure": {"Destination": outputs["StreamDlqArn"]}},
                "FilterCriteria": {"Filters": [{"Pattern": COUNT_ARRIVALS_FILTER}]},
            },
        ),
    }


def _differs(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> dict[str, Any]:
    changes = {}
    for key, value in wanted.items():
        have = current.get(key)
        if key == "DestinationConfig":
            have = {"OnFailure": {"Destination": (have or {}).get("OnFailure", {}).get("Destination")}}
        if have != value:
            changes[key] = value
    return changes


def apply_postdeploy(
    lambda_client: Any,
    stage: str,
    outputs: Mapping[str, str],
    policy: StreamFailurePolicy = DEFAULT_POLICY,
) -> list[str]:
    """Apply the settings; return one line per mapping changed (empty when all were in place)."""
    applied = []
    for function, (source_arn, wanted) in desired_settings(outputs, policy).items():
        name = function_name(stage, function)
        mapping = _mapping(lambda_client, name, source_arn)
        changes = _differs(mapping, wanted)
        if changes:
            lambda_client.update_event_source_mapping(UUID=mapping["UUID"], **changes)
            applied.append(f"{name}: {', '.join(sorted(changes))}")
    return applied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ndjson_parquet.postdeploy", description=__doc__)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--outputs", required=True, help="stack outputs JSON ({key: value} or describe-stacks list)")
    args = parser.parse_args(argv)
    raw = json.loads(Path(args.outputs).read_text(encoding="utf-8"))
    outputs = {o["OutputKey"]: o["OutputValue"] for o in raw} if isinstance(raw, list) else raw
    for line in apply_postdeploy(boto3.client("lambda"), args.stage, outputs) or ["all event source settings in place"]:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
