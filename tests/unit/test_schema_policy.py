"""The schema-change refusal's one marker (chalicelib/schema_policy.py): the job's message, how
Compensate finds it in a failed run's cause, and the pure moves of a hold and a release."""

from __future__ import annotations

import json

import pytest

from chalicelib import keys
from chalicelib.schema_policy import SCHEMA_CHANGE_REFUSED, SchemaRefusal, parse_refusal, refusal_message
from chalicelib.workflow.compensate import error_cause, hold_file
from chalicelib.workflow.release import release_update
from ndjson_parquet.commands.status import held_report

CHANGES = ("added user.plan string", "widened n int32 -> int64", "added tags[] struct<a: int64, b: string>")


def test_the_job_message_round_trips_through_the_parser() -> None:
    refusal = parse_refusal(refusal_message(CHANGES))
    assert refusal == SchemaRefusal(CHANGES)
    # a type containing ", " (a struct) is one change: changes split only before a kind
    assert refusal.fields == ("user.plan", "n", "tags[]")


def test_a_glue_sync_cause_is_the_job_run_as_json_with_the_error_message() -> None:
    # Step Functions' cause of a failed glue:startJobRun.sync (moto's interpreter and AWS alike);
    # the local runtime's stand-in reports "<ExceptionName>: <message>" as the ErrorMessage.
    cause = json.dumps(
        {
            "Id": "jr_1",
            "JobName": "convert",
            "JobRunState": "FAILED",
            "ErrorMessage": "SchemaChangeError: " + refusal_message(CHANGES[:1]),
        }
    )
    assert parse_refusal(cause) == SchemaRefusal(CHANGES[:1])


def test_a_lambda_style_cause_and_a_traceback_after_the_message() -> None:
    lam = json.dumps({"errorType": "SchemaChangeError", "errorMessage": refusal_message(CHANGES[:2])})
    assert parse_refusal(lam) == SchemaRefusal(CHANGES[:2])
    text = "SchemaChangeError: " + refusal_message(CHANGES[:1]) + '\nTraceback (most recent call last):\n  File "x"'
    assert parse_refusal(text) == SchemaRefusal(CHANGES[:1])


@pytest.mark.parametrize(
    "cause",
    [
        None,
        "",
        "executor lost",
        "recover: execution FAILED",
        json.dumps({"JobRunState": "FAILED", "ErrorMessage": "RuntimeError: out of memory"}),
        json.dumps(["not", "an", "object"]),
        "schema mode addNewColumns: nothing refused",
        "{not json: " + "schema mode failOnNewColumns",  # the mode named, not the refusal marker
    ],
)
def test_any_other_failure_is_not_a_refusal(cause: object) -> None:
    assert parse_refusal(cause) is None


def test_a_refusal_cut_short_or_naming_nothing_is_still_a_refusal() -> None:
    assert parse_refusal(SCHEMA_CHANGE_REFUSED) == SchemaRefusal(())
    cut = refusal_message(CHANGES)[:-10]  # a cause truncated by the transport
    refusal = parse_refusal(cut)
    assert refusal is not None and refusal.changes[:2] == CHANGES[:2]


def test_the_glue_policy_message_is_the_shared_marker() -> None:
    # glue/table_schema.py builds the same text; glue/job.py raises refusal_message(...) from it.
    pytest.importorskip("pyarrow")
    from glue.table_schema import Change, SchemaChangeRefused

    exc = SchemaChangeRefused([Change("added", "user.plan", "string"), Change("widened", "n", "int32 -> int64")])
    assert str(exc).startswith(SCHEMA_CHANGE_REFUSED)
    assert parse_refusal(str(exc)) == SchemaRefusal(CHANGES[:2])
    assert refusal_message(c.describe() for c in exc.changes) == str(exc)


def test_error_cause_is_the_whole_cause() -> None:
    long = "x" * 5000
    assert error_cause({"Error": "States.TaskFailed", "Cause": long}) == long
    assert error_cause("States.TaskFailed") == "" and error_cause(None) == ""


FILE = {"pk": "FILE#f1", "date_prefix": "2025-01-15", "shard": 3, "size": 120, "attempts": 1, "batch_limit": 2}


def test_hold_spends_no_attempt_and_keeps_the_file_out_of_batching() -> None:
    u = hold_file(FILE, "2025-01-15-000007", "T")
    assert (u.status, u.status_key, u.add_attempts) == (keys.HELD, "held#2025-01-15-000007", 0)
    # not reopened, not unsealed: it stays in the sealed totals until released
    assert (u.reopen_date, u.unseal_bytes) == ("", None)
    assert "batch_limit" not in u.set_attrs


def test_release_returns_the_file_to_its_pending_shard_unsealed_once() -> None:
    u = release_update(FILE, "2025-01-15-000007", 4, "T")
    assert (u.status, u.status_key, u.add_attempts) == (keys.PENDING, keys.pending_status_key("2025-01-15", 3), 0)
    assert (u.reopen_date, u.unseal_bytes) == ("2025-01-15", 120)
    assert u.set_attrs == {"released_at": "T", "released_from": "2025-01-15-000007"}


def test_held_report_lists_held_manifests_and_stray_held_files() -> None:
    from collections import Counter

    held = {"m1": {"held_at": "T", "file_count": 2, "changes": ["added a string"], "changes_total": 1}}
    report = held_report(held, Counter({"m1": 2, "m0": 1}))
    assert report == [
        {
            "manifest_id": "m0",
            "held_files": 1,
            "manifest_held": False,
            "held_at": None,
            "changes": [],
            "changes_total": 0,
        },
        {
            "manifest_id": "m1",
            "held_files": 2,
            "manifest_held": True,
            "held_at": "T",
            "changes": ["added a string"],
            "changes_total": 1,
        },
    ]
