"""bench/freshness.py: percentiles, the AWS latencies added, the per-rate summary."""

from __future__ import annotations

import pytest

from bench import freshness
from ndjson_parquet.cost_model import AWS_LATENCY_SECONDS


def test_percentile_is_nearest_rank() -> None:
    values = list(range(1, 101))
    assert freshness.percentile(values, 50) == 50
    assert freshness.percentile(values, 95) == 95
    assert freshness.percentile([3.0], 95) == 3.0
    assert freshness.percentile([5, 1, 4, 2, 3], 95) == 5
    with pytest.raises(ValueError):
        freshness.percentile([], 50)


def test_aws_added_seconds_are_the_stated_constants_and_the_cold_start() -> None:
    added = freshness.aws_added_seconds(cold_start_s=2.5)
    assert added["converter_cold_start"] == 2.5
    assert added["sqs_batching_window"] == 5.0  # app.py INGEST_BATCH_WINDOW_SECONDS default
    assert added["sfn_transitions"] == pytest.approx(5 * AWS_LATENCY_SECONDS["sfn_transition"])
    assert added["catalog_commit_extra"] == AWS_LATENCY_SECONDS["catalog_commit_extra"]


def test_summarize_reports_missing_files_and_the_target() -> None:
    uploaded = {f"s3://b/{i}": 100.0 for i in range(20)}
    committed = {f"s3://b/{i}": 100.0 + 30 + i for i in range(19)}  # one file never committed
    out = freshness.summarize(uploaded, committed, {"a": 5.0, "b": 5.0})
    assert out["files_uploaded"] == 20 and out["files_committed"] == 19 and out["files_missing"] == 1
    assert out["local"] == {"p50_s": 39.0, "p95_s": 48.0, "max_s": 48.0}  # 30..48, nearest rank
    assert out["with_aws"]["p95_s"] == 58.0
    assert out["meets_p95_target"] is False  # a missing file fails it, whatever the percentiles
    del uploaded["s3://b/19"]
    assert freshness.summarize(uploaded, committed, {"a": 10.0})["meets_p95_target"] is True
    slow = {k: v + 100 for k, v in committed.items()}
    assert freshness.summarize(uploaded, slow, {})["meets_p95_target"] is False
    assert freshness.summarize(uploaded, {}, {})["meets_p95_target"] is False


def test_main_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--rates", "1m"], ["--minutes", "0"], ["--rates", ","]):
        with pytest.raises(SystemExit) as exc:
            freshness.main(argv)
        assert exc.value.code == 2
    assert "--rates of 8k, 500k" in capsys.readouterr().err
