"""Timestamps as stored in the table: ISO 8601 UTC strings (epoch numbers are read too)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def now_iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_epoch(value: Any) -> float | None:
    """Epoch seconds of a stored timestamp, None when absent or unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    try:
        text = str(value).replace("Z", "+00:00")
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
