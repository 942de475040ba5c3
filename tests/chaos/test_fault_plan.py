"""The fault seam itself: deterministic plans, and faults that surface exactly where real ones do
(botocore event handlers on a real client against moto, no Spark)."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.aws import ClientRegistry
from chalicelib.event_publisher import EventBridgePublisher, PublishError
from ndjson_parquet.local.faults import (
    ALL_CRASH_POINTS,
    CONVERTER_FAULTS,
    GLUE_ONLY,
    PUT_EVENTS_LOST_ACK,
    PUT_EVENTS_PARTIAL,
    Fault,
    FaultPlan,
    InjectedCrash,
    InjectedExit,
)
from ndjson_parquet.local.pumps import pump_sqs
from tests.conftest import REGION


def test_random_plans_are_reproducible_and_varied() -> None:
    assert FaultPlan.random(42).describe() == FaultPlan.random(42).describe()
    assert len({FaultPlan.random(s).describe() for s in range(50)}) == 50


def test_random_plans_mix_errors_and_abrupt_exits_at_crash_points_only() -> None:
    faults = [f for s in range(50) for f in FaultPlan.random(s).faults]
    crashes = [f for f in faults if f.point in ALL_CRASH_POINTS]
    assert any(f.exit for f in crashes) and not all(f.exit for f in crashes)
    assert not any(f.exit for f in faults if f.point not in ALL_CRASH_POINTS)
    assert ",exit)" in " ".join(FaultPlan.random(s).describe() for s in range(50))


def test_random_plans_draw_both_engines_and_every_converter_fault_where_it_can_fire() -> None:
    plans = [FaultPlan.random(s) for s in range(1000, 1200)]
    assert {p.engine for p in plans} == {"auto", "glue"}
    drawn = {f.point for p in plans for f in p.faults}
    assert set(CONVERTER_FAULTS) <= drawn
    for plan in plans:
        converter = [f for f in plan.faults if f.point in CONVERTER_FAULTS]
        glue_only = [f for f in plan.faults if f.point in GLUE_ONLY]
        if plan.engine == "glue":  # no manifest reaches the converter
            assert not converter, plan.describe()
        elif glue_only:  # auto: Glue runs only after a Lambda run failed, the first Glue run is hit
            assert converter and all(f.skip == 0 for f in glue_only), plan.describe()
        assert len(converter) <= 1


def test_every_random_plan_holds_a_fault_every_scenario_reaches() -> None:
    # seed 1045 (only inside_compensate, no run failing) and 1168 (before_glue after 2 skips)
    # injected nothing before the sure point joined them; a plan that had one is unchanged
    from ndjson_parquet.local.faults import _sure

    for seed in (*range(20), *range(1000, 1200)):
        plan = FaultPlan.random(seed)
        assert any(_sure(f, plan.engine) for f in plan.faults), plan.describe()
    assert FaultPlan.random(1045).describe().startswith("seed=1045: inside_compensate(skip=1,times=1,exit), ")


def test_a_converter_fault_asks_its_invocation_to_end_as_planned() -> None:
    # GIVEN a kill 0.3 s in (mid-convert), then an exit after the commit, then a clean invocation
    plan = FaultPlan(faults=[Fault("converter_killed_mid_run", delay=0.3), Fault("converter_exit_mid_commit")])
    calls: list[dict[str, object] | None] = []
    invoke = plan.wrap_converter(lambda event, stall=None: calls.append(stall))
    for _ in range(3):
        invoke({"manifest_id": "m"})
    # THEN each firing fault passed its stall (the delay overriding the default), once
    assert calls == [{"kill_after": 0.3}, {"exit": "commit"}, None]
    assert plan.converter_fallbacks == 2 and plan.unfired() == []


def test_a_scenario_that_injected_nothing_or_whose_converter_fault_did_not_surface_is_named() -> None:
    from tests.chaos.conftest import fault_violations

    plan = FaultPlan(faults=[Fault("before_glue", skip=2)])
    assert fault_violations(plan, []) == ["injected nothing: none of ['before_glue'] fired"]
    plan = FaultPlan(faults=[Fault("converter_exit")])
    plan.wrap_converter(lambda event, stall=None: None)({})
    assert fault_violations(plan, ["Sandbox.Timedout"]) == [
        "converter_exit fired but no Lambda task failed with Runtime.ExitError: ['Sandbox.Timedout']"
    ]
    assert fault_violations(plan, ["Runtime.ExitError"]) == []


def test_unknown_point_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fault points"):
        FaultPlan(faults=[Fault("after_everything")])


@pytest.fixture
def registry(aws: str) -> ClientRegistry:
    reg = ClientRegistry()
    for service in ("dynamodb", "s3", "events", "sqs", "sns"):
        reg.set(service, boto3.client(service, region_name=REGION, endpoint_url=aws))
    return reg


def _table(ddb) -> str:  # type: ignore[no-untyped-def]
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return "t"


def test_after_point_crashes_once_the_effect_is_durable(registry: ClientRegistry) -> None:
    ddb = registry.get("dynamodb")
    table = _table(ddb)
    plan = FaultPlan.crash_at("after_file_put")
    plan.install(registry)
    item = {"pk": {"S": "FILE#1"}, "sk": {"S": "FILE"}}
    with pytest.raises(InjectedCrash):
        ddb.put_item(TableName=table, Item=item)
    assert ddb.get_item(TableName=table, Key=item).get("Item") == item  # the put happened
    ddb.put_item(TableName=table, Item=item)  # fired once only
    assert plan.injected["after_file_put"] == 1
    plan.uninstall()


def test_throttle_is_a_client_error_with_the_service_code(registry: ClientRegistry) -> None:
    ddb = registry.get("dynamodb")
    table = _table(ddb)
    plan = FaultPlan(seed=1, throttle_rate=1.0, throttle_cap=2)
    plan.install(registry)
    codes = []
    for _ in range(3):
        try:
            ddb.get_item(TableName=table, Key={"pk": {"S": "x"}, "sk": {"S": "y"}})
            codes.append("ok")
        except ClientError as exc:
            codes.append(exc.response["Error"]["Code"])
    assert codes == ["ProvisionedThroughputExceededException"] * 2 + ["ok"]
    plan.uninstall()


@pytest.mark.parametrize("kind", [PUT_EVENTS_PARTIAL, PUT_EVENTS_LOST_ACK])
def test_put_events_failures_are_seen_by_the_publisher(registry: ClientRegistry, kind: str) -> None:
    events = registry.get("events")
    sqs = registry.get("sqs")
    events.create_event_bus(Name="bus")
    url = sqs.create_queue(QueueName="tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all", EventBusName="bus", EventPattern='{"source": ["ndjson-parquet"]}')
    events.put_targets(Rule="all", EventBusName="bus", Targets=[{"Id": "q", "Arn": arn}])
    plan = FaultPlan(faults=[Fault(kind)])
    plan.install(registry)
    with pytest.raises(PublishError):
        EventBridgePublisher(events, "bus").publish("ManifestReady", [{"manifest_id": "m"}])
    delivered = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    # partial failure: the event never left; lost ack: it was delivered, the caller was told it failed
    assert len(delivered) == (0 if kind == PUT_EVENTS_PARTIAL else 1)
    plan.uninstall()


def test_exit_point_ends_the_step_past_its_except_exception(registry: ClientRegistry) -> None:
    # GIVEN a plan whose crash after the FILE put is an abrupt exit
    ddb = registry.get("dynamodb")
    table = _table(ddb)
    plan = FaultPlan.crash_at("after_file_put", exit=True)
    plan.install(registry)
    item = {"pk": {"S": "FILE#2"}, "sk": {"S": "FILE"}}
    handled = []
    # WHEN the step's own code guards the call with `except Exception`
    with pytest.raises(InjectedExit):
        try:
            ddb.put_item(TableName=table, Item=item)
        except Exception as exc:  # what production error handling looks like
            handled.append(exc)
    plan.uninstall()
    # THEN the guard never ran, the put is durable, and the exit is counted as one
    assert handled == []
    assert ddb.get_item(TableName=table, Key=item).get("Item") == item
    assert (plan.injected["after_file_put"], plan.exits) == (1, 1)


def test_sqs_batch_whose_handler_exits_is_delivered_again(registry: ClientRegistry) -> None:
    # GIVEN 3 messages and a handler whose first invocation ends abruptly
    sqs = registry.get("sqs")
    url = sqs.create_queue(QueueName="exit-redelivery", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=str(i))
    calls: list[list[str]] = []

    def handle(messages) -> None:  # type: ignore[no-untyped-def]
        calls.append(sorted(m.body for m in messages))
        if len(calls) == 1:
            raise InjectedExit("injected exit: handler process ended")

    # WHEN the pump runs twice
    with pytest.raises(InjectedExit):
        pump_sqs(sqs, url, handle)
    delivered_again = pump_sqs(sqs, url, handle)
    # THEN the batch was made visible again at once and delivered whole the second time
    assert calls == [["0", "1", "2"], ["0", "1", "2"]]
    assert delivered_again == 3
