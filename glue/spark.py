"""The one local SparkSession builder: the job's entry point off Glue (glue/ndjson_to_parquet.py),
the Glue-job test fixture (tests/functional/glue/conftest.py) and the bench (bench/glue_job.py)
differ only in master, app name and a few settings, passed in ``conf``."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

# What every local session gets; ``conf`` overrides any of them.
BASE_CONF = {
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.enabled": "false",
    # The console progress bar fights with the local runtime's own status line.
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
}


def local_session(
    master: str = "local[*]",
    app_name: str = "ndjson-to-parquet",
    conf: Mapping[str, str] | None = None,
    log_level: str | None = None,
) -> Any:
    """A local SparkSession, or the one already running in this process (``getOrCreate``: then
    ``master`` and ``conf`` do not apply; see ``session_running``)."""
    # Workers must run this interpreter (the venv with pyarrow), not whatever python3 is on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name).master(master)
    for key, value in {**BASE_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    if log_level:
        session.sparkContext.setLogLevel(log_level)
    return session


def session_running() -> bool:
    """Is a SparkContext running in this process, whichever thread started it? Whoever did not
    start it must not stop it. (``SparkSession.getActiveSession`` is per thread: it misses a
    session started in another thread, e.g. the local runtime's background start.)"""
    from pyspark import SparkContext

    return SparkContext._active_spark_context is not None
