from __future__ import annotations

import json
import os
import socket

import boto3
import pytest

from ndjson_parquet.local.event_tap import EventTap
from ndjson_parquet.local.server import PortInUseError, moto_server


def test_port_in_use_is_one_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(PortInUseError, match=f"port {port} .* already in use"), moto_server(port=port):
            pass


def test_server_points_boto3_at_itself_and_restores_env() -> None:
    before = os.environ.get("AWS_ENDPOINT_URL")
    with moto_server() as endpoint:
        assert endpoint.url.startswith("http://127.0.0.1:")
        assert os.environ["AWS_ENDPOINT_URL"] == endpoint.url
        boto3.client("s3").create_bucket(Bucket="probe")
        assert boto3.client("s3").list_buckets()["Buckets"][0]["Name"] == "probe"
    assert os.environ.get("AWS_ENDPOINT_URL") == before


def test_tap_receives_only_events_matching_the_rule() -> None:
    with moto_server():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        events.create_event_bus(Name="bus")
        pattern = {"source": ["ndjson-parquet"], "detail-type": ["ManifestReady"]}
        events.put_rule(Name="rule", EventBusName="bus", EventPattern=json.dumps(pattern))
        tap = EventTap.attach(events, sqs, rule_name="rule", bus_name="bus")
        events.put_events(
            Entries=[
                {
                    "Source": "ndjson-parquet",
                    "DetailType": "ManifestReady",
                    "Detail": '{"manifest_id":"m1"}',
                    "EventBusName": "bus",
                },
                {
                    "Source": "other",
                    "DetailType": "ManifestReady",
                    "Detail": '{"manifest_id":"m2"}',
                    "EventBusName": "bus",
                },
            ]
        )
        got: list[dict] = []
        assert tap.drain(got.append) == 1
        assert got[0]["detail"] == {"manifest_id": "m1"}
        assert tap.drain(got.append) == 0


def test_tap_keeps_event_when_delivery_fails() -> None:
    with moto_server():
        events, sqs = boto3.client("events"), boto3.client("sqs")
        events.create_event_bus(Name="bus")
        events.put_rule(Name="rule", EventBusName="bus", EventPattern=json.dumps({"source": ["ndjson-parquet"]}))
        tap = EventTap.attach(events, sqs, rule_name="rule", bus_name="bus")
        events.put_events(
            Entries=[{"Source": "ndjson-parquet", "DetailType": "X", "Detail": "{}", "EventBusName": "bus"}]
        )

        def fail(_event: dict) -> None:
            raise RuntimeError("start failed")

        # a message the tap received but failed to deliver becomes visible again at once
        sqs.set_queue_attributes(QueueUrl=tap.queue_url, Attributes={"VisibilityTimeout": "0"})
        with pytest.raises(RuntimeError, match="start failed"):
            tap.drain(fail)
        # the failed event was not deleted: the next drain delivers it, exactly once
        got: list[dict] = []
        assert tap.drain(got.append) == 1
        assert (got[0]["source"], got[0]["detail-type"]) == ("ndjson-parquet", "X")
        assert tap.drain(got.append) == 0
