"""SNS alerts: ids, error names and counts only, never record contents (the state machine's own
Alert states follow the same shape)."""

from __future__ import annotations

import json
import logging
from typing import Any

log = logging.getLogger(__name__)
MAX_TEXT = 300


def short(text: Any, limit: int = MAX_TEXT) -> str:
    """Error text trimmed; Glue causes can be long and must not carry data into alerts."""
    value = str(text or "")
    return value if len(value) <= limit else value[: limit - 3] + "..."


def publish_alert(sns: Any, topic_arn: str, kind: str, subject: str, fields: dict[str, Any]) -> bool:
    """Publish when a topic is configured; returns whether it was sent. An alert that cannot be
    sent is logged, not raised: the state it reports is already in the table."""
    if not topic_arn:
        log.warning("alert not sent: no ALERTS_TOPIC_ARN", extra={"kind": kind, **fields})
        return False
    try:
        sns.publish(
            TopicArn=topic_arn, Subject=subject[:100], Message=json.dumps({"kind": kind, **fields}, default=str)
        )
    except Exception:
        log.exception("alert publish failed", extra={"kind": kind})
        return False
    return True
