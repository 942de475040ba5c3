"""The local runtime's warm SparkSession: it stops only the session it started."""

from __future__ import annotations

import threading

import pytest

from ndjson_parquet.local.runtime import warm_spark

pytestmark = [pytest.mark.spark]


def test_warm_spark_reuses_a_running_session_and_leaves_it_running(spark: object) -> None:
    # GIVEN a session started by someone else (this test session's fixture)
    # WHEN a local run warms Spark and finishes
    with warm_spark() as get_spark:
        assert get_spark().sparkContext is spark.sparkContext  # type: ignore[attr-defined]
    # THEN the caller's session still works (it used to be stopped under it)
    assert spark.range(3).count() == 3  # type: ignore[attr-defined]


def test_warm_spark_from_another_thread_leaves_the_running_session(spark: object) -> None:
    # GIVEN the session started by this test session's fixture, in the main thread
    # WHEN a local run warms Spark from another thread (SparkSession.getActiveSession is per
    # thread there, so it used to look as if no session existed)
    def run() -> None:
        with warm_spark() as get_spark:
            get_spark()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    # THEN that run did not stop the session it did not start
    assert spark.range(3).count() == 3  # type: ignore[attr-defined]
