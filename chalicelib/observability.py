"""Powertools Logger, Metrics and Tracer shared by the handlers.

Logs are structured JSON; they never carry whole events, and bucket/key only at DEBUG.
Metrics go out as CloudWatch EMF on ``flush()``; handlers flush in a ``finally`` because
Chalice calls them with the event only, so powertools' ``log_metrics`` decorator cannot wrap them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "ndjson-parquet")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "NdjsonParquet")

logger = Logger(service=SERVICE, level=os.environ.get("LOG_LEVEL", "INFO"))
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)
tracer = Tracer(service=SERVICE)

# Metric names in one place (the dashboard and alarms use the same strings).
FILES_TRACKED = "FilesTracked"
FILES_SKIPPED = "FilesSkipped"
FILES_IGNORED = "FilesIgnored"
DUPLICATE_DELIVERIES = "DuplicateDeliveries"
MESSAGES_DEAD_LETTERED = "MessagesDeadLettered"
FILES_COUNTED = "FilesCounted"
RECORDS_REJECTED = "StreamRecordsRejected"
MANIFESTS_SEALED = "ManifestsSealed"
FILES_PER_MANIFEST = "FilesPerManifest"
SEAL_LATENCY = "SealLatency"
SEALS_INCOMPLETE = "SealsIncomplete"
EMIT_FAILURES = "ManifestReadyEmitFailures"
SEALS_PAUSED = "SealsPaused"  # a batch was ready but the circuit breaker is open
FILES_OUTSIDE_PREFIX = "FilesOutsidePrefix"
FILES_SET_ASIDE = "FilesSetAside"  # finalize: files the job set aside whole (conversion_error, invalid_gzip)
# Gauges flush_stale publishes every run, so their alarms always have data (and can return to OK).
OLDEST_PENDING_FILE_AGE = "OldestPendingFileAge"  # seconds; max over open dates, 0 when nothing is pending
CIRCUIT_BREAKER_OPEN = "CircuitBreakerOpen"  # 1 while open or half-open (a probe is out), else 0

# Every metric name the code emits (tests/unit/test_metric_names.py: each alarm names one of these).
METRIC_NAMES = frozenset(
    {
        FILES_TRACKED,
        FILES_SKIPPED,
        FILES_IGNORED,
        DUPLICATE_DELIVERIES,
        MESSAGES_DEAD_LETTERED,
        FILES_COUNTED,
        RECORDS_REJECTED,
        MANIFESTS_SEALED,
        FILES_PER_MANIFEST,
        SEAL_LATENCY,
        SEALS_INCOMPLETE,
        EMIT_FAILURES,
        SEALS_PAUSED,
        FILES_OUTSIDE_PREFIX,
        FILES_SET_ASIDE,
        OLDEST_PENDING_FILE_AGE,
        CIRCUIT_BREAKER_OPEN,
    }
)


def count(name: str, value: float = 1) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def seconds(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Seconds, value=value)


@contextmanager
def handler_scope(handler: str) -> Iterator[None]:
    """Tag logs with the handler name and always publish the metrics collected inside."""
    logger.append_keys(handler=handler)
    try:
        yield
    finally:
        metrics.flush_metrics()
        logger.remove_keys(["handler"])
