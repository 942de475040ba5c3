"""The one place that decides when a tracking item expires (DynamoDB TTL, epoch seconds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def expires_at(now: datetime, days: int) -> int:
    """Epoch seconds ``days`` after ``now``. DynamoDB deletes the item some time after that."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return int((now + timedelta(days=days)).timestamp())
