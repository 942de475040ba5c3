"""The smoke's IAM policy-simulator check, played by botocore Stubbers (moto has no simulator):
every role of the stage is simulated, the Chalice functions' roles included, and a denial is
reported naming the role, the action and the resource."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.stub import ANY, Stubber

from ndjson_parquet.iam.callmap import calls_of
from ndjson_parquet.iam.policies import TEMPLATE_ROLES
from ndjson_parquet.infra_template import FUNCTION_FAMILIES, function_name
from ndjson_parquet.smoke import simulate

REGION = "eu-west-1"
ACCOUNT = "123456789012"


def _client(name: str) -> Any:
    return boto3.client(name, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")


def _simulated(role: str) -> list[Any]:
    return [c for c in calls_of(role) if not (c.context or c.service in ("kms", "ec2"))]


def test_every_role_of_the_stage_is_simulated_and_a_denial_is_named() -> None:
    clients = {n: _client(n) for n in ("cloudformation", "iam", "lambda", "sts")}
    stubs = {n: Stubber(c) for n, c in clients.items()}
    caller = {"Account": ACCOUNT, "Arn": f"arn:aws:iam::{ACCOUNT}:user/deployer", "UserId": "AIDAEXAMPLEEXAMPLE"}
    stubs["sts"].add_response("get_caller_identity", caller)
    order: list[tuple[str, str]] = []
    for role, logical in TEMPLATE_ROLES.items():
        stubs["cloudformation"].add_response(
            "describe_stack_resource",
            {
                "StackResourceDetail": {
                    "LogicalResourceId": logical,
                    "PhysicalResourceId": f"phys-{role}",
                    "ResourceType": "AWS::IAM::Role",
                    "LastUpdatedTimestamp": "2026-01-01T00:00:00Z",
                    "ResourceStatus": "CREATE_COMPLETE",
                }
            },
            {"StackName": "ndjson-parquet-dev", "LogicalResourceId": logical},
        )
        arn = f"arn:aws:iam::{ACCOUNT}:role/phys-{role}"
        stubs["iam"].add_response(
            "get_role",
            {
                "Role": {
                    "Path": "/",
                    "RoleName": f"phys-{role}",
                    "RoleId": "AROAEXAMPLEEXAMPLE1",
                    "Arn": arn,
                    "CreateDate": "2026-01-01T00:00:00Z",
                }
            },
            {"RoleName": f"phys-{role}"},
        )
        order.append((role, arn))
    for family, functions in FUNCTION_FAMILIES.items():
        for fn in functions:
            arn = f"arn:aws:iam::{ACCOUNT}:role/{function_name('dev', fn)}"
            stubs["lambda"].add_response(
                "get_function_configuration", {"Role": arn}, {"FunctionName": function_name("dev", fn)}
            )
            order.append((family, arn))
    # every call allowed, except the first call of the finalize function's role
    denied_arn = f"arn:aws:iam::{ACCOUNT}:role/{function_name('dev', 'finalize')}"
    expected_denial = ""
    for role, arn in order:
        for n, call in enumerate(_simulated(role)):
            deny = arn == denied_arn and n == 0
            stubs["iam"].add_response(
                "simulate_principal_policy",
                {
                    "EvaluationResults": [
                        {"EvalActionName": call.iam_action, "EvalDecision": "implicitDeny" if deny else "allowed"}
                    ]
                },
                {"PolicySourceArn": arn, "ActionNames": [call.iam_action], "ResourceArns": [ANY]},
            )
            if deny:
                expected_denial = f"workflow (ndjson-parquet-dev-finalize): {call.iam_action} on "
    for stub in stubs.values():
        stub.activate()
    denied = simulate("dev", clients)
    for stub in stubs.values():
        stub.assert_no_pending_responses()
    assert len(denied) == 1 and denied[0].startswith(expected_denial), denied
    # resources are the stage's ARNs in the caller's account and the stage's region
    assert denied == [
        "workflow (ndjson-parquet-dev-finalize): logs:CreateLogGroup on "
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/ndjson-parquet-dev-smoke-1 "
        "(Lambda creates the function's log group)"
    ]
