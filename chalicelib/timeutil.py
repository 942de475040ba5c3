"""Timestamps as stored in the table: ISO 8601 UTC strings with microseconds, fixed width so
string order is time order (epoch numbers are read too). The one place the format is defined."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(raw: str) -> datetime:
    return datetime.strptime(raw, TIME_FORMAT).replace(tzinfo=UTC)


def now_iso(now: float) -> str:
    return format_time(datetime.fromtimestamp(now, UTC))


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
