"""Circuit breaker on manifest failures, state in the table (pk=BREAKER, sk=STATE).

closed     -> open       after ``threshold`` consecutive failures within ``window`` seconds:
                         sealing pauses (files keep being tracked as pending; nothing is lost)
open       -> half_open  after ``cooldown`` seconds: the next ``seal_permit`` wins one probe
half_open  -> closed     when a manifest succeeds; -> open again when it fails
Every transition is a conditional write on ``version`` (optimistic concurrency), so two Lambdas
never both take the probe.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.backoff import sleep_before_retry
from chalicelib.workflow.store import from_item, to_item

log = logging.getLogger(__name__)

BREAKER_PK = "BREAKER"
BREAKER_SK = "STATE"
CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"
_KEY = {"pk": BREAKER_PK, "sk": BREAKER_SK}


@dataclass(frozen=True)
class BreakerState:
    state: str = CLOSED
    failures: tuple[float, ...] = ()
    opened_at: float = 0.0
    probe_at: float = 0.0
    version: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BreakerConfig:
    threshold: int = 5
    window_seconds: int = 3600
    cooldown_seconds: int = 900


# --- pure transitions --------------------------------------------------------------------------
def on_failure(s: BreakerState, now: float, cfg: BreakerConfig) -> BreakerState:
    if s.state == HALF_OPEN:
        return BreakerState(OPEN, (now,), opened_at=now, version=s.version + 1)
    recent = (*(t for t in s.failures if now - t < cfg.window_seconds), now)
    if s.state == CLOSED and len(recent) >= cfg.threshold:
        return BreakerState(OPEN, recent[-cfg.threshold :], opened_at=now, version=s.version + 1)
    return BreakerState(s.state, recent[-cfg.threshold :], s.opened_at, s.probe_at, s.version + 1)


def on_success(s: BreakerState) -> BreakerState:
    return BreakerState(CLOSED, (), version=s.version + 1)


def on_seal_request(s: BreakerState, now: float, cfg: BreakerConfig) -> tuple[bool, BreakerState | None]:
    """(allowed, new state to write or None)."""
    if s.state == CLOSED:
        return True, None
    if s.state == OPEN and now - s.opened_at >= cfg.cooldown_seconds:
        return True, BreakerState(HALF_OPEN, s.failures, s.opened_at, probe_at=now, version=s.version + 1)
    if s.state == HALF_OPEN and now - s.probe_at >= cfg.cooldown_seconds:
        # The probe never reported back (nothing sealed, or its run vanished): take a new one.
        return True, BreakerState(HALF_OPEN, s.failures, s.opened_at, probe_at=now, version=s.version + 1)
    return False, None


# --- I/O ---------------------------------------------------------------------------------------
def read_state(client: Any, table: str) -> BreakerState:
    resp = client.get_item(TableName=table, Key=to_item(_KEY), ConsistentRead=True)
    if "Item" not in resp:
        return BreakerState()
    item = from_item(resp["Item"])
    return BreakerState(
        state=str(item.get("state", CLOSED)),
        failures=tuple(float(t) for t in item.get("failures", [])),
        opened_at=float(item.get("opened_at", 0)),
        probe_at=float(item.get("probe_at", 0)),
        version=int(item.get("version", 0)),
    )


def _write(client: Any, table: str, new: BreakerState, expected_version: int) -> bool:
    from decimal import Decimal

    item = {
        **_KEY,
        "state": new.state,
        "failures": [Decimal(str(t)) for t in new.failures],
        "opened_at": Decimal(str(new.opened_at)),
        "probe_at": Decimal(str(new.probe_at)),
        "version": new.version,
    }
    try:
        client.put_item(
            TableName=table,
            Item=to_item(item),
            # Optimistic concurrency: the write lands only if nobody moved the breaker since we
            # read it (absent item = version 0), so one writer wins each transition.
            ConditionExpression="attribute_not_exists(pk) OR version = :v",
            ExpressionAttributeValues=to_item({":v": expected_version}),
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _update(client: Any, table: str, step: Any, attempts: int = 5) -> tuple[BreakerState, BreakerState]:
    for attempt in range(attempts):
        if attempt:
            sleep_before_retry(attempt)  # another writer moved the breaker: re-read after a jittered pause
        old = read_state(client, table)
        new = step(old)
        if new is None or _write(client, table, new, old.version):
            return old, new or old
    raise RuntimeError("circuit breaker: too many concurrent updates")


def record_failure(client: Any, table: str, now: float, cfg: BreakerConfig) -> tuple[BreakerState, bool]:
    """Returns the new state and whether this failure opened the breaker (alert once)."""
    old, new = _update(client, table, lambda s: on_failure(s, now, cfg))
    opened = new.state == OPEN and old.state != OPEN
    if opened:
        log.warning("circuit breaker opened", extra={"failures": len(new.failures), "from": old.state})
    return new, opened


def record_success(client: Any, table: str, now: float) -> BreakerState:
    old = read_state(client, table)
    if old.state == CLOSED and not old.failures:
        return old  # nothing to reset: no write on the happy path
    _, new = _update(client, table, on_success)
    if old.state != CLOSED:
        log.info("circuit breaker closed", extra={"from": old.state})
    return new


class SealPermit(StrEnum):
    """What the breaker lets one sealer do (not the breaker's state: see CLOSED/OPEN/HALF_OPEN)."""

    SEAL = "seal"  # closed: seal as usual
    PROBE = "probe"  # this caller won the half-open probe: seal one manifest, no more
    DENIED = "denied"  # open (or a probe is out): seal nothing


def seal_permit(client: Any, table: str, now: float, cfg: BreakerConfig) -> SealPermit:
    """For the sealer: closed, probe (exactly one caller per cool-down wins it) or denied."""
    s = read_state(client, table)
    allowed, new = on_seal_request(s, now, cfg)
    if new is None:
        return SealPermit.SEAL if allowed else SealPermit.DENIED
    # The probe is taken by the conditional write on ``version``: a racing sealer loses it.
    return SealPermit.PROBE if _write(client, table, new, s.version) else SealPermit.DENIED
