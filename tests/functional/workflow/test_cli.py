"""status, replay, redrive and recover against the moto endpoint, through the CLI dispatcher."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import keys
from ndjson_parquet.cli import main
from tests.functional.workflow.conftest import DATE, Workflow


def test_status_replay_redrive_recover(workflow: Workflow, capsys: pytest.CaptureFixture[str]) -> None:
    ok, bad = f"{DATE}-000020", f"{DATE}-000021"
    workflow.seed_manifest(ok)
    workflow.put_manifest_ready(ok)
    workflow.wait_all(1)
    workflow.seed_manifest(bad, n_files=2)
    workflow.glue.fail_with = "boom"
    workflow.put_manifest_ready(bad)
    workflow.wait_all(2)
    workflow.glue.fail_with = None

    assert main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["files_by_date"][DATE] == {"converted": 3, "pending": 2}
    assert status["manifests"] == {"failed": 1, "succeeded": 1}
    assert status["dlq_depths"] == {"events": 0}
    assert status["breaker"] == {
        "state": "closed",
        "recent_failures": 1,
        "sealing": "normal",
        "next_probe_in_seconds": None,
    }
    assert status["oldest_pending_age_seconds"] > 0

    # one manifest, replay-marked: reruns and replaces its output
    assert main(["replay", "--manifest", ok]) == 0
    assert f"replay of {ok}: SUCCEEDED" in capsys.readouterr().out
    assert int(workflow.manifest(ok)["run_count"]) == 2 and len(workflow.outputs(ok)) == 1

    # archive window: both events replay; the succeeded manifest reruns, the failed one skips
    now = datetime.now(UTC)
    rc = main(
        ["replay", "--from", (now - timedelta(hours=1)).isoformat(), "--to", (now + timedelta(minutes=1)).isoformat()]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "COMPLETED; executions started since: 2" in out, out
    workflow.wait_all(5)  # 2 + the one-manifest replay + the 2 archived events
    assert int(workflow.manifest(ok)["run_count"]) == 3
    assert workflow.manifest(bad)["status"] == keys.MANIFEST_FAILED

    # a dead-lettered ManifestReady goes back on the bus
    workflow.sqs.send_message(
        QueueUrl=workflow.events_dlq_url,
        MessageBody=json.dumps(
            {"source": "ndjson-parquet", "detail-type": "ManifestReady", "detail": {"manifest_id": ok}}
        ),
    )
    assert main(["redrive", "--queue", "events"]) == 0
    assert "events: 1 events put back on bus wf-bus" in capsys.readouterr().out
    assert (
        workflow.sqs.get_queue_attributes(QueueUrl=workflow.events_dlq_url, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
        == "0"
    )

    assert main(["recover"]) == 0
    assert "resumed=0 reemitted=0 compensated=0 released=0 errors=0" in capsys.readouterr().out
