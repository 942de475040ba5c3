"""Cost model: pure arithmetic checked on values, and the CLI output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ndjson_parquet import cli
from ndjson_parquet.cost_model import PRICES, Counts, Workload, counts_from_bench, estimate


def test_glue_is_billed_at_least_one_minute_per_manifest() -> None:
    est = estimate(Workload(files_per_day=500_000, mb_per_file=5))
    assert est.files_per_manifest == 200 and est.manifests_per_day == 2500
    # 2,500 runs/day x 30 x 60 s x 2 DPU at $0.44/DPU-h = $1,100; FLEX at $0.29 = $725
    assert est.glue_standard_usd == pytest.approx(2500 * 30 * 60 / 3600 * 2 * PRICES["glue_dpu_hour_standard"])
    assert est.glue_flex_usd == pytest.approx(1100 * 0.29 / 0.44)
    assert est.total_flex < est.total_standard


def test_low_rate_manifests_are_sealed_by_age_not_size() -> None:
    est = estimate(Workload(files_per_day=8_000, batch_max_wait_seconds=900))
    assert est.files_per_manifest == pytest.approx(8000 / 86400 * 900)
    assert est.manifests_per_day == 96  # 8000 / 83.33


def test_dynamodb_cost_follows_the_counted_requests() -> None:
    base = estimate(Workload(files_per_day=100_000), Counts())
    doubled = estimate(Workload(files_per_day=100_000), Counts(ddb_writes_per_file=8.0))
    ddb = {i.service: i.monthly_usd for i in base.items}["DynamoDB"]
    ddb2 = {i.service: i.monthly_usd for i in doubled.items}["DynamoDB"]
    extra_wru = 100_000 * 30 * 4.0 * 2.0
    assert ddb2 - ddb == pytest.approx(extra_wru * PRICES["ddb_write_request_unit"])


def test_counts_from_bench_uses_measured_phases() -> None:
    bench = {
        "files": 1000,
        "manifests_sealed": 5,
        "by_phase_and_operation": {
            "track": {"PutItem": 1000},
            "count": {"UpdateItem": 1000, "GetItem": 10},
            "seal": {"UpdateItem": 1000, "PutItem": 10, "Query": 50},
        },
    }
    c = counts_from_bench(bench, source="x.json")
    assert c.ddb_writes_per_file == pytest.approx(1 + 1 + 1 + 1)  # track, count, claim, converted
    assert c.ddb_reads_per_file == pytest.approx(0.01 + 0.05)
    assert c.ddb_writes_per_manifest == pytest.approx(10 / 5 + 3)
    assert "1000 files" in c.source


def test_cli_prints_components_seed_figures_and_prices(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["cost", "--files-per-day", "8000", "--bench", str(tmp_path / "absent.json")]) == 0
    out = capsys.readouterr().out
    for needle in ("Lambda", "DynamoDB", "Step Functions", "Glue STANDARD", "Glue FLEX", "S3", "EventBridge"):
        assert needle in out
    assert "~$270/month" in out and "~$5,450/month" in out and "~$3,500/month" in out
    assert "2025-01" in out and "$0.44" in out
    assert cli.main(["cost", "--files-per-day", "500000", "--json", "--bench", str(tmp_path / "absent.json")]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["glue_standard_usd"] == pytest.approx(1100.0)
