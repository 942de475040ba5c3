"""One backoff rule for the retries the code makes itself (botocore retries the API calls):
exponential with full jitter, so callers that collided do not collide again in step."""

from __future__ import annotations

import random
import time


def backoff_delay(attempt: int, base: float = 0.05, cap: float = 2.0) -> float:
    """Seconds to wait before retry number ``attempt`` (1, 2, ...): uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * 2 ** max(attempt, 0)))


def sleep_before_retry(attempt: int, base: float = 0.05, cap: float = 2.0) -> None:
    time.sleep(backoff_delay(attempt, base, cap))
