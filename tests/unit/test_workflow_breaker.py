from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.workflow.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    BreakerConfig,
    BreakerState,
    on_failure,
    on_seal_request,
    on_success,
)

CFG = BreakerConfig(threshold=3, window_seconds=100, cooldown_seconds=50)


def test_opens_after_threshold_failures_within_window_then_half_open_probe_then_closes() -> None:
    s = BreakerState()
    for t in (0, 10, 20):
        s = on_failure(s, t, CFG)
    assert s.state == OPEN and s.opened_at == 20
    assert on_seal_request(s, 60, CFG) == (False, None)  # cooling down: sealing paused
    allowed, probe = on_seal_request(s, 70, CFG)
    assert allowed and probe is not None and probe.state == HALF_OPEN
    assert on_seal_request(probe, 80, CFG)[0] is False  # one probe at a time
    assert on_success(probe).state == CLOSED
    assert on_failure(probe, 90, CFG).state == OPEN  # the probe failed: open again


def test_failures_outside_the_window_or_broken_by_success_do_not_open() -> None:
    s = BreakerState()
    for t in (0, 150, 300):
        s = on_failure(s, t, CFG)
    assert s.state == CLOSED
    s = on_failure(on_success(on_failure(on_failure(BreakerState(), 0, CFG), 1, CFG)), 2, CFG)
    assert s.state == CLOSED and len(s.failures) == 1


@given(st.lists(st.floats(min_value=0, max_value=1000), max_size=20))
def test_version_increases_with_every_transition(times: list[float]) -> None:
    s = BreakerState()
    for t in sorted(times):
        new = on_failure(s, t, CFG)
        assert new.version == s.version + 1
        s = new
