"""The static call map (ndjson_parquet/iam) against the policies: every call allowed, every grant needed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ndjson_parquet import infra_template as it
from ndjson_parquet.iam import callmap, check, policies, scan
from ndjson_parquet.iam.actions import UnknownOperation, iam_action, method_name

STAGES = ("dev", "prod")
ALL_ROLES = tuple(callmap.ROLES)


def test_every_boto3_call_in_the_code_is_in_the_map_and_every_code_entry_still_exists() -> None:
    assert scan.unmapped_sites() == []


def test_scan_flags_a_new_boto3_call(tmp_path: Path) -> None:
    (tmp_path / "chalicelib").mkdir()
    (tmp_path / "chalicelib" / "new.py").write_text(
        "def f(s3, sfn):\n    s3.put_object_acl(Bucket='b', Key='k')\n    sfn.get_paginator('list_executions')\n"
    )
    sites = [str(s) for s in scan.scan(tmp_path, ["chalicelib"])]
    assert sites == ["chalicelib/new.py:2: s3.put_object_acl(", "chalicelib/new.py:3: sfn.list_executions("]
    problems = scan.unmapped_sites(tmp_path)
    assert any("s3.put_object_acl(" in p for p in problems)


def test_every_mapped_operation_exists_in_botocore_and_every_resource_is_known() -> None:
    from ndjson_parquet.iam.actions import PERMISSION_ONLY, operation_names
    from ndjson_parquet.iam.resources import RESOURCES

    for calls in callmap.PATHS.values():
        for call in calls:
            known = (call.service, call.operation) in PERMISSION_ONLY
            assert known or call.operation in operation_names(call.service), call
            assert call.resource in RESOURCES, call


def test_botocore_validation_rejects_an_unknown_operation() -> None:
    assert method_name("dynamodb", "DeleteItem") == "delete_item"
    assert iam_action("s3", "DeleteObjects") == "s3:DeleteObject"
    assert iam_action("stepfunctions", "DescribeExecution") == "states:DescribeExecution"
    with pytest.raises(UnknownOperation):
        iam_action("dynamodb", "DeleteItems")


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("role", ALL_ROLES)
def test_policy_allows_every_call_and_grants_nothing_unused(role: str, stage: str) -> None:
    report = check.check_role(role, stage)
    assert report.missing == []
    assert report.unused_actions == []
    assert report.unused_resources == []


def test_the_four_gaps_of_issue_12_are_mapped_to_the_workflow_and_batching_roles() -> None:
    def needs(role: str, action: str, resource: str) -> bool:
        return any(c.iam_action == action and c.resource == resource for c in callmap.calls_of(role))

    assert needs("workflow", "s3:DeleteObject", "output_object")
    assert needs("workflow", "dynamodb:Scan", "index")
    assert needs("workflow", "s3:PutObject", "manifests_object")
    assert needs("workflow", "dynamodb:DeleteItem", "table")
    assert needs("batching", "dynamodb:DeleteItem", "table")


def test_implicit_kms_actions_come_with_encrypted_resources() -> None:
    tracker = {(c.iam_action, c.why) for c in callmap.calls_of("tracker") if c.service == "kms"}
    assert ("kms:Decrypt", "implicit: sqs:ReceiveMessage on SSE-KMS ingest_queue") in tracker
    assert ("kms:GenerateDataKey", "implicit: sqs:SendMessage on SSE-KMS ingest_dlq") in tracker


def test_a_call_on_a_wildcard_resource_is_an_action_without_resource_level_permissions() -> None:
    allowed = it.STAR_ONLY_ACTIONS | {"events:ListArchives"}
    starred = {c.iam_action for calls in callmap.PATHS.values() for c in calls if c.resource == "*"}
    assert starred <= allowed, starred - allowed


def _drop(policy: dict[str, Any], index: int, action: str) -> dict[str, Any]:
    scratch = copy.deepcopy(policy)
    statement = scratch["Statement"][index]
    actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
    rest = [a for a in actions if a != action]
    if rest:
        statement["Action"] = rest
    else:
        del scratch["Statement"][index]
    return scratch


def _grants(policy: dict[str, Any]) -> list[tuple[int, str]]:
    out = []
    for i, statement in enumerate(policy["Statement"]):
        actions = statement["Action"]
        out += [(i, a) for a in ([actions] if isinstance(actions, str) else actions)]
    return out


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("role", [r for r in ALL_ROLES if r != "operator"])
def test_removing_any_granted_action_fails_the_check_naming_that_action(role: str, stage: str, tmp_path: Path) -> None:
    """Each grant earns its place: in a scratch copy of the policy (the committed Chalice file or
    the template role resolved for one account), removing one action makes the map report that
    action as missing, with the call that needs it."""
    source = tmp_path / f"{role}.json"
    source.write_text(json.dumps(policies.role_policy(stage, role)), encoding="utf-8")
    policy = json.loads(source.read_text(encoding="utf-8"))
    grants = _grants(policy)
    assert grants
    for index, action in grants:
        scratch = tmp_path / f"{role}-without-{action.replace(':', '_')}-{index}.json"
        scratch.write_text(json.dumps(_drop(policy, index, action)), encoding="utf-8")
        report = check.check_role(role, stage, json.loads(scratch.read_text(encoding="utf-8")))
        named = [m for m in report.missing if m.startswith(f"{action} on ")]
        assert named, f"{role}/{stage}: removing {action} (statement {index}) breaks no mapped call"
        assert all("(" in m and "path " in m for m in named)  # names the call site and the path


def test_removal_of_a_chalice_grant_is_caught_from_the_file_not_the_generator(tmp_path: Path) -> None:
    policy = json.loads((it.REPO_ROOT / ".chalice" / "policy-dev-workflow.json").read_text(encoding="utf-8"))
    index = next(i for i, s in enumerate(policy["Statement"]) if s.get("Sid") == "CompensateDeletesRunOutput")
    report = check.check_role("workflow", "dev", _drop(policy, index, "s3:DeleteObject"))
    assert any("s3:DeleteObject" in m and "chalicelib/s3_delete.py" in m for m in report.missing)


def test_an_extra_grant_is_reported_unused() -> None:
    policy = policies.role_policy("dev", "tracker")
    policy["Statement"].append(
        {"Sid": "Extra", "Effect": "Allow", "Action": "dynamodb:DeleteTable", "Resource": "arn:aws:dynamodb:*:*:*"}
    )
    report = check.check_role("tracker", "dev", policy)
    assert report.unused_actions == ["Extra: dynamodb:DeleteTable"]
    assert report.unused_resources == ["Extra: arn:aws:dynamodb:*:*:*"]


def test_operator_policy_is_scoped_to_the_stage_and_has_no_wildcard_outside_the_documented_set() -> None:
    from tests.infra.test_template_static import wildcard_findings

    doc = policies.operator_policy("prod")
    text = json.dumps(doc)
    assert "ndjson-parquet-dev" not in text and "ndjson-parquet-prod-tracking" in text
    findings = wildcard_findings(doc, "operator")
    assert findings == ["operator: events:ListArchives on Resource '*'"]  # no resource-level permission


def test_iam_cli_check_passes_and_prints_the_operator_policy(capsys: pytest.CaptureFixture[str]) -> None:
    from ndjson_parquet.cli import main

    assert main(["iam", "check"]) == 0
    assert capsys.readouterr().out.strip().endswith("iam-check: ok")
    assert main(["iam", "operator-policy", "--stage", "dev"]) == 0
    assert json.loads(capsys.readouterr().out)["Statement"]


def test_library_calls_are_checked_against_the_installed_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """glue/table.py's Glue calls are made by pyiceberg's GlueCatalog: the map's lib entries are checked
    against pyiceberg's source, so an upgrade that stops (or renames) a call is noticed."""
    assert ("pyiceberg.catalog.glue", "get_table") in callmap.library_calls()
    assert ("pyiceberg.catalog.glue", "update_table") in callmap.library_calls()
    assert scan.library_problems() == []
    gone = {*callmap.library_calls(), ("pyiceberg.catalog.glue", "batch_delete_table_version")}
    monkeypatch.setattr(callmap, "library_calls", lambda: gone)
    assert scan.library_problems() == [
        "pyiceberg.catalog.glue: no .batch_delete_table_version( call, but ndjson_parquet/iam/callmap.py maps one"
    ]


def test_the_glue_role_commits_to_the_table_and_the_optimizer_role_maintains_it() -> None:
    def actions(role: str, resource: str) -> set[str]:
        return {c.iam_action for c in callmap.calls_of(role) if c.resource == resource}

    assert actions("glue", "glue_table") == {"glue:GetTable", "glue:CreateTable", "glue:UpdateTable"}
    assert actions("glue", "glue_database") == actions("glue", "glue_catalog") - {"glue:GetSecurityConfiguration"}
    assert "s3:DeleteObject" not in actions("glue", "table_metadata_object")  # only the optimizers delete there
    assert actions("optimizer", "glue_table") == {"glue:GetTable", "glue:UpdateTable"}
    assert "s3:DeleteObject" in actions("optimizer", "table_metadata_object")


def test_the_converter_role_makes_the_glue_jobs_data_calls_and_none_of_glues_service_calls() -> None:
    def calls(role: str, paths: tuple[str, ...]) -> set[tuple[str, str]]:
        return {(c.iam_action, c.resource) for c in callmap.calls_of(role) if c.path in paths}

    data = ("glue_job", "glue_table")
    assert calls("converter", data) == calls("glue", data)  # one conversion core, one set of data grants
    converter = {(c.iam_action, c.resource) for c in callmap.calls_of("converter")}
    assert not {r for _, r in converter} & {"scripts_object", "scripts_tmp_object", "glue_log_group"}
    assert ("logs:PutLogEvents", "converter_log_stream") in converter
    states = {(c.iam_action, c.resource) for c in callmap.calls_of("states")}
    assert ("lambda:InvokeFunction", "converter_function") in states
    assert "converter" in scan.SCANNED  # the converter's own boto3 calls must be mapped too
