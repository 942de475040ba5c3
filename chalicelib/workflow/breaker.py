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
from typing import TYPE_CHECKING, Any

from chalicelib.backoff import sleep_before_retry

if TYPE_CHECKING:  # the pure transitions above import nothing of AWS
    from chalicelib.tracking_table import TrackingTable

log = logging.getLogger(__name__)

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


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


# --- I/O (the item itself is read and written by chalicelib/tracking_table.py) -----------------
def read_state(table: TrackingTable) -> BreakerState:
    item = table.read_breaker()
    if item is None:
        return BreakerState()
    return BreakerState(
        state=str(item.get("state", CLOSED)),
        failures=tuple(float(t) for t in item.get("failures", [])),
        opened_at=float(item.get("opened_at", 0)),
        probe_at=float(item.get("probe_at", 0)),
        version=int(item.get("version", 0)),
    )


def _write(table: TrackingTable, new: BreakerState, expected_version: int) -> bool:
    """One transition; False when another writer moved the breaker first (the table checks ``version``)."""
    item = {
        "state": new.state,
        "failures": list(new.failures),
        "opened_at": new.opened_at,
        "probe_at": new.probe_at,
        "version": new.version,
    }
    return table.write_breaker(item, expected_version)


def _update(table: TrackingTable, step: Any, attempts: int = 5) -> tuple[BreakerState, BreakerState]:
    for attempt in range(attempts):
        if attempt:
            sleep_before_retry(attempt)  # another writer moved the breaker: re-read after a jittered pause
        old = read_state(table)
        new = step(old)
        if new is None or _write(table, new, old.version):
            return old, new or old
    raise RuntimeError("circuit breaker: too many concurrent updates")


def record_failure(table: TrackingTable, now: float, cfg: BreakerConfig) -> tuple[BreakerState, bool]:
    """Returns the new state and whether this failure opened the breaker (alert once)."""
    old, new = _update(table, lambda s: on_failure(s, now, cfg))
    opened = new.state == OPEN and old.state != OPEN
    if opened:
        log.warning("circuit breaker opened", extra={"failures": len(new.failures), "from": old.state})
    return new, opened


def record_success(table: TrackingTable, now: float) -> BreakerState:
    old = read_state(table)
    if old.state == CLOSED and not old.failures:
        return old  # nothing to reset: no write on the happy path
    _, new = _update(table, on_success)
    if old.state != CLOSED:
        log.info("circuit breaker closed", extra={"from": old.state})
    return new


class SealPermit(StrEnum):
    """What the breaker lets one sealer do (not the breaker's state: see CLOSED/OPEN/HALF_OPEN)."""

    SEAL = "seal"  # closed: seal as usual
    PROBE = "probe"  # this caller won the half-open probe: seal one manifest, no more
    DENIED = "denied"  # open (or a probe is out): seal nothing


def seal_permit(table: TrackingTable, now: float, cfg: BreakerConfig) -> SealPermit:
    """For the sealer: closed, probe (exactly one caller per cool-down wins it) or denied."""
    s = read_state(table)
    allowed, new = on_seal_request(s, now, cfg)
    if new is None:
        return SealPermit.SEAL if allowed else SealPermit.DENIED
    # The probe is taken by the conditional write on ``version``: a racing sealer loses it.
    return SealPermit.PROBE if _write(table, new, s.version) else SealPermit.DENIED
