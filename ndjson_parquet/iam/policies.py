"""The policy document of each role in the map: Chalice families from the generator
(ndjson_parquet/infra_template.py), the stack's roles from infra/pipeline.yaml resolved for one
account, and the operator's policy, which is derived from the map itself."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from ndjson_parquet import infra_template as it
from ndjson_parquet.iam import resources as r
from ndjson_parquet.iam.callmap import ROLES, calls_of

# Map role -> the template's AWS::IAM::Role logical id.
TEMPLATE_ROLES = {
    "states": "StateMachineRole",
    "glue": "GlueRole",
    "events": "EventsRole",
    "optimizer": "TableOptimizerRole",
    "converter": "ConverterRole",
}
# Template roles that exist only under a condition (TableMaintenance other than none).
CONDITIONAL_ROLES = frozenset({"TableOptimizerRole"})


class _AccountResolver(it._Resolver):
    """The template's resolver, plus the attributes these roles use that a deploy never resolves."""

    def attr(self, logical: str, attribute: str) -> str:
        rtype = self.template["Resources"][logical]["Type"]
        if rtype == "AWS::DynamoDB::Table" and attribute == "Arn":
            return f"arn:aws:dynamodb:{r.REGION}:{r.ACCOUNT}:table/{self.physical[logical]}"
        if rtype == "AWS::Events::Rule" and attribute == "Arn":
            return f"arn:aws:events:{r.REGION}:{r.ACCOUNT}:rule/{logical}"
        return super().attr(logical, attribute)


def _resolver(stage: str) -> _AccountResolver:
    template = it.render_template_dict(stage)
    pseudo = {
        "AWS::Partition": "aws",
        "AWS::Region": r.REGION,
        "AWS::AccountId": r.ACCOUNT,
        "AWS::StackName": it.stack_name(stage),
        "AWS::StackId": f"arn:aws:cloudformation:{r.REGION}:{r.ACCOUNT}:stack/{it.stack_name(stage)}/id",
        "AWS::URLSuffix": "amazonaws.com",
    }
    params = {"Stage": stage}
    named = _AccountResolver(template, params, {}, pseudo)
    physical: dict[str, str] = {}
    for logical, res in template["Resources"].items():
        props = res.get("Properties", {})
        name_prop = {
            "AWS::S3::Bucket": "BucketName",
            "AWS::SQS::Queue": "QueueName",
            "AWS::DynamoDB::Table": "TableName",
            "AWS::Logs::LogGroup": "LogGroupName",
            "AWS::IAM::Role": "RoleName",
        }.get(res["Type"])
        if name_prop and name_prop in props:
            physical[logical] = str(named.value(props[name_prop]))
    physical["DataKey"] = r.KEY_ID
    physical["AlertsTopic"] = r.arn("topic", stage)  # Ref of a topic is its ARN
    return _AccountResolver(template, params, physical, pseudo)


def template_role_policy(stage: str, role: str) -> dict[str, Any]:
    """All inline policies of the template role, as one document, for the sample account."""
    resolver = _resolver(stage)
    props = resolver.template["Resources"][TEMPLATE_ROLES[role]]["Properties"]
    statements = [s for p in resolver.value(props["Policies"]) for s in p["PolicyDocument"]["Statement"]]
    return {"Version": "2012-10-17", "Statement": statements}


def operator_policy(stage: str) -> dict[str, Any]:
    """What a user needs for the operator CLI (status, replay, redrive, recover, release, backfill,
    schema --stage): every operator call of the map, grouped by resource, scoped like the Chalice
    policies."""
    by_resource: dict[str, set[str]] = defaultdict(set)
    for call in calls_of("operator"):
        by_resource[r.pattern(call.resource, stage)].add(call.iam_action)
    statements: list[dict[str, Any]] = []
    for resource, actions in sorted(by_resource.items()):
        statement: dict[str, Any] = {"Effect": "Allow", "Action": sorted(actions), "Resource": resource}
        if resource.startswith("arn:aws:kms:"):
            # The key's id is random: found by its alias, like the Lambda policies.
            statement["Condition"] = {"ForAnyValue:StringEquals": {"kms:ResourceAliases": r.alias(stage)}}
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def role_policy(stage: str, role: str) -> dict[str, Any]:
    if role in it.FUNCTION_FAMILIES:
        # The committed file is what `chalice deploy` uses (tests keep it equal to the generator).
        path = it.REPO_ROOT / ".chalice" / it.chalice_policy_filename(stage, role)
        return json.loads(path.read_text(encoding="utf-8"))
    if role in TEMPLATE_ROLES:
        return template_role_policy(stage, role)
    if role == "operator":
        return operator_policy(stage)
    raise ValueError(f"unknown role {role!r}; known: {sorted(ROLES)}")
