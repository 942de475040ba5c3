"""The breaker's racy paths on a real (moto) table: concurrent writers, one probe per cool-down.

The pure transitions are tested in tests/unit/test_workflow_breaker.py; these tests are about the
conditional write on ``version`` that makes concurrent Lambdas safe.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chalicelib.tracking_table import TrackingTable
from chalicelib.workflow import breaker
from tests.conftest import client

CFG = breaker.BreakerConfig(threshold=3, window_seconds=1000, cooldown_seconds=50)
TABLE = "breaker-races"


@pytest.fixture
def table(aws: str, atomic_conditional_writes: None) -> Any:
    ddb = client("dynamodb")
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return TrackingTable(ddb, TABLE)


def _together(n: int, call: object) -> list[object]:
    """Run ``call`` in ``n`` threads released at the same moment."""
    start = threading.Barrier(n)

    def one(_: int) -> object:
        start.wait()
        return call()  # type: ignore[operator]

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_a_stale_writer_loses_and_the_winner_is_kept(table: TrackingTable) -> None:
    first = breaker.on_failure(breaker.BreakerState(), 1.0, CFG)
    assert breaker._write(table, first, expected_version=0) is True
    # a second writer that read version 0 too must not overwrite version 1
    other = breaker.on_failure(breaker.BreakerState(), 2.0, CFG)
    assert breaker._write(table, other, expected_version=0) is False
    assert breaker.read_state(table) == first


def test_concurrent_failures_are_each_counted_and_open_the_breaker_once(table: TrackingTable) -> None:
    # GIVEN three failures recorded at the same moment by three Lambdas
    results = _together(3, lambda: breaker.record_failure(table, 10.0, CFG))
    # THEN none was lost to a race (each retried on a version conflict), exactly one caller
    # saw the breaker open (one alert), and the version counts every transition
    state = breaker.read_state(table)
    assert state.state == breaker.OPEN
    assert state.failures == (10.0, 10.0, 10.0)
    assert state.version == 3
    assert sorted(opened for _, opened in results) == [False, False, True]


def test_exactly_one_sealer_wins_the_half_open_probe(table: TrackingTable) -> None:
    # GIVEN an open breaker whose cool-down has passed
    for t in (0.0, 1.0, 2.0):
        breaker.record_failure(table, t, CFG)
    assert breaker.read_state(table).state == breaker.OPEN
    # WHEN eight sealers ask at the same moment
    permits = _together(8, lambda: breaker.seal_permit(table, 100.0, CFG))
    # THEN one seals the probe manifest and seven seal nothing
    assert sorted(permits) == [breaker.SealPermit.DENIED] * 7 + [breaker.SealPermit.PROBE]
    assert breaker.read_state(table).state == breaker.HALF_OPEN
    # and the probe's success closes it for everyone
    breaker.record_success(table, 101.0)
    assert breaker.seal_permit(table, 102.0, CFG) == breaker.SealPermit.SEAL
