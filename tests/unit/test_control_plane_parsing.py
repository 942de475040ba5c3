from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib import keys
from chalicelib.s3_events import PermanentMessageError, date_prefix_of, has_allowed_suffix, parse_message
from chalicelib.settings import DEFAULT_SUFFIXES, Settings
from chalicelib.tracker import to_tracked_file
from chalicelib.ttl import expires_at
from tests.events import load, s3_notification_body, sns_wrapped

SETTINGS = Settings(table_name="t", manifest_bucket="m", event_bus_name="b", shard_count=10)


def test_captured_moto_notification_is_decoded() -> None:
    parsed = parse_message(json.dumps(load("s3_object_created.json")))
    (obj,) = parsed.objects
    assert obj.key == "2024-05-06/team a/events+1.ndjson"  # %2F, + for space and %2B all decoded once
    assert obj.size == 8 and obj.etag and obj.version_id is None
    assert obj.event_time.tzinfo is not None


def test_test_event_yields_nothing() -> None:
    parsed = parse_message(json.dumps(load("s3_test_event.json")))
    assert parsed.is_test_event and parsed.objects == ()


def test_sns_envelope_is_unwrapped() -> None:
    parsed = parse_message(sns_wrapped(s3_notification_body("a b.json")))
    assert [o.key for o in parsed.objects] == ["a b.json"]


def test_removal_events_are_counted_not_tracked() -> None:
    event = json.loads(s3_notification_body("x.json"))
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    parsed = parse_message(json.dumps(event))
    assert parsed.objects == () and parsed.other_events == 1


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        json.dumps({"hello": "world"}),
        json.dumps({"Records": [{"eventSource": "aws:sqs"}]}),
        json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]}),
        json.dumps({"Type": "Notification", "Message": "{not json"}),
        s3_notification_body("x.json", etag=""),
    ],
)
def test_malformed_bodies_are_permanent_errors(body: str) -> None:
    with pytest.raises(PermanentMessageError):
        parse_message(body)


@pytest.mark.parametrize(
    ("key", "prefix", "expected"),
    [
        ("2024-02-29/a.json", "", "2024-02-29"),
        ("in/2024-03-01/a.json", "in/", "2024-03-01"),
        ("2024-13-45/a.json", "", "2030-01-02"),  # not a date: event time
        ("team/2024-03-01/a.json", "", "2030-01-02"),  # only a leading prefix counts
        ("a.json", "", "2030-01-02"),
    ],
)
def test_date_prefix(key: str, prefix: str, expected: str) -> None:
    assert date_prefix_of(key, datetime(2030, 1, 2, 23, 59, tzinfo=UTC), prefix) == expected


def test_suffixes() -> None:
    suffixes = tuple(DEFAULT_SUFFIXES.split(","))
    assert all(has_allowed_suffix(f"a{s.upper()}", suffixes) for s in suffixes)
    assert not has_allowed_suffix("a.csv", suffixes)
    assert not has_allowed_suffix("a.gz", suffixes)  # .gz only after a JSON suffix


def test_tracked_file_fields() -> None:
    (obj,) = parse_message(s3_notification_body("2024-01-01/a.ndjson", size=0, versionId="v1")).objects
    f = to_tracked_file(obj, SETTINGS)
    assert f.status == keys.SKIPPED  # zero-byte: recorded, never converted
    assert f.file_id == keys.file_id(obj.bucket, obj.key, "v1")  # version id wins over etag
    assert f.date_prefix == "2024-01-01" and f.shard == keys.stable_shard("2024-01-01/a.ndjson", 10)
    assert f.expires_at == expires_at(obj.event_time, 30)


@given(st.text(min_size=1, max_size=200), st.integers(min_value=1, max_value=64))
def test_shard_in_range(key: str, shards: int) -> None:
    assert 0 <= keys.stable_shard(key, shards) < shards


def test_shard_is_stable_across_hash_seeds() -> None:
    code = (
        "from chalicelib.keys import stable_shard\n"
        "print([stable_shard(f'2024-01-01/f{i}.json', 10) for i in range(50)])"
    )
    outputs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        outputs.add(out.stdout)
    assert len(outputs) == 1
    shards = json.loads(outputs.pop())
    assert shards == [keys.stable_shard(f"2024-01-01/f{i}.json", 10) for i in range(50)]  # same as this process
    assert len(set(shards)) > 5  # and spread over the shards
