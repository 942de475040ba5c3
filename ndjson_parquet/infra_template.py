"""One definition of the infrastructure for AWS and for moto.

``render_template`` turns ``infra/pipeline.yaml`` into the template body both targets deploy:
the Step Functions definition is inlined from ``infra/statemachine/convert_manifest.asl.json``
(the single ASL file) inside the ``Fn::Sub`` that supplies the agreed substitution variables.
``deploy_to_endpoint`` creates or updates the stack through any CloudFormation endpoint and then
applies, from the same template, the few properties moto's CloudFormation silently ignores
(bucket versioning and notifications) and the resource types it skips (Glue job and database), so the local
runtime gets the same wiring as an account. What could not be created is returned, not hidden.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from botocore.exceptions import WaiterError
from cfnlint.decode import decode_str

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = REPO_ROOT / "infra" / "pipeline.yaml"
ASL_PATH = REPO_ROOT / "infra" / "statemachine" / "convert_manifest.asl.json"
STATE_MACHINE_RESOURCE = "ConvertManifestStateMachine"
APP_NAME = "ndjson-parquet"

# Variables the ASL file may use; all are provided by the Fn::Sub mapping in the template.
ASL_VARIABLES = (
    "GlueJobName",
    "TableName",
    "ClaimRunFunctionArn",
    "FinalizeFunctionArn",
    "CompensateFunctionArn",
    "AlertsTopicArn",
    "OutputPath",
    "QuarantinePath",
    "ManifestBucket",
    "ConverterFunctionArn",
)
# Chalice creates the functions; their names are deterministic: ndjson-parquet-<stage>-<function>.
CHALICE_FUNCTIONS = ("track_files", "count_arrivals", "flush_stale", "recover", "claim_run", "finalize", "compensate")


class TemplateError(RuntimeError):
    """The template or the ASL file cannot be rendered."""


class DefinitionError(TemplateError):
    """An agreed substitution variable was given no value."""


class StackDeployError(RuntimeError):
    """The stack did not reach a *_COMPLETE state."""


class StackOutputs(dict[str, str]):
    """Stack outputs (name -> value), plus what the endpoint could not create.

    ``not_created`` lists the resource types of the template that the endpoint's CloudFormation
    did not create (moto skips unsupported types with a warning); ``fixups`` says what
    ``deploy_to_endpoint`` applied itself from the template instead.
    """

    not_created: list[str]
    fixups: list[str]

    def __init__(self, outputs: Mapping[str, str], not_created: Iterable[str] = (), fixups: Iterable[str] = ()):
        super().__init__(outputs)
        self.not_created = sorted(set(not_created))
        self.fixups = list(fixups)


def function_name(stage: str, function: str) -> str:
    return f"{APP_NAME}-{stage}-{function}"


def stack_name(stage: str) -> str:
    return f"{APP_NAME}-{stage}"


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as plain JSON-able data (short-form tags become Fn:: objects); a fresh copy
    each call, so callers may change it."""
    return json.loads(_template_json(str(path), Path(path).stat().st_mtime_ns))


@lru_cache(maxsize=4)
def _template_json(path: str, mtime_ns: int) -> str:
    """Parsing the YAML costs about a second; a test session deploys many times (keyed on mtime,
    so an edited template is parsed again)."""
    decoded, matches = decode_str(Path(path).read_text(encoding="utf-8"))
    if matches or decoded is None:
        raise TemplateError(f"cannot parse {path}: {[str(m) for m in matches]}")
    # Through JSON: cfn-lint's node types become plain dict/list/str.
    return json.dumps(decoded)


def read_asl(path: Path = ASL_PATH) -> str:
    """The ASL file as compact JSON; fails on invalid JSON or variables outside the agreed set."""
    try:
        definition = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TemplateError(f"state machine definition {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise TemplateError(f"{path} is not valid JSON: {exc}") from None
    text = json.dumps(definition, separators=(",", ":"))
    unknown = set(re.findall(r"\$\{([^}!]+)\}", text)) - set(ASL_VARIABLES)
    if unknown:
        raise TemplateError(f"{path} uses substitution variables outside the agreed set: {sorted(unknown)}")
    return text


def render_definition(substitutions: Mapping[str, str], path: Path = ASL_PATH) -> str:
    """The ASL (as ``read_asl`` checks it) with ``${Name}`` replaced, as CloudFormation's
    DefinitionSubstitutions does: for the local runtime, whose moto CloudFormation neither runs the
    state machine it creates nor applies the substitutions."""
    text = read_asl(path)
    for name, value in substitutions.items():
        text = text.replace("${" + name + "}", value)
    leftover = sorted({n for n in ASL_VARIABLES if "${" + n + "}" in text})
    if leftover:
        raise DefinitionError(f"unsubstituted variables: {', '.join(leftover)}")
    json.loads(text)  # a value that broke the JSON fails here, not in the state machine
    return text


def render_template_dict(
    stage: str = "dev", *, asl_path: Path = ASL_PATH, allow_placeholder: bool = False
) -> dict[str, Any]:
    """The deployable template: ASL inlined, ``Stage`` defaulting to ``stage``.

    ``allow_placeholder`` keeps the template's placeholder definition when the ASL file does not
    exist yet (tests of everything else); deploys never set it.
    """
    template = load_template()
    template["Parameters"]["Stage"]["Default"] = stage
    sub = template["Resources"][STATE_MACHINE_RESOURCE]["Properties"]["DefinitionString"]["Fn::Sub"]
    if asl_path.exists() or not allow_placeholder:
        sub[0] = read_asl(asl_path)
    return template


def render_template(stage: str = "dev", *, asl_path: Path = ASL_PATH, allow_placeholder: bool = False) -> str:
    """Template body (compact JSON) for ``CreateStack``/``aws cloudformation deploy``, AWS and moto alike."""
    return json.dumps(
        render_template_dict(stage, asl_path=asl_path, allow_placeholder=allow_placeholder), separators=(",", ":")
    )


def stack_parameters(stage: str, overrides: Mapping[str, str | int] | None = None) -> list[dict[str, str]]:
    """CloudFormation ``Parameters`` for ``stage``; unknown override names fail early."""
    declared = load_template()["Parameters"]
    values: dict[str, str] = {"Stage": stage}
    for key, value in (overrides or {}).items():
        if key not in declared:
            raise TemplateError(f"unknown stack parameter {key!r}; declared: {sorted(declared)}")
        values[key] = str(value)
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in values.items()]


# --------------------------------------------------------------------------- deploy


def deploy_to_endpoint(
    cfn_client: Any,
    stack_name: str,
    params: list[dict[str, str]] | Mapping[str, str | int],
    *,
    template_body: str | None = None,
    session: Any = None,
    timeout_seconds: float = 1800,
) -> StackOutputs:
    """Create (or update) the stack and return its outputs.

    Works against AWS and moto. Afterwards, properties and resource types the endpoint's
    CloudFormation did not materialise are applied from the same template where an API exists
    (``StackOutputs.fixups``); the rest are listed in ``StackOutputs.not_created``.
    """
    if isinstance(params, Mapping):
        stage = str(params.get("Stage", "dev"))
        params = stack_parameters(stage, {k: v for k, v in params.items() if k != "Stage"})
    param_values = {p["ParameterKey"]: p["ParameterValue"] for p in params}
    stage = param_values.get("Stage", "dev")
    body = template_body if template_body is not None else render_template(stage)
    kwargs = {
        "StackName": stack_name,
        "TemplateBody": body,
        "Parameters": list(params),
        "Capabilities": ["CAPABILITY_NAMED_IAM"],
    }
    waiter = "stack_create_complete"
    if _stack_exists(cfn_client, stack_name):
        waiter = "stack_update_complete"
        try:
            cfn_client.update_stack(**kwargs)
        except cfn_client.exceptions.ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
            waiter = "stack_exists"  # nothing changed: the stack is already in a complete state
    else:
        cfn_client.create_stack(**kwargs)
    stack = _wait_complete(cfn_client, stack_name, waiter, timeout_seconds)
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs", [])}

    template = json.loads(body)
    created, physical = _stack_resources(cfn_client, stack_name)
    resolver = _Resolver(template, param_values, physical, _pseudo(cfn_client, stack))
    expected = {
        name: res["Type"]
        for name, res in template["Resources"].items()
        if resolver.condition(res.get("Condition")) and not res["Type"].startswith("Custom::")
    }
    missing = {name: rtype for name, rtype in expected.items() if name not in created}
    fixups: list[str] = []
    handled: set[str] = set()
    if missing or _is_moto(cfn_client):
        boto_session = session or _session_for(cfn_client)
        fixups, handled = _apply_fixups(template, resolver, physical, missing, boto_session)
    not_created = [rtype for name, rtype in missing.items() if name not in handled]
    return StackOutputs(outputs, not_created=not_created, fixups=fixups)


def _stack_exists(cfn: Any, name: str) -> bool:
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except cfn.exceptions.ClientError as exc:
        if "does not exist" in str(exc):
            return False
        raise
    return bool(stacks) and stacks[0]["StackStatus"] != "DELETE_COMPLETE"


def _wait_complete(cfn: Any, name: str, waiter_name: str, timeout_seconds: float) -> dict[str, Any]:
    """Wait with CloudFormation's own waiter (it polls and recognises every failed and rollback
    status); on failure, the failed resources' reasons in one error."""
    delay = 5
    try:
        cfn.get_waiter(waiter_name).wait(
            StackName=name,
            WaiterConfig={"Delay": delay, "MaxAttempts": max(1, math.ceil(timeout_seconds / delay))},
        )
    except WaiterError as exc:
        events = cfn.describe_stack_events(StackName=name).get("StackEvents", [])
        reasons = [
            f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
            for e in events
            if e.get("ResourceStatusReason") and "FAILED" in e.get("ResourceStatus", "")
        ]
        stacks = exc.last_response.get("Stacks") or [{}]
        status = stacks[0].get("StackStatus", "unknown")
        raise StackDeployError(f"stack {name} ended in {status} ({exc}): {reasons[:5]}") from None
    return cfn.describe_stacks(StackName=name)["Stacks"][0]


def _stack_resources(cfn: Any, name: str) -> tuple[set[str], dict[str, str]]:
    """Logical ids the stack created, and their physical ids where the endpoint reports one.

    moto lists a type it does not support with an empty logical id, so "listed by logical id"
    is the test for "created"; describe_stack_resources is capped at 100, list_stack_resources pages.
    """
    created: set[str] = set()
    physical: dict[str, str] = {}
    token: str | None = None
    while True:
        page = cfn.list_stack_resources(StackName=name, **({"NextToken": token} if token else {}))
        for r in page["StackResourceSummaries"]:
            logical = r.get("LogicalResourceId")
            if not logical or "FAILED" in r.get("ResourceStatus", ""):
                continue
            created.add(logical)
            if r.get("PhysicalResourceId"):
                physical[logical] = r["PhysicalResourceId"]
        token = page.get("NextToken")
        if not token:
            return created, physical


def _pseudo(cfn: Any, stack: Mapping[str, Any]) -> dict[str, str]:
    # arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>
    parts = stack["StackId"].split(":")
    return {
        "AWS::Partition": parts[1],
        "AWS::Region": parts[3],
        "AWS::AccountId": parts[4],
        "AWS::StackName": stack["StackName"],
        "AWS::StackId": stack["StackId"],
        "AWS::URLSuffix": "amazonaws.com",
    }


def _is_moto(cfn: Any) -> bool:
    url = cfn.meta.endpoint_url or ""
    return not url.endswith("amazonaws.com") and not url.endswith("amazonaws.com.cn")


def _session_for(cfn: Any) -> Any:
    from ndjson_parquet.sessions import new_session

    # A new session per deploy, so it signs with the credentials of the moment (a test session
    # swaps them between deploys); the service-model loader is shared (ndjson_parquet/sessions.py).
    return _EndpointSession(new_session(region_name=cfn.meta.region_name), cfn.meta.endpoint_url)


class _EndpointSession:
    """Creates clients on the same endpoint and region as the CloudFormation client."""

    def __init__(self, session: Any, endpoint_url: str) -> None:
        self._session = session
        self._endpoint_url = endpoint_url

    def client(self, service: str) -> Any:
        return self._session.client(service, endpoint_url=self._endpoint_url)


class _NoValue:
    """AWS::NoValue: the property disappears."""


NO_VALUE = _NoValue()


class _Resolver:
    """Resolves the intrinsic functions this template uses, against a deployed stack."""

    def __init__(
        self,
        template: Mapping[str, Any],
        params: Mapping[str, str],
        physical: Mapping[str, str],
        pseudo: Mapping[str, str],
    ) -> None:
        self.template = template
        self.physical = physical
        self.pseudo = pseudo
        self.params: dict[str, Any] = {}
        for name, spec in template.get("Parameters", {}).items():
            raw = params.get(name, spec.get("Default", ""))
            raw = str(raw)
            self.params[name] = raw.split(",") if spec["Type"] == "CommaDelimitedList" else raw

    def condition(self, name: str | None) -> bool:
        if name is None:
            return True
        return bool(self.value(self.template["Conditions"][name]))

    def attr(self, logical: str, attribute: str) -> str:
        rtype = self.template["Resources"][logical]["Type"]
        pid = self.physical[logical]
        p, region, account = self.pseudo["AWS::Partition"], self.pseudo["AWS::Region"], self.pseudo["AWS::AccountId"]
        if attribute == "Arn":
            if rtype == "AWS::SQS::Queue":
                return f"arn:{p}:sqs:{region}:{account}:{pid.rstrip('/').rsplit('/', 1)[-1]}"
            if rtype == "AWS::S3::Bucket":
                return f"arn:{p}:s3:::{pid}"
            if rtype == "AWS::IAM::Role":
                return f"arn:{p}:iam::{account}:role/{pid}"
            if rtype == "AWS::KMS::Key":
                return pid if pid.startswith("arn:") else f"arn:{p}:kms:{region}:{account}:key/{pid}"
            if rtype == "AWS::Logs::LogGroup":
                return f"arn:{p}:logs:{region}:{account}:log-group:{pid}:*"
        if attribute == "QueueName" and rtype == "AWS::SQS::Queue":
            return pid.rstrip("/").rsplit("/", 1)[-1]
        raise TemplateError(f"cannot resolve Fn::GetAtt {logical}.{attribute} ({rtype})")

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        if name in self.physical:
            return self.physical[name]
        resource = self.template.get("Resources", {}).get(name)
        if resource is not None:
            # Not created by the endpoint (e.g. a Glue SecurityConfiguration in moto): its Ref is its name.
            props = resource.get("Properties", {})
            named = (
                props.get("Name")
                or props.get("ConnectionInput", {}).get("Name")
                or props.get("DatabaseInput", {}).get("Name")
            )
            return self.value(named) if named is not None else NO_VALUE
        raise TemplateError(f"cannot resolve Ref {name}")

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(x) for x in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.attr(logical, attribute)
            if key == "Fn::Sub":
                text, mapping = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                local = {k: self.value(v) for k, v in mapping.items()}

                def sub(match: re.Match[str]) -> str:
                    var = match.group(1)
                    if var.startswith("!"):
                        return "${" + var[1:] + "}"
                    if var in local:
                        return str(local[var])
                    if "." in var:
                        return self.attr(*var.split(".", 1))
                    return str(self.ref(var))

                return re.sub(r"\$\{([^}]+)\}", sub, text)
            if key == "Fn::If":
                cond, yes, no = arg
                return self.value(yes if self.condition(cond) else no)
            if key == "Fn::Join":
                return arg[0].join(str(x) for x in self.value(arg[1]))
            if key == "Fn::Select":
                return self.value(arg[1])[int(self.value(arg[0]))]
            if key == "Fn::Equals":
                return self.value(arg[0]) == self.value(arg[1])
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(x) for x in arg)
            if key == "Fn::Or":
                return any(self.value(x) for x in arg)
            if key == "Condition":
                return self.condition(arg)
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not NO_VALUE}


def _apply_fixups(
    template: Mapping[str, Any],
    resolver: _Resolver,
    physical: Mapping[str, str],
    missing: Mapping[str, str],
    session: Any,
) -> tuple[list[str], set[str]]:
    """Apply, through the service APIs, what the endpoint's CloudFormation left out.

    Only idempotent "put" calls, derived from the template: re-running is harmless, and on AWS
    (where CloudFormation applies them itself) this is skipped unless resources are missing.
    """
    done: list[str] = []
    s3 = session.client("s3")
    for logical, res in template["Resources"].items():
        if res["Type"] != "AWS::S3::Bucket" or logical not in physical:
            continue
        props = resolver.value(res.get("Properties", {}))
        bucket = physical[logical]
        status = props.get("VersioningConfiguration", {}).get("Status")
        if status and s3.get_bucket_versioning(Bucket=bucket).get("Status") != status:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})
            done.append(f"{logical}: versioning {status}")
        notification = props.get("NotificationConfiguration")
        if notification:
            current = s3.get_bucket_notification_configuration(Bucket=bucket)
            if not current.get("QueueConfigurations"):
                s3.put_bucket_notification_configuration(
                    Bucket=bucket, NotificationConfiguration=_api_notification(notification)
                )
                done.append(
                    f"{logical}: notification to {len(notification.get('QueueConfigurations', []))} queue rules"
                )
    for logical, res in template["Resources"].items():
        if res["Type"] != "AWS::DynamoDB::Table" or logical not in physical:
            continue
        props = resolver.value(res.get("Properties", {}))
        table = physical[logical]
        ddb = session.client("dynamodb")
        ttl = props.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled"):
            current = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
            if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                ddb.update_time_to_live(
                    TableName=table, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
                )
                done.append(f"{logical}: TTL on {ttl['AttributeName']}")
        pitr = props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled")
        if pitr:
            backups = ddb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
            status = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
            if status != "ENABLED":
                ddb.update_continuous_backups(
                    TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
                )
                done.append(f"{logical}: point-in-time recovery")
    handled: set[str] = set()
    for logical, rtype in missing.items():
        if rtype == "AWS::Glue::Job":
            _create_glue_job(session.client("glue"), resolver.value(template["Resources"][logical]["Properties"]))
            done.append(f"{logical}: Glue job created through the Glue API")
            handled.add(logical)
        elif rtype == "AWS::Glue::Database":
            # The Iceberg table's database (the job's role may not create one); moto's CloudFormation skips it.
            name, created = _create_glue_database(
                session.client("glue"), resolver.value(template["Resources"][logical])
            )
            if created:
                done.append(f"{logical}: Glue database {name} created through the Glue API")
            handled.add(logical)
    return done, handled


def _api_notification(cfn_config: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation NotificationConfiguration -> S3 API shape (Queue -> QueueArn, S3Key rules)."""
    queues = []
    for q in cfn_config.get("QueueConfigurations", []):
        rules = [
            {"Name": r["Name"], "Value": r["Value"]}
            for r in q.get("Filter", {}).get("S3Key", {}).get("Rules", [])
            if r["Value"] != "" or r["Name"] != "prefix"  # an empty prefix rule means "whole bucket"
        ]
        entry: dict[str, Any] = {"QueueArn": q["Queue"], "Events": [q["Event"]]}
        if rules:
            entry["Filter"] = {"Key": {"FilterRules": rules}}
        queues.append(entry)
    return {"QueueConfigurations": queues}


def _create_glue_database(glue: Any, resource: Mapping[str, Any]) -> tuple[str, bool]:
    """The database's name, and whether it was created now (False: it existed)."""
    database = dict(resource["Properties"]["DatabaseInput"])
    try:
        glue.get_database(Name=database["Name"])
        return str(database["Name"]), False
    except glue.exceptions.EntityNotFoundException:
        glue.create_database(DatabaseInput=database)
        return str(database["Name"]), True


def _create_glue_job(glue: Any, props: Mapping[str, Any]) -> None:
    try:
        glue.get_job(JobName=props["Name"])
        return
    except glue.exceptions.EntityNotFoundException:
        pass
    kwargs: dict[str, Any] = {
        "Name": props["Name"],
        "Role": props["Role"],
        "Command": props["Command"],
        "DefaultArguments": props.get("DefaultArguments", {}),
        "GlueVersion": props.get("GlueVersion"),
        "WorkerType": props.get("WorkerType"),
        "NumberOfWorkers": int(props.get("NumberOfWorkers", 2)),
        "Timeout": int(props.get("Timeout", 60)),
        "MaxRetries": int(props.get("MaxRetries", 0)),
        "ExecutionClass": props.get("ExecutionClass", "STANDARD"),
    }
    if props.get("ExecutionProperty"):
        kwargs["ExecutionProperty"] = {"MaxConcurrentRuns": int(props["ExecutionProperty"]["MaxConcurrentRuns"])}
    if props.get("SecurityConfiguration"):
        kwargs["SecurityConfiguration"] = props["SecurityConfiguration"]
    glue.create_job(**{k: v for k, v in kwargs.items() if v is not None})


# --------------------------------------------------------------------------- Chalice IAM policies

# Function families: one policy file each; Chalice (autogen_policy false + a per-function
# iam_policy_file) still gives every function its own role ndjson-parquet-<stage>-<function>.
FUNCTION_FAMILIES: dict[str, tuple[str, ...]] = {
    "tracker": ("track_files",),
    "batching": ("count_arrivals", "flush_stale"),
    "workflow": ("claim_run", "finalize", "compensate", "recover"),
}
POLICY_STAGES = ("dev", "prod")

# Actions that support no resource-level permission: Resource "*" is the only valid value.
# The wildcard test allows "*" for these and nothing else (key policies aside, where "*" = this key).
STAR_ONLY_ACTIONS = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        "cloudwatch:PutMetricData",  # narrowed by a cloudwatch:namespace condition instead
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeVpcEndpoints",
        "ec2:DescribeRouteTables",
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSubnets",
        "ec2:DescribeVpcAttribute",
        "dynamodb:ListStreams",  # the Lambda poller lists the table's streams; no resource type
    }
)


def _arns(stage: str) -> dict[str, str]:
    # Account and region are "*": names are stage-unique and deterministic, so the files are static
    # and valid in any account; buckets end in -<account>-<region>, hence the trailing "-*".
    n = f"{APP_NAME}-{stage}"
    return {
        "table": f"arn:aws:dynamodb:*:*:table/{n}-tracking",
        "index": f"arn:aws:dynamodb:*:*:table/{n}-tracking/index/*",
        "stream": f"arn:aws:dynamodb:*:*:table/{n}-tracking/stream/*",
        "ingest": f"arn:aws:sqs:*:*:{n}-ingest",
        "ingest_dlq": f"arn:aws:sqs:*:*:{n}-ingest-dlq",
        "events_dlq": f"arn:aws:sqs:*:*:{n}-events-dlq",
        "stream_dlq": f"arn:aws:sqs:*:*:{n}-stream-dlq",
        "input": f"arn:aws:s3:::{n}-input-*",
        "manifests": f"arn:aws:s3:::{n}-manifests-*",
        "output": f"arn:aws:s3:::{n}-output-*",
        "quarantine": f"arn:aws:s3:::{n}-quarantine-*",
        "bus": f"arn:aws:events:*:*:event-bus/{n}",
        "state_machine": f"arn:aws:states:*:*:stateMachine:{n}-convert-manifest",
        "executions": f"arn:aws:states:*:*:execution:{n}-convert-manifest:*",
        "topic": f"arn:aws:sns:*:*:{n}-alerts",
        "logs": f"arn:aws:logs:*:*:log-group:/aws/lambda/{n}-*",
        "alias": f"alias/{n}",
        # The Iceberg table under the stack's default names (GlueDatabaseName, GlueTableName).
        "glue_catalog": "arn:aws:glue:*:*:catalog",
        "glue_database": f"arn:aws:glue:*:*:database/{APP_NAME.replace('-', '_')}_{stage}",
        "glue_table": f"arn:aws:glue:*:*:table/{APP_NAME.replace('-', '_')}_{stage}/dataset",
    }


def chalice_policy(stage: str, family: str) -> dict[str, Any]:
    """Least-privilege IAM policy of one function family, scoped to the stage's resources."""
    a = _arns(stage)
    common: list[dict[str, Any]] = [
        {
            "Sid": "OwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": [a["logs"], a["logs"] + ":*"],
        },
        {
            # S3 SSE-KMS and SQS SSE need the caller to use the key; found by alias since its id is random.
            "Sid": "DataKeyByAlias",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": "arn:aws:kms:*:*:key/*",
            "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": a["alias"]}},
        },
        {
            "Sid": "XRayNoResourceLevel",
            "Effect": "Allow",
            "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
            "Resource": "*",
        },
        {
            # Only used when the stage sets subnet_ids/security_group_ids (Lambdas in private subnets).
            "Sid": "VpcDescribeNoResourceLevel",
            "Effect": "Allow",
            "Action": ["ec2:DescribeNetworkInterfaces"],
            "Resource": "*",
        },
        {
            "Sid": "VpcEnis",
            "Effect": "Allow",
            "Action": [
                "ec2:CreateNetworkInterface",
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            ],
            "Resource": [
                "arn:aws:ec2:*:*:network-interface/*",
                "arn:aws:ec2:*:*:subnet/*",
                "arn:aws:ec2:*:*:security-group/*",
            ],
        },
    ]
    if family == "tracker":
        specific = [
            {
                "Sid": "IngestQueue",
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                "Resource": a["ingest"],
            },
            # The handler sends a message it can never process to the DLQ itself (with a reason attribute),
            # so one poison message does not fail its neighbours' batch.
            {"Sid": "IngestDlq", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": a["ingest_dlq"]},
            {"Sid": "TrackFiles", "Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": a["table"]},
        ]
    elif family == "batching":
        specific = [
            {
                "Sid": "TableStream",
                "Effect": "Allow",
                "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator"],
                "Resource": a["stream"],
            },
            {"Sid": "ListStreamsNoResourceLevel", "Effect": "Allow", "Action": "dynamodb:ListStreams", "Resource": "*"},
            {
                "Sid": "CountClaimSeal",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",  # abandon_seal drops an empty seal
                    "dynamodb:Query",
                    "dynamodb:BatchGetItem",
                ],
                "Resource": [a["table"], a["index"]],
            },
            {"Sid": "WriteManifests", "Effect": "Allow", "Action": "s3:PutObject", "Resource": a["manifests"] + "/*"},
            {"Sid": "EmitManifestReady", "Effect": "Allow", "Action": "events:PutEvents", "Resource": a["bus"]},
            # The stream mapping's on-failure destination is sent with the function's role.
            {"Sid": "StreamOnFailure", "Effect": "Allow", "Action": "sqs:SendMessage", "Resource": a["stream_dlq"]},
        ]
    elif family == "workflow":
        specific = [
            {
                "Sid": "ClaimFinalizeCompensate",
                "Effect": "Allow",
                "Action": [
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",  # recover's resume_seal drops an empty seal
                    "dynamodb:Query",
                    "dynamodb:ConditionCheckItem",
                ],
                "Resource": [a["table"], a["index"]],
            },
            # recover's pass over files claimed by no manifest scans the status index.
            {"Sid": "RecoverOrphanScan", "Effect": "Allow", "Action": "dynamodb:Scan", "Resource": a["index"]},
            {
                "Sid": "ReadManifestsAndSummaries",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                # Run summaries under --OUTPUT_PATH (data/); the Iceberg table (table/) is the Glue job's.
                "Resource": [a["manifests"] + "/*", a["output"] + "/data/*"],
            },
            # recover's resume_seal writes the manifest a crashed sealer left unwritten.
            {
                "Sid": "ResumeSealWritesManifest",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": a["manifests"] + "/*",
            },
            {
                "Sid": "ListRunOutput",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": [a["output"], a["quarantine"]],
            },
            {
                # Compensate's delete_objects of a failed run's partial output and quarantine.
                "Sid": "CompensateDeletesRunOutput",
                "Effect": "Allow",
                "Action": "s3:DeleteObject",
                # Never the table's files (table/): a snapshot may reference them.
                "Resource": [a["output"] + "/data/*", a["quarantine"] + "/*"],
            },
            {"Sid": "Alerts", "Effect": "Allow", "Action": "sns:Publish", "Resource": a["topic"]},
            {
                # Compensate: did the failed run commit to the table? (read only: pointer, snapshots)
                "Sid": "ReadTableCommits",
                "Effect": "Allow",
                "Action": "glue:GetTable",
                "Resource": [a["glue_catalog"], a["glue_database"], a["glue_table"]],
            },
            {
                "Sid": "ReadTableMetadata",
                "Effect": "Allow",
                "Action": "s3:GetObject",
                "Resource": a["output"] + "/table/metadata/*",
            },
            {
                "Sid": "RecoverExecutions",
                "Effect": "Allow",
                "Action": "states:DescribeExecution",
                "Resource": a["executions"],
            },
            {"Sid": "RecoverReEmits", "Effect": "Allow", "Action": "events:PutEvents", "Resource": a["bus"]},
        ]
    else:
        raise ValueError(f"unknown function family {family!r}; known: {sorted(FUNCTION_FAMILIES)}")
    return {"Version": "2012-10-17", "Statement": specific + common}


def chalice_policy_filename(stage: str, family: str) -> str:
    return f"policy-{stage}-{family}.json"


def chalice_stage_iam_config(stage: str) -> dict[str, Any]:
    """The keys a stage of .chalice/config.json needs for these policy files."""
    return {
        "autogen_policy": False,
        "lambda_functions": {
            fn: {"iam_policy_file": chalice_policy_filename(stage, family)}
            for family, fns in FUNCTION_FAMILIES.items()
            for fn in fns
        },
    }


def write_chalice_policies(
    chalice_dir: Path = REPO_ROOT / ".chalice", stages: Iterable[str] = POLICY_STAGES
) -> list[Path]:
    written = []
    for stage in stages:
        for family in FUNCTION_FAMILIES:
            path = chalice_dir / chalice_policy_filename(stage, family)
            path.write_text(json.dumps(chalice_policy(stage, family), indent=2) + "\n", encoding="utf-8")
            written.append(path)
    return written


# Stack output -> Chalice environment variable (chalicelib/settings.py reads these).
OUTPUT_TO_ENV = {
    "TableName": "TABLE_NAME",
    "ManifestBucketName": "MANIFEST_BUCKET",
    "EventBusName": "EVENT_BUS_NAME",
    "InputPrefix": "INPUT_PREFIX",
    "InputBucketName": "INPUT_BUCKET",  # the tracker dead-letters notifications of any other bucket
    "OutputPath": "OUTPUT_PATH",
    "QuarantinePath": "QUARANTINE_PATH",
    "AlertsTopicArn": "ALERTS_TOPIC_ARN",
    "StateMachineArn": "STATE_MACHINE_ARN",
    "IngestDlqUrl": "INGEST_DLQ_URL",
    "EventsDlqUrl": "EVENTS_DLQ_URL",
    # Read by app.py at import time to wire the event sources (queue and stream ARNs).
    "IngestQueueArn": "INGEST_QUEUE_ARN",
    "IngestQueueName": "INGEST_QUEUE_NAME",
    "TableStreamArn": "TRACKING_STREAM_ARN",
    # The Iceberg table, for Compensate's check of a failed run's commit (chalicelib/table_commits.py).
    "DatasetDatabaseName": "ICEBERG_NAMESPACE",
    "DatasetTableName": "ICEBERG_TABLE",
    # ClaimRun's engine rule (chalicelib/workflow/engine.py): the stack's parameters, glue without a converter.
    "LambdaMaxBytes": "LAMBDA_MAX_BYTES",
    "ConvertEngine": "CONVERT_ENGINE",
}


def apply_outputs_to_chalice_config(config: dict[str, Any], stage: str, outputs: Mapping[str, str]) -> dict[str, Any]:
    """Stage config with the stack outputs as environment variables, the IAM keys and, with a VPC,
    subnet_ids/security_group_ids. Existing keys the stack does not own are kept."""
    stages = config.setdefault("stages", {})
    stage_cfg = stages.setdefault(stage, {})
    env = stage_cfg.setdefault("environment_variables", {})
    for output, var in OUTPUT_TO_ENV.items():
        if output in outputs:
            env[var] = outputs[output]
    # LOG_LEVEL: the stage's own value in config.json wins; the stack's LogLevel only fills a gap.
    if "LogLevel" in outputs:
        env.setdefault("LOG_LEVEL", outputs["LogLevel"])
    # The custom-metric alarms select on Powertools' "service" dimension, one per stage.
    env["POWERTOOLS_SERVICE_NAME"] = f"{APP_NAME}-{stage}"
    iam = chalice_stage_iam_config(stage)
    stage_cfg["autogen_policy"] = iam["autogen_policy"]
    functions = stage_cfg.setdefault("lambda_functions", {})
    for fn, cfg in iam["lambda_functions"].items():
        functions.setdefault(fn, {}).update(cfg)
    if outputs.get("SubnetIds") and outputs.get("SecurityGroupIds"):
        stage_cfg["subnet_ids"] = outputs["SubnetIds"].split(",")
        stage_cfg["security_group_ids"] = outputs["SecurityGroupIds"].split(",")
    stage_cfg.setdefault("xray", True)
    return config


def main(argv: list[str] | None = None) -> int:
    """Helpers for infra/deploy.sh: render, parameters, policies, chalice config."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m ndjson_parquet.infra_template")
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="write the deployable template (ASL inlined)")
    r.add_argument("--stage", required=True)
    r.add_argument("--out", required=True)
    sub.add_parser("policies", help="(re)write .chalice/policy-<stage>-<family>.json")
    c = sub.add_parser("chalice-config", help="merge stack outputs (JSON file) into .chalice/config.json")
    c.add_argument("--stage", required=True)
    c.add_argument("--outputs", required=True, help="JSON: {OutputKey: OutputValue} or describe-stacks Outputs list")
    c.add_argument("--config", default=str(REPO_ROOT / ".chalice" / "config.json"))
    args = parser.parse_args(argv)
    if args.cmd == "render":
        Path(args.out).write_text(render_template(args.stage), encoding="utf-8")
    elif args.cmd == "policies":
        for path in write_chalice_policies():
            print(path)
    else:
        raw = json.loads(Path(args.outputs).read_text(encoding="utf-8"))
        outputs = {o["OutputKey"]: o["OutputValue"] for o in raw} if isinstance(raw, list) else raw
        config_path = Path(args.config)
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config_path.write_text(
            json.dumps(apply_outputs_to_chalice_config(config, args.stage, outputs), indent=2) + "\n", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
