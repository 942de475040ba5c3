"""Sealing by age on arrival (SEAL_MAX_AGE_SECONDS): count_arrivals seals a date's pending files
once the oldest waited that long, reads nothing more than the totals while the age hint says no,
refreshes a stale hint once, and racing sealers still claim each file once."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from chalicelib import batching, keys
from chalicelib.timeutil import format_time
from chalicelib.tracking_table import TrackingTable
from tests.conftest import REGION
from tests.functional.control_plane.conftest import ControlPlane
from tests.functional.control_plane.test_batching import _Collector, _manifest_files, _pending, _put_files

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
DATE = "2030-01-02"


def _counting_deps(cp: ControlPlane, **overrides: str) -> tuple[batching.Deps, list[dict[str, Any]]]:
    """Deps whose store's client records every Query it sends (a botocore event hook, real calls)."""
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=cp.clients["dynamodb"].meta.endpoint_url)
    queries: list[dict[str, Any]] = []
    client.meta.events.register("provide-client-params.dynamodb.Query", lambda params, **_: queries.append(params))
    deps = cp.deps(**overrides)
    deps.store = TrackingTable(client, cp.res.table)
    return deps, queries


def _sealed(outcomes: list[batching.SealOutcome]) -> list[tuple[str, int]]:
    return [(o.status, o.file_count) for o in outcomes if o.status != "lost"]


def test_an_arrival_seals_once_the_oldest_waited_the_age_and_not_before(cp: ControlPlane) -> None:
    max_age = int(cp.env["SEAL_MAX_AGE_SECONDS"])
    collector = _Collector(cp)
    deps, queries = _counting_deps(cp)
    # GIVEN three files that arrived at T0, counted just before the age passes
    _put_files(cp, DATE, 3, at=T0)
    before = batching.count_arrivals(collector.new(), deps, now=T0 + timedelta(seconds=max_age - 1))
    # THEN nothing is sealed, and the decision read only the totals (no index query)
    assert before.counted == 3 and before.seals == [] and queries == []
    assert deps.store.read_totals(DATE, int(cp.env["SHARD_COUNT"])).pending_since == format_time(T0)

    # WHEN a fourth file arrives once the first ones waited the age
    _put_files(cp, DATE, 1, start=3, at=T0 + timedelta(seconds=max_age))
    after = batching.count_arrivals(collector.new(), deps, now=T0 + timedelta(seconds=max_age + 1))

    # THEN one manifest of all four, oldest first, nothing pending
    assert _sealed(after.seals) == [("sealed", 4)]
    [uris] = _manifest_files(cp, DATE).values()
    assert uris == [f"s3://in/{DATE}/f{i:05d}.ndjson" for i in range(4)]
    assert _pending(cp, DATE) == []
    # AND the hints were reset from the (now empty) pending index: the next arrival starts afresh
    assert deps.store.read_totals(DATE, int(cp.env["SHARD_COUNT"])).pending_since is None


def test_a_stale_hint_costs_one_bounded_check_then_the_truth_is_the_hint(cp: ControlPlane) -> None:
    shards, max_age = int(cp.env["SHARD_COUNT"]), int(cp.env["SEAL_MAX_AGE_SECONDS"])
    collector = _Collector(cp)
    deps, queries = _counting_deps(cp)
    # GIVEN a file counted at T0, then sealed by flush_stale (which leaves the hint at T0)
    _put_files(cp, DATE, 1, at=T0)
    assert batching.count_arrivals(collector.new(), deps, now=T0).seals == []
    assert _sealed(batching.flush_stale(cp.deps(), now=T0 + timedelta(seconds=max_age + 5))) == [("sealed", 1)]

    # WHEN a new file arrives long after T0: the hint says "due", the heads say no
    t1 = T0 + timedelta(seconds=100)
    _put_files(cp, DATE, 1, start=1, at=t1)
    queries.clear()
    assert batching.count_arrivals(collector.new(), deps, now=t1 + timedelta(seconds=1)).seals == []
    # THEN the check was one Limit-1 query per shard, and the hint is now the new file's arrival
    assert len(queries) == shards and {q["Limit"] for q in queries} == {1}
    assert deps.store.read_totals(DATE, shards).pending_since == format_time(t1 + timedelta(milliseconds=1))

    # WHEN another file arrives 10 s later: no query at all
    queries.clear()
    _put_files(cp, DATE, 1, start=2, at=t1 + timedelta(seconds=10))
    assert batching.count_arrivals(collector.new(), deps, now=t1 + timedelta(seconds=10)).seals == []
    assert queries == []

    # WHEN one more arrives after the second file waited the age: both pending and it are sealed
    late = t1 + timedelta(seconds=max_age + 1)
    _put_files(cp, DATE, 1, start=3, at=late)
    assert _sealed(batching.count_arrivals(collector.new(), deps, now=late).seals) == [("sealed", 3)]
    assert _pending(cp, DATE) == []


def test_the_hint_refresh_loses_to_a_count_that_raced_it(cp: ControlPlane) -> None:
    shards = int(cp.env["SHARD_COUNT"])
    store = TrackingTable(cp.clients["dynamodb"], cp.res.table)
    _put_files(cp, DATE, 1, at=T0)
    batching.count_arrivals(_Collector(cp).new(), cp.deps(), now=T0)
    totals = store.read_totals(DATE, shards)
    [counter] = totals.shards
    # A file counted on the same shard after the totals were read moves its count...
    cp.clients["dynamodb"].update_item(
        TableName=cp.res.table,
        Key={"pk": {"S": keys.counter_pk(DATE)}, "sk": {"S": keys.shard_sk(counter.shard)}},
        UpdateExpression="ADD files :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    # ...so a refresh computed from what was read before it is refused, and the older hint stays
    assert store.set_pending_since(DATE, counter.shard, counter.files, None) is False
    assert store.read_totals(DATE, shards).pending_since == format_time(T0)
    # With the current count it goes through; a shard without a counter is never created
    assert store.set_pending_since(DATE, counter.shard, counter.files + 1, None) is True
    assert store.read_totals(DATE, shards).pending_since is None
    other = (counter.shard + 1) % shards
    assert store.set_pending_since(DATE, other, 0, format_time(T0)) is False
    assert [c.shard for c in store.read_totals(DATE, shards).shards] == [counter.shard]


def test_the_age_rule_off_leaves_partial_batches_to_flush_stale(cp: ControlPlane) -> None:
    _put_files(cp, DATE, 3, at=T0)
    result = batching.count_arrivals(
        _Collector(cp).new(), cp.deps(SEAL_MAX_AGE_SECONDS="0"), now=T0 + timedelta(hours=1)
    )
    assert result.seals == [] and len(_pending(cp, DATE)) == 3


@pytest.mark.usefixtures("atomic_conditional_writes")
def test_racing_sealers_by_age_claim_each_file_once(cp: ControlPlane) -> None:
    max_files, max_age = 6, int(cp.env["SEAL_MAX_AGE_SECONDS"])  # a small batch keeps this cheap
    collector = _Collector(cp)
    for round_no in range(2):
        # GIVEN a full batch and a partial one of old files, and their stream records
        date = f"2030-01-{round_no + 3:02d}"
        _put_files(cp, date, max_files + 4, at=T0)
        records = collector.new()
        halves = (records[::2], records[1::2]) if round_no % 2 else (records, records)
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def run(part: list[tuple[str, Any]], barrier: threading.Barrier = barrier, errors: list = errors) -> None:
            try:
                barrier.wait()
                deps = cp.deps(BATCH_MAX_FILES=str(max_files))
                batching.count_arrivals(part, deps, now=T0 + timedelta(seconds=max_age + 1))
            except BaseException as exc:  # surfaced below, a thread cannot fail the test itself
                errors.append(exc)

        # WHEN two count_arrivals invocations run at once, after the age passed
        threads = [threading.Thread(target=run, args=(h,)) for h in halves]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert errors == []

        # THEN a full manifest and the rest by age, disjoint, covering every file, none pending
        manifests = _manifest_files(cp, date)
        listed = [uri for uris in manifests.values() for uri in uris]
        assert len(set(listed)) == len(listed) == max_files + 4, f"round {round_no}"
        assert max(len(u) for u in manifests.values()) == max_files
        assert _pending(cp, date) == []
