"""Post-deploy fix-ups on the event source mappings Chalice creates, against moto."""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path

import pytest

from ndjson_parquet import infra_template as it
from ndjson_parquet import postdeploy
from tests.conftest import client

pytestmark = pytest.mark.slow
STAGE = "local"


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "def handler(event, context):\n    return None\n")
    return buf.getvalue()


@pytest.fixture
def chalice_like(aws: str) -> dict[str, str]:
    """The stack plus what `chalice deploy` would create: two functions and their default mappings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        outputs = it.deploy_to_endpoint(client("cloudformation"), it.stack_name(STAGE), it.stack_parameters(STAGE))
    role = client("iam").create_role(RoleName="chalice-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    lam = client("lambda")
    for fn, source in (("track_files", outputs["IngestQueueArn"]), ("count_arrivals", outputs["TableStreamArn"])):
        name = it.function_name(STAGE, fn)
        lam.create_function(
            FunctionName=name, Runtime="python3.11", Role=role, Handler="app.handler", Code={"ZipFile": _zip()}
        )
        extra = {"StartingPosition": "TRIM_HORIZON"} if ":dynamodb:" in source else {}
        lam.create_event_source_mapping(EventSourceArn=source, FunctionName=name, BatchSize=100, **extra)
    return dict(outputs)


def test_failure_settings_are_applied_once(chalice_like: dict[str, str]) -> None:
    lam = client("lambda")
    # WHEN the fix-ups run twice
    first = postdeploy.apply_postdeploy(lam, STAGE, chalice_like)
    second = postdeploy.apply_postdeploy(lam, STAGE, chalice_like)
    # THEN both mappings changed the first time and nothing the second
    assert [line.split(":")[0] for line in first] == [
        it.function_name(STAGE, "track_files"),
        it.function_name(STAGE, "count_arrivals"),
    ]
    assert second == []
    sqs_map = lam.list_event_source_mappings(FunctionName=it.function_name(STAGE, "track_files"))
    assert sqs_map["EventSourceMappings"][0]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    (ddb_map,) = lam.list_event_source_mappings(FunctionName=it.function_name(STAGE, "count_arrivals"))[
        "EventSourceMappings"
    ]
    assert ddb_map["BisectBatchOnFunctionError"] is True
    assert ddb_map["MaximumRetryAttempts"] == 10
    assert ddb_map["MaximumRecordAgeInSeconds"] == 6 * 3600
    assert ddb_map["DestinationConfig"]["OnFailure"]["Destination"] == chalice_like["StreamDlqArn"]
    assert ddb_map["BatchSize"] == 100  # Chalice's own settings are left alone
    (pattern,) = [json.loads(f["Pattern"]) for f in ddb_map["FilterCriteria"]["Filters"]]
    assert pattern == {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"sk": {"S": ["FILE"]}}}}


def test_filter_admits_exactly_what_count_arrivals_counts() -> None:
    # The filter may only drop records batching.arrived_file would ignore.
    from chalicelib.batching import arrived_file

    pattern = json.loads(postdeploy.COUNT_ARRIVALS_FILTER)
    assert pattern["eventName"] == ["INSERT"]
    image = {"sk": "FILE", "status": "pending", "file_id": "f", "date_prefix": "2024-05-06", "shard": 1, "size": 3}
    assert arrived_file("INSERT", image) is not None
    for event_name, changed in (("MODIFY", {}), ("INSERT", {"sk": "SHARD#001"}), ("REMOVE", {})):
        assert arrived_file(event_name, {**image, **changed}) is None


def test_missing_mapping_is_an_error_not_a_silent_skip(chalice_like: dict[str, str]) -> None:
    with pytest.raises(postdeploy.PostDeployError, match="found 0"):
        postdeploy.apply_postdeploy(client("lambda"), "other", chalice_like)


def test_cli_reads_describe_stacks_outputs(
    chalice_like: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps([{"OutputKey": k, "OutputValue": v} for k, v in chalice_like.items()]))
    assert postdeploy.main(["--stage", STAGE, "--outputs", str(path)]) == 0
    assert "ndjson-parquet-local-count_arrivals" in capsys.readouterr().out
