"""IAM enforcement in the local runtime: every caller gets exactly its role's actions.

moto checks IAM only when ``INITIAL_NO_AUTH_ACTION_COUNT`` is finite: after that many free
requests every request must be signed by an IAM user's access key whose policies allow the
action. ``enable_enforcement`` creates one administrator (its user, its ``*`` policy, its key)
while requests are free, then sets the count to 0 through moto's ``/moto-api/reset-auth``; the
administrator deploys the stack. Then ``create_callers`` gives each
caller of the pipeline an IAM user named after its role (so moto's AccessDenied names the
caller and the action) with that role's policy, taken from where the deploy takes it:

- the Chalice function families (tracker, batching, workflow): ``chalice_policy``, the generator
  of ``.chalice/policy-<stage>-<family>.json``;
- the Step Functions, Glue, converter Lambda and EventBridge target roles: the inline policies
  the stack created (``infra/pipeline.yaml``), read back from IAM;
- the operator CLI: ``ndjson_parquet.iam.policies.operator_policy``, derived from the static call
  map (``ndjson_parquet/iam/callmap.py``), the same document ``ndjson-parquet iam operator-policy``
  prints for a real account.

``for_moto`` is the one place where a policy is changed for moto; its docstring says how.
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass
from typing import Any

import requests

from ndjson_parquet.iam.policies import operator_policy
from ndjson_parquet.infra_template import APP_NAME, FUNCTION_FAMILIES, chalice_policy

ADMIN_USER = "local-administrator"
# moto 5.2.5 matches resource ARNs only for these services; every other service is checked
# against resource "*" (measured; see for_moto).
ARN_MATCHED_SERVICES = frozenset({"s3", "sqs"})
# Roles of the stack (infra/pipeline.yaml) whose inline policies become callers; the converter
# Lambda's role once the stack has one (``OPTIONAL_STACK_ROLES``: absent, no caller for it).
STACK_ROLES = ("states", "glue", "events")
OPTIONAL_STACK_ROLES = ("converter",)
# IAM action -> the name moto 5.2.5 checks for the same call (the API's name).
_MOTO_ACTION_NAMES = {
    "lambda:InvokeFunction": "lambda:Invoke",
    "dynamodb:PutItem": "dynamodb:TransactWriteItems",
    "dynamodb:UpdateItem": "dynamodb:TransactWriteItems",
    "dynamodb:DeleteItem": "dynamodb:TransactWriteItems",
    "dynamodb:ConditionCheckItem": "dynamodb:TransactWriteItems",
    "dynamodb:GetItem": "dynamodb:TransactGetItems",
    "sqs:DeleteMessage": "sqs:DeleteMessageBatch",
    "sqs:SendMessage": "sqs:SendMessageBatch",
    "sqs:ChangeMessageVisibility": "sqs:ChangeMessageVisibilityBatch",
}


@dataclass(frozen=True)
class Caller:
    """An IAM user standing for one role: its name (``ndjson-parquet-<stage>-<role>``) and key."""

    name: str
    access_key: str
    secret_key: str


def for_moto(policy: dict[str, Any]) -> dict[str, Any]:
    """``policy`` as moto 5.2.5 can enforce it, with the same actions.

    Two changes, both because of how moto evaluates policies, never to add an action:
    - Resource is widened to ``*`` for actions of services other than S3 and SQS
      (``ARN_MATCHED_SERVICES``): moto checks DynamoDB, DynamoDB Streams, Step Functions, Glue,
      Lambda, SNS and EventBridge requests against resource ``*``, so a grant scoped to an ARN is
      refused there. S3 and SQS grants keep their ARNs and are enforced with them.
    - Where IAM's action name differs from the API's, moto checks the API's name: Lambda's Invoke
      is authorized by lambda:InvokeFunction, SQS batch APIs by their single action
      (DeleteMessageBatch by sqs:DeleteMessage), DynamoDB transactions by the item actions they
      contain (TransactWriteItems by PutItem/UpdateItem/DeleteItem/ConditionCheckItem; moto sees
      only the API, so any one of them names it: coarser than AWS, which checks each item). A
      statement granting the IAM action also names the API for moto (``_MOTO_ACTION_NAMES``).
    - s3:DeleteObject granted on objects (``bucket/...``) is also granted on the bucket's ARN:
      moto checks DeleteObjects (Compensate's and the Glue job's batch deletes) as s3:DeleteObject
      on the bucket ARN and, when that is refused, reports every key AccessDenied; AWS checks each
      key's object ARN. On a bucket ARN the action touches nothing in AWS.
    - Statements with a Condition are dropped: moto evaluates conditions without request
      context and turns an unmet condition into an explicit deny of the action. None of these
      calls (KMS via alias, PutMetricData by namespace, ENI tags) is made locally; if one ever
      is, it is refused, which names it.
    """
    out: list[dict[str, Any]] = []
    for statement in policy["Statement"]:
        if statement.get("Condition"):
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        actions = list(dict.fromkeys(actions + [_MOTO_ACTION_NAMES[a] for a in actions if a in _MOTO_ACTION_NAMES]))
        matched = [a for a in actions if a.split(":", 1)[0] in ARN_MATCHED_SERVICES]
        widened = [a for a in actions if a not in matched]
        base = {k: v for k, v in statement.items() if k not in ("Action", "Resource", "Sid")}
        if matched:
            out.append({**base, "Action": matched, "Resource": statement["Resource"]})
        if "s3:DeleteObject" in matched:
            out.append({**base, "Action": ["s3:DeleteObject"], "Resource": _buckets_of(statement["Resource"])})
        if widened:
            out.append({**base, "Action": widened, "Resource": "*"})
    return {"Version": "2012-10-17", "Statement": out}


def _buckets_of(resource: str | list[str]) -> list[str]:
    """The bucket ARNs of S3 object ARNs (``arn:aws:s3:::bucket/key`` -> ``arn:aws:s3:::bucket``)."""
    arns = [resource] if isinstance(resource, str) else resource
    return list(dict.fromkeys(a.split("/", 1)[0] for a in arns if a.startswith("arn:aws:s3:::")))


def _set_free_requests(endpoint_url: str, count: str) -> None:
    # moto's own switch: sets INITIAL_NO_AUTH_ACTION_COUNT and restarts its request count.
    requests.post(f"{endpoint_url}/moto-api/reset-auth", data=count.encode(), timeout=30).raise_for_status()


def enable_enforcement(endpoint_url: str, iam: Any) -> Caller:
    """Create the administrator while requests are free, then enforce IAM on every request.
    Call on an empty account (after ``disable_enforcement`` and a reset)."""
    admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    caller = _create_user(iam, ADMIN_USER, [("administrator", admin)])
    _set_free_requests(endpoint_url, "0")
    return caller


def disable_enforcement(endpoint_url: str) -> None:
    _set_free_requests(endpoint_url, "inf")


def _create_user(iam: Any, name: str, policies: list[tuple[str, dict[str, Any]]]) -> Caller:
    iam.create_user(UserName=name)
    for policy_name, document in policies:
        iam.put_user_policy(UserName=name, PolicyName=policy_name, PolicyDocument=json.dumps(document))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return Caller(name, key["AccessKeyId"], key["SecretAccessKey"])


def _document(raw: Any) -> dict[str, Any]:
    # moto's CloudFormation stores a role's inline policy as the repr of a dict, not JSON.
    if isinstance(raw, dict):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return ast.literal_eval(raw)


def role_policies(iam: Any, role_name: str) -> list[tuple[str, dict[str, Any]]]:
    names = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    return [(n, _document(iam.get_role_policy(RoleName=role_name, PolicyName=n)["PolicyDocument"])) for n in names]


def role_name(stage: str, role: str) -> str:
    return f"{APP_NAME}-{stage}-{role}"


def caller_policies(iam: Any, stage: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Each role's policies as deployed (before ``for_moto``), keyed by role: the Chalice
    families, the stack's roles, the operator."""
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {
        family: [(f"policy-{stage}-{family}", chalice_policy(stage, family))] for family in FUNCTION_FAMILIES
    }
    for role in STACK_ROLES:
        out[role] = role_policies(iam, role_name(stage, role))
    for role in OPTIONAL_STACK_ROLES:
        try:
            out[role] = role_policies(iam, role_name(stage, role))
        except iam.exceptions.NoSuchEntityException:
            continue
    out["operator"] = [(f"{APP_NAME}-{stage}-operator", operator_policy(stage))]
    return out


def create_callers(
    iam: Any, stage: str, overrides: dict[str, list[tuple[str, dict[str, Any]]]] | None = None
) -> dict[str, Caller]:
    """One IAM user per role, with exactly that role's policies (as ``for_moto`` adapts them).
    ``overrides`` (tests only) replaces a role's policies, e.g. to take a grant away."""
    policies = {**caller_policies(iam, stage), **(overrides or {})}
    return {
        role: _create_user(iam, role_name(stage, role), [(n, for_moto(d)) for n, d in docs])
        for role, docs in policies.items()
    }
