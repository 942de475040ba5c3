"""The local runtime's warm SparkSession: it stops only the session it started."""

from __future__ import annotations

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
