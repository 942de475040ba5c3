"""No JVM unless a manifest goes to Glue: the local runtime's SparkSession starts on first use,
after a Java check that fails in the one line ``make check-java`` prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from ndjson_parquet.java_check import java_problem
from ndjson_parquet.local.report import RunReport
from ndjson_parquet.local.runtime import JavaMissingError, warm_spark


class _Session:
    def __init__(self) -> None:
        self.stopped = 0

    def stop(self) -> None:
        self.stopped += 1


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch) -> list[_Session]:
    import glue.ndjson_to_parquet
    import glue.spark

    started: list[_Session] = []

    def spark_session() -> _Session:
        started.append(_Session())
        return started[-1]

    monkeypatch.setattr(glue.ndjson_to_parquet, "spark_session", spark_session)
    monkeypatch.setattr(glue.spark, "session_running", lambda: False)
    monkeypatch.setattr("ndjson_parquet.local.runtime.java_problem", lambda: None)
    return started


def test_a_run_that_never_asks_starts_no_session(starts: list[_Session]) -> None:
    with warm_spark():
        pass
    assert starts == []


def test_the_first_glue_run_starts_it_once_and_the_run_stops_it(starts: list[_Session]) -> None:
    with warm_spark() as get_spark:
        assert starts == []
        first, second = get_spark(), get_spark()
    assert first is second and starts == [first]
    assert first.stopped == 1


def test_eager_starts_it_in_the_background_for_an_all_glue_run(starts: list[_Session]) -> None:
    with warm_spark(eager=True):
        pass
    assert len(starts) == 1 and starts[0].stopped == 1


def test_without_java_the_glue_run_fails_in_java_checks_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-such-jdk"))
    with warm_spark() as get_spark, pytest.raises(JavaMissingError) as info:
        get_spark()
    assert str(info.value) == java_problem()
    assert "Java 17 is required by Spark" in str(info.value) and "\n" not in str(info.value)


def test_the_closing_table_names_the_engines_and_whether_a_jvm_ran() -> None:
    report = RunReport(engines={"lambda": 3, "glue": 0})
    assert "| engines       | lambda 3, glue 0 (no JVM) |" in report.render_table()
    assert report.to_dict()["engines"] == {"lambda": 3, "glue": 0}
    assert report.to_dict()["spark_started"] is False
    report.spark_started, report.engines = True, {"lambda": 1, "glue": 2}
    assert "lambda 1, glue 2 |" in report.render_table()
