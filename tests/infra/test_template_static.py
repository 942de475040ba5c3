"""Static checks of the infrastructure: cfn-lint, checkov, IAM wildcards, the one-ASL rendering."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ndjson_parquet import infra_template as it

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TEMPLATES = sorted(p for p in (ROOT / "infra").glob("*.yaml") if not p.name.startswith("."))

# Checks skipped on one resource (Metadata.checkov.skip in the template), each with its reason there.
DOCUMENTED_RESOURCE_SKIPS = {
    ("CKV_AWS_18", "AWS::S3::Bucket.AccessLogsBucket"),
    ("CKV_AWS_116", "AWS::Lambda::Function.ConverterFunction"),  # synchronous only: a DLQ serves async calls
}


def test_cfn_lint_clean_on_every_template_and_the_rendered_one(tmp_path: Path) -> None:
    rendered = tmp_path / "pipeline-prod.json"
    rendered.write_text(it.render_template("prod", allow_placeholder=True), encoding="utf-8")
    proc = subprocess.run(
        [str(BIN / "cfn-lint"), *map(str, TEMPLATES), str(rendered)], capture_output=True, text=True, check=False
    )
    assert TEMPLATES, "no templates under infra/"
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_checkov_has_no_failures_and_only_documented_skips() -> None:
    # One checkov run per session: it takes several seconds to start.
    proc = subprocess.run(
        [str(BIN / "checkov"), "--config-file", str(ROOT / "infra" / ".checkov.yaml"), "-d", str(ROOT / "infra"),
         "-o", "json"],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [(c["check_id"], c["resource"]) for r in reports for c in r["results"]["failed_checks"]]
    skipped = {(c["check_id"], c["resource"]) for r in reports for c in r["results"]["skipped_checks"]}
    passed = sum(len(r["results"]["passed_checks"]) for r in reports)
    assert failed == []
    assert skipped <= DOCUMENTED_RESOURCE_SKIPS
    assert passed > 50  # it really scanned the template


# ----------------------------------------------------------------------------- IAM wildcards


def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    st = doc.get("Statement", [])
    return st if isinstance(st, list) else [st]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def wildcard_findings(doc: dict[str, Any], where: str) -> list[str]:
    """Allow statements whose Resource is "*" for an action outside STAR_ONLY_ACTIONS, and any
    service-wide action wildcard ("s3:*", "*")."""
    findings = []
    for st in _statements(doc):
        if st.get("Effect") != "Allow":
            continue  # Deny "*" (TLS-only policies) narrows, never widens
        actions = [a for a in _as_list(st.get("Action", [])) if isinstance(a, str)]
        for action in actions:
            if action == "*" or action.endswith(":*"):
                findings.append(f"{where}: action wildcard {action}")
        if "*" in _as_list(st.get("Resource", [])):
            for action in actions:
                if action not in it.STAR_ONLY_ACTIONS:
                    findings.append(f"{where}: {action} on Resource '*'")
    return findings


def _template_policies(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for name, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            docs += [(f"{name}/{p['PolicyName']}", p["PolicyDocument"]) for p in props.get("Policies", [])]
        elif "PolicyDocument" in props:  # IAM policies and bucket/queue/topic policies
            docs.append((name, props["PolicyDocument"]))
    return docs


def test_no_wildcard_resource_outside_the_documented_set() -> None:
    template = it.load_template()
    docs = _template_policies(template)
    for path in sorted((ROOT / ".chalice").glob("policy-*.json")):
        docs.append((path.name, json.loads(path.read_text(encoding="utf-8"))))
    # KMS key policies are excluded on purpose: there "Resource": "*" means "this key".
    assert len(docs) >= 12
    findings = [f for where, doc in docs for f in wildcard_findings(doc, where)]
    assert findings == []


def test_wildcard_walker_catches_a_wildcard() -> None:
    bad = {"Statement": [{"Effect": "Allow", "Action": ["dynamodb:PutItem", "s3:*"], "Resource": "*"}]}
    assert wildcard_findings(bad, "x") == [
        "x: action wildcard s3:*",
        "x: dynamodb:PutItem on Resource '*'",
        "x: s3:* on Resource '*'",
    ]


def test_every_role_takes_the_optional_permissions_boundary() -> None:
    template = it.load_template()
    roles = {n: r for n, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"}
    assert set(roles) == {"EventsRole", "StateMachineRole", "GlueRole", "TableOptimizerRole", "ConverterRole"}
    for role in roles.values():
        assert role["Properties"]["PermissionsBoundary"] == {
            "Fn::If": ["HasBoundary", {"Ref": "PermissionsBoundaryArn"}, {"Ref": "AWS::NoValue"}]
        }


def test_committed_chalice_policies_match_the_generator() -> None:
    for stage in it.POLICY_STAGES:
        for family in it.FUNCTION_FAMILIES:
            path = ROOT / ".chalice" / it.chalice_policy_filename(stage, family)
            assert json.loads(path.read_text(encoding="utf-8")) == it.chalice_policy(stage, family), path
    # Scoped to the stage: prod's files never name dev resources.
    prod = json.dumps([it.chalice_policy("prod", f) for f in it.FUNCTION_FAMILIES])
    assert "ndjson-parquet-dev" not in prod and "ndjson-parquet-prod-tracking" in prod


def test_every_chalice_function_has_a_family() -> None:
    assigned = [fn for fns in it.FUNCTION_FAMILIES.values() for fn in fns]
    assert sorted(assigned) == sorted(it.CHALICE_FUNCTIONS)


# ----------------------------------------------------------------------------- properties the issue names


def test_ingest_queue_visibility_is_at_least_six_tracker_timeouts() -> None:
    template = it.load_template()
    visibility = int(template["Parameters"]["IngestVisibilityTimeoutSeconds"]["Default"])
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    timeouts = [60]  # Chalice's default lambda_timeout
    for scope in [config, *config.get("stages", {}).values()]:
        timeouts.append(scope.get("lambda_timeout", 0))
        timeouts.append(scope.get("lambda_functions", {}).get("track_files", {}).get("lambda_timeout", 0))
    assert visibility >= 6 * max(timeouts)


def test_glue_job_arguments_and_execution_class() -> None:
    job = it.load_template()["Resources"]["GlueJob"]["Properties"]
    args = job["DefaultArguments"]
    assert job["GlueVersion"] == "5.0"
    assert args["--COMPRESSION_TYPE"] == {"Ref": "CompressionType"}
    assert args["--job-bookmark-option"] == "job-bookmark-disable"
    assert args["--enable-continuous-cloudwatch-log"] == "true"
    assert job["ExecutionClass"] == {"Ref": "GlueExecutionClass"}
    assert job["SecurityConfiguration"] == {"Ref": "GlueSecurityConfiguration"}


def _resolved(stage: str = "prod", params: dict[str, str] | None = None) -> tuple[Any, dict[str, Any]]:
    """The template resolved for one sample account (the resolver the IAM check uses)."""
    from ndjson_parquet.iam import policies

    resolver = policies._resolver(stage)
    if params:
        for name, value in params.items():
            resolver.params[name] = value
    return resolver, resolver.template["Resources"]


def test_the_table_has_a_prefix_of_its_own_apart_from_output_path_and_quarantine() -> None:
    resolver, resources = _resolved()
    args = resolver.value(resources["GlueJob"]["Properties"]["DefaultArguments"])
    location = args["--TABLE_LOCATION"].rstrip("/") + "/"
    output, quarantine = args["--OUTPUT_PATH"], args["--QUARANTINE_PATH"]
    assert location == "s3://ndjson-parquet-prod-output-123456789012-us-east-1/table/"
    for other in (output, quarantine):
        assert not other.startswith(location) and not location.startswith(other), (location, other)
    # Orphan file deletion is pointed at exactly that prefix.
    orphans = resolver.value(resources["TableOrphanFileDeletionOptimizer"]["Properties"])
    config = orphans["TableOptimizerConfiguration"]["OrphanFileDeletionConfiguration"]["IcebergConfiguration"]
    assert config["Location"] == location
    assert config["OrphanFileRetentionPeriodInDays"] * 24 * 60 > int(
        it.load_template()["Parameters"]["GlueTimeoutMinutes"]["MaxValue"]
    )  # a running job's uncommitted files are never orphans yet


def test_glue_job_table_arguments_follow_the_stack_parameters() -> None:
    resolver, resources = _resolved()
    args = resolver.value(resources["GlueJob"]["Properties"]["DefaultArguments"])
    assert args["--TABLE_CATALOG"] == "glue"
    assert args["--TABLE_NAMESPACE"] == "ndjson_parquet_prod"  # GlueDatabaseName "" = per stage
    assert args["--TABLE_NAME"] == "dataset"
    assert args["--SCHEMA_MODE"] == "addNewColumns"
    database = resolver.value(resources["IcebergDatabase"]["Properties"])["DatabaseInput"]["Name"]
    assert database == args["--TABLE_NAMESPACE"]
    modes = it.load_template()["Parameters"]["SchemaMode"]["AllowedValues"]
    assert modes == ["addNewColumns", "rescue", "failOnNewColumns"]

    resolver, resources = _resolved(
        params={"GlueDatabaseName": "lake", "GlueTableName": "events", "SchemaMode": "rescue"}
    )
    args = resolver.value(resources["GlueJob"]["Properties"]["DefaultArguments"])
    assert (args["--TABLE_NAMESPACE"], args["--TABLE_NAME"], args["--SCHEMA_MODE"]) == ("lake", "events", "rescue")
    outputs = it.load_template()["Outputs"]
    assert resolver.value(outputs["DatasetDatabaseName"]["Value"]) == "lake"
    assert resolver.value(outputs["DatasetTableName"]["Value"]) == "events"


def test_table_grants_never_delete_metadata_and_name_the_catalog_database_and_table() -> None:
    from ndjson_parquet.iam.policies import template_role_policy

    glue = template_role_policy("prod", "glue")["Statement"]
    table_prefix = "arn:aws:s3:::ndjson-parquet-prod-output-123456789012-us-east-1/table/"
    deletes = [r for s in glue if "s3:DeleteObject" in _as_list(s["Action"]) for r in _as_list(s["Resource"])]
    # The job deletes only its own uncommitted data files; metadata is never deleted by the job.
    assert [r for r in deletes if r.startswith(table_prefix)] == [table_prefix + "data/*"]
    assert table_prefix.replace("/table/", "/*") not in deletes  # not the whole output bucket
    (catalog,) = [s for s in glue if s.get("Sid") == "TableCatalog"]
    assert sorted(catalog["Action"]) == ["glue:CreateTable", "glue:GetTable", "glue:UpdateTable"]
    assert catalog["Resource"] == [
        "arn:aws:glue:us-east-1:123456789012:catalog",
        "arn:aws:glue:us-east-1:123456789012:database/ndjson_parquet_prod",
        "arn:aws:glue:us-east-1:123456789012:table/ndjson_parquet_prod/dataset",
    ]
    assert not any("glue:CreateDatabase" in _as_list(s["Action"]) for s in glue)  # the stack creates it
    optimizer = template_role_policy("prod", "optimizer")["Statement"]
    files = [r for s in optimizer if s["Sid"] == "TableFiles" for r in _as_list(s["Resource"])]
    assert files == [table_prefix + "*"]


def test_table_optimizers_wait_for_the_table_and_compaction_is_opt_in() -> None:
    template = it.load_template()
    assert template["Parameters"]["TableMaintenance"]["Default"] == "none"
    optimizers = {n: r for n, r in template["Resources"].items() if r["Type"] == "AWS::Glue::TableOptimizer"}
    kinds = {r["Properties"]["Type"]: r["Condition"] for r in optimizers.values()}
    assert kinds == {
        "retention": "TableCleanup",
        "orphan_file_deletion": "TableCleanup",
        "compaction": "TableCompaction",
    }
    assert template["Resources"]["TableOptimizerRole"]["Condition"] == "TableCleanup"
    for params, created in (
        ({}, set()),
        ({"TableMaintenance": "cleanup"}, {"retention", "orphan_file_deletion"}),
        ({"TableMaintenance": "cleanup-and-compaction"}, {"retention", "orphan_file_deletion", "compaction"}),
    ):
        resolver, _ = _resolved(params=params)
        got = {r["Properties"]["Type"] for r in optimizers.values() if resolver.condition(r["Condition"])}
        assert got == created, params


def test_every_alarm_has_alarm_and_ok_actions_in_every_stage() -> None:
    resources = it.load_template()["Resources"]
    alarms = {n: r for n, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert len(alarms) >= 8
    for name, alarm in alarms.items():
        assert "Condition" not in alarm, f"{name} must exist in every stage"
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlertsTopic"}], name
        assert alarm["Properties"]["OKActions"] == [{"Ref": "AlertsTopic"}], name


def test_rendered_template_inlines_the_placeholder_until_the_asl_exists(tmp_path: Path) -> None:
    missing = tmp_path / "absent.asl.json"
    with pytest.raises(it.TemplateError):
        it.render_template("dev", asl_path=missing)
    body = json.loads(it.render_template("dev", asl_path=missing, allow_placeholder=True))
    sub = body["Resources"][it.STATE_MACHINE_RESOURCE]["Properties"]["DefinitionString"]["Fn::Sub"]
    assert set(sub[1]) == set(it.ASL_VARIABLES)
    assert body["Parameters"]["Stage"]["Default"] == "dev"


def test_asl_with_unknown_variable_is_rejected(tmp_path: Path) -> None:
    asl = tmp_path / "x.asl.json"
    asl.write_text('{"StartAt":"A","States":{"A":{"Type":"Pass","Result":"${Nope}","End":true}}}', encoding="utf-8")
    with pytest.raises(it.TemplateError, match="Nope"):
        it.render_template("dev", asl_path=asl)


@pytest.mark.skipif(not it.ASL_PATH.exists(), reason="infra/statemachine/convert_manifest.asl.json not written yet")
def test_the_real_asl_file_is_inlined() -> None:
    body = json.loads(it.render_template("prod"))
    text = body["Resources"][it.STATE_MACHINE_RESOURCE]["Properties"]["DefinitionString"]["Fn::Sub"][0]
    assert json.loads(text) == json.loads(it.ASL_PATH.read_text(encoding="utf-8"))


def test_stack_parameters_reject_unknown_names() -> None:
    assert it.stack_parameters("prod", {"GlueExecutionClass": "FLEX"}) == [
        {"ParameterKey": "Stage", "ParameterValue": "prod"},
        {"ParameterKey": "GlueExecutionClass", "ParameterValue": "FLEX"},
    ]
    with pytest.raises(it.TemplateError):
        it.stack_parameters("prod", {"NoSuchParameter": "x"})


def test_committed_chalice_config_uses_the_policy_files() -> None:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))
    for stage in it.POLICY_STAGES:
        stage_cfg = config["stages"][stage]
        want = it.chalice_stage_iam_config(stage)
        assert stage_cfg["autogen_policy"] is False
        assert stage_cfg["xray"] is True
        for fn, cfg in want["lambda_functions"].items():
            assert stage_cfg["lambda_functions"][fn]["iam_policy_file"] == cfg["iam_policy_file"]
            assert (ROOT / ".chalice" / cfg["iam_policy_file"]).exists()


def test_seed_findings_line_references_point_at_their_text() -> None:
    import re

    doc = (ROOT / "docs" / "seed-findings.md").read_text(encoding="utf-8")
    lines = (ROOT / "infra" / "pipeline.yaml").read_text(encoding="utf-8").splitlines()
    refs = re.findall(r"l\.(\d+) `([^`]+)`", doc)
    assert len(refs) >= 25
    wrong = [(n, text) for n, text in refs if text not in lines[int(n) - 1]]
    assert wrong == []
    ids = re.findall(r"^\| ((?:LAMBDA|GLUE|TF)-\d+) \|", doc, flags=re.M)
    assert len(ids) == len(set(ids)) >= 30


def test_every_resource_setting_the_lambdas_read_comes_from_a_stack_output() -> None:
    import re

    source = (ROOT / "chalicelib" / "settings.py").read_text(encoding="utf-8")
    read = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', source))
    # Names of things the stack creates (tuning knobs such as SHARD_COUNT stay in config.json).
    resource_vars = {v for v in read if v.endswith(("_NAME", "_BUCKET", "_ARN", "_URL", "_PATH"))}
    assert resource_vars <= set(it.OUTPUT_TO_ENV.values())
    declared = set(it.load_template()["Outputs"])
    assert set(it.OUTPUT_TO_ENV) <= declared


# ----------------------------------------------------------------------------- the converter function (issue 26)


def test_converter_function_takes_the_glue_jobs_arguments_and_the_stack_knobs() -> None:
    resolver, resources = _resolved(params={"ConverterArtifactKey": "converter/converter-abc.zip"})
    fn = resources["ConverterFunction"]
    assert fn["Condition"] == "HasConverter" and resolver.condition("HasConverter")
    props = resolver.value(fn["Properties"])
    assert props["FunctionName"] == "ndjson-parquet-prod-converter"
    assert (props["Runtime"], props["Handler"]) == ("python3.11", "converter.handler.handler")
    assert props["Code"] == {"S3Bucket": resolver.ref("ScriptsBucket"), "S3Key": "converter/converter-abc.zip"}
    assert props["Role"] == "arn:aws:iam::123456789012:role/ndjson-parquet-prod-converter"
    assert (props["MemorySize"], props["Timeout"], props["EphemeralStorage"]) == ("3538", "300", {"Size": "2048"})
    assert props["ReservedConcurrentExecutions"] == "10"
    assert props["KmsKeyArn"].endswith(":key/" + "1234abcd-12ab-34cd-56ef-1234567890ab")
    assert "VpcConfig" not in props  # only with VpcId
    # the same arguments as the Glue job, by the same names (converter/handler.py reads its environment)
    job = resolver.value(resources["GlueJob"]["Properties"]["DefaultArguments"])
    env = props["Environment"]["Variables"]
    shared = {k.removeprefix("--"): v for k, v in job.items() if k.removeprefix("--") in env}
    assert env == shared and set(env) >= {"OUTPUT_PATH", "QUARANTINE_PATH", "TABLE_NAMESPACE", "TABLE_LOCATION"}
    # no artifact (the first deploy, moto): no function, and ClaimRun is told glue
    resolver, _ = _resolved()
    assert not resolver.condition("HasConverter")
    assert resolver.value(it.load_template()["Outputs"]["ConvertEngine"]["Value"]) == "glue"


def test_converter_defaults_follow_the_settings_and_vpc_puts_it_in_the_subnets() -> None:
    from chalicelib.settings import CONVERTER_TIMEOUT_SECONDS, DEFAULT_LAMBDA_MAX_BYTES, Settings

    params = it.load_template()["Parameters"]
    assert int(params["LambdaMaxBytes"]["Default"]) == DEFAULT_LAMBDA_MAX_BYTES
    assert int(params["ConverterTimeoutSeconds"]["Default"]) == CONVERTER_TIMEOUT_SECONDS
    assert int(params["ConverterMemoryMB"]["Default"]) == 2 * 1769  # two vCPUs: two worker processes
    assert params["ConvertEngine"]["AllowedValues"] == ["auto", "lambda", "glue"]
    config = json.loads((ROOT / ".chalice" / "config.json").read_text(encoding="utf-8"))["environment_variables"]
    assert int(config["LAMBDA_MAX_BYTES"]) == DEFAULT_LAMBDA_MAX_BYTES and config["CONVERT_ENGINE"] == "auto"
    base = {"TABLE_NAME": "t", "MANIFEST_BUCKET": "m", "EVENT_BUS_NAME": "b"}
    assert Settings.from_env(base).lambda_max_bytes == DEFAULT_LAMBDA_MAX_BYTES
    resolver, resources = _resolved(
        params={"ConverterArtifactKey": "k", "VpcId": "vpc-1", "SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}
    )
    props = resolver.value(resources["ConverterFunction"]["Properties"])
    assert props["VpcConfig"] == {"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"]}


def test_the_state_machine_may_invoke_the_converter_and_nothing_else_new() -> None:
    from ndjson_parquet.iam.policies import template_role_policy

    statements = template_role_policy("prod", "states")["Statement"]
    invokes = [
        r for s in statements if "lambda:InvokeFunction" in _as_list(s["Action"]) for r in _as_list(s["Resource"])
    ]
    assert "arn:aws:lambda:us-east-1:123456789012:function:ndjson-parquet-prod-converter" in invokes
    assert not any(r.endswith(("*", ":converter:*")) for r in invokes)  # no wildcard, no versions/aliases
    body = json.loads(it.render_template("prod"))
    sub = body["Resources"][it.STATE_MACHINE_RESOURCE]["Properties"]["DefinitionString"]["Fn::Sub"][1]
    assert sub["ConverterFunctionArn"] == it.load_template()["Outputs"]["ConverterFunctionArn"]["Value"]
