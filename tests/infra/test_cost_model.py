"""Cost model: pure arithmetic checked on values, its ties to the stack's defaults, and the CLI output."""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from pathlib import Path

import pytest

from chalicelib import settings as settings_module
from chalicelib.settings import Settings
from ndjson_parquet import cli
from ndjson_parquet.cost_model import (
    GLUE_PATH,
    LAMBDA_PATH,
    LEGACY_ENGINES,
    MIB,
    PRICES,
    Counts,
    EngineFigures,
    Workload,
    counts_from_bench,
    engine_figures_from_bench,
    estimate,
    legacy_workload,
    load_counts,
    load_engine_figures,
    manifest_size,
    to_json,
    transitions,
)
from ndjson_parquet.infra_template import ASL_PATH, load_template

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
MEASURED_COUNTS = load_counts(RESULTS / "control_plane.json")
MEASURED_ENGINES = load_engine_figures(RESULTS / "engines.json")


def _defaults(cls: type) -> dict:
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


def test_price_table_is_pinned() -> None:
    """The cost goal must come from the engine: today's prices, unchanged."""
    assert PRICES == {
        "lambda_request": 0.20 / 1e6,
        "lambda_gb_second": 0.0000166667,
        "ddb_write_request_unit": 0.625 / 1e6,
        "ddb_read_request_unit": 0.125 / 1e6,
        "ddb_storage_gb_month": 0.25,
        "ddb_pitr_gb_month": 0.20,
        "sfn_state_transition": 0.025 / 1000,
        "glue_dpu_hour_standard": 0.44,
        "glue_dpu_hour_flex": 0.29,
        "s3_put_request": 0.005 / 1000,
        "s3_get_request": 0.0004 / 1000,
        "s3_storage_gb_month": 0.023,
        "sqs_request": 0.40 / 1e6,
        "eventbridge_event": 1.00 / 1e6,
        "kms_key_month": 1.00,
        "kms_request": 0.03 / 10000,
    }


def test_workload_defaults_are_the_settings_defaults() -> None:
    w, s = _defaults(Workload), _defaults(Settings)
    for name in ("batch_max_files", "batch_max_bytes", "seal_max_age_seconds", "lambda_max_bytes", "convert_engine"):
        assert w[name] == s[name], name
    assert w["lambda_max_bytes"] == settings_module.DEFAULT_LAMBDA_MAX_BYTES
    assert w["converter_timeout_seconds"] == settings_module.CONVERTER_TIMEOUT_SECONDS


def test_workload_defaults_are_the_schedule_and_event_source_defaults() -> None:
    app_py = (ROOT / "app.py").read_text(encoding="utf-8")

    def env_default(name: str) -> str:
        found = re.findall(rf'os\.environ\.get\("{name}", "(\d+)"\)', app_py)
        assert len(found) == 1, name
        return found[0]

    w = _defaults(Workload)
    assert int(env_default("FLUSH_RATE_MINUTES")) == w["flush_rate_minutes"] == 1
    assert int(env_default("RECOVER_RATE_MINUTES")) == w["recover_rate_minutes"]
    assert int(env_default("INGEST_BATCH_SIZE")) == w["ingest_batch_size"]
    assert int(env_default("INGEST_BATCH_WINDOW_SECONDS")) == w["ingest_batch_window_seconds"]
    assert int(env_default("STREAM_BATCH_SIZE")) == w["stream_batch_size"]


def test_workload_defaults_are_the_template_parameter_defaults() -> None:
    params = load_template()["Parameters"]
    w = _defaults(Workload)
    assert int(params["ConverterMemoryMB"]["Default"]) == w["converter_memory_mb"] == 3538
    assert int(params["ConverterTimeoutSeconds"]["Default"]) == w["converter_timeout_seconds"]
    assert int(params["LambdaMaxBytes"]["Default"]) == w["lambda_max_bytes"]
    assert params["ConvertEngine"]["Default"] == w["convert_engine"]
    assert int(params["GlueNumberOfWorkers"]["Default"]) == w["glue_workers"]
    assert params["GlueWorkerType"]["Default"] == "G.1X" and w["glue_dpu_per_worker"] == 1.0


@pytest.mark.parametrize("path", [LAMBDA_PATH, GLUE_PATH], ids=["lambda", "glue"])
def test_paths_follow_the_state_machine(path: tuple[str, ...]) -> None:
    """Each modelled state leads to the next in the ASL (Next, a Choice rule or its Default)."""
    asl = json.loads(ASL_PATH.read_text(encoding="utf-8"))
    states = asl["States"]
    assert asl["StartAt"] == path[0]
    for here, there in itertools.pairwise(path):
        state = states[here]
        targets = {state.get("Next"), state.get("Default")} | {c.get("Next") for c in state.get("Choices", [])}
        assert there in targets, f"{here} does not lead to {there}"
    assert states[path[-1]]["Type"] == "Succeed"


def test_engine_figure_defaults_are_the_last_measurement() -> None:
    """Without bench results the model uses its defaults: they must be the committed measurement."""
    bench = json.loads((RESULTS / "engines.json").read_text(encoding="utf-8"))
    measured = engine_figures_from_bench(bench)
    default = EngineFigures()
    for name in ("lambda_mb_per_second", "lambda_fixed_seconds", "lambda_cold_start_seconds"):
        assert getattr(default, name) == getattr(measured, name), name
    for name in ("glue_mb_per_second", "glue_start_seconds"):
        assert getattr(default, name) == getattr(measured, name), name
    assert bench["commit"] and bench["codec"] == "zstd" and bench["rounds"] >= 5
    assert bench["commit"][:12] in MEASURED_ENGINES.source


def test_manifest_size_follows_the_seal_rule() -> None:
    assert manifest_size(Workload(files_per_day=8_000)) == (pytest.approx(8000 / 86400 * 60), "age")
    assert manifest_size(Workload(files_per_day=500_000, mb_per_file=3.5)) == (200.0, "files")
    # 700 MiB / 10 MiB = 70 files, before 200 files or the age
    assert manifest_size(Workload(files_per_day=500_000, mb_per_file=10)) == (70.0, "bytes")
    assert manifest_size(Workload(files_per_day=10)) == (1.0, "age")  # at least one file


def test_small_manifests_go_to_lambda_large_ones_to_glue() -> None:
    small = estimate(Workload(files_per_day=8_000, mb_per_file=3.5))
    assert small.engine == "lambda" and small.glue_standard_usd == 0 and small.converter_usd > 0
    assert small.split["lambda_manifests_per_day"] == small.manifests_per_day == 1440
    # 200 files x 3.5 MiB = 700 MiB: above a 500 MiB cap, Glue at the 1-minute minimum
    big = estimate(Workload(files_per_day=500_000, mb_per_file=3.5, lambda_max_bytes=500 * MIB), None, LEGACY_ENGINES)
    assert big.engine == "glue" and big.converter_usd == 0
    assert big.split == {
        "lambda_manifests_per_day": 0.0,
        "glue_manifests_per_day": 2500,
        "lambda_share": 0.0,
        "converter_usd": 0.0,
        "glue_standard_usd": pytest.approx(1100.0),
    }
    assert big.glue_standard_usd == pytest.approx(2500 * 30 * 60 / 3600 * 2 * PRICES["glue_dpu_hour_standard"])
    forced = estimate(Workload(files_per_day=8_000, convert_engine="glue"))
    assert forced.engine == "glue" and forced.converter_usd == 0
    with pytest.raises(ValueError, match="convert_engine"):
        estimate(Workload(files_per_day=8_000, convert_engine="spark"))


def test_converter_is_billed_in_gb_seconds_from_the_measured_rate() -> None:
    e = EngineFigures(lambda_mb_per_second=50.0, lambda_fixed_seconds=0.5, lambda_cold_start_seconds=2.0)
    w = Workload(files_per_day=500_000, mb_per_file=3.5, converter_cold_start_share=0.0)
    est = estimate(w, Counts(), e)
    seconds = 0.5 + 700 / 50.0 + 1.0  # fixed + bytes + the catalog commit's stated AWS latency
    assert est.run.seconds == pytest.approx(seconds)
    gb_s = seconds * 3538 / 1024
    per_run = gb_s * PRICES["lambda_gb_second"] + PRICES["lambda_request"]
    assert est.converter_usd == pytest.approx(2500 * 30 * per_run)
    twice = estimate(w, Counts(), dataclasses.replace(e, lambda_mb_per_second=25.0))
    assert twice.converter_usd > est.converter_usd * 1.8


def test_a_lambda_run_past_its_timeout_is_paid_then_converted_on_glue() -> None:
    slow = EngineFigures(lambda_mb_per_second=1.0)
    est = estimate(Workload(files_per_day=500_000, mb_per_file=3.5), Counts(), slow)
    assert est.fallback and est.engine == "lambda" and est.run.engine == "glue"
    assert est.converter_usd == pytest.approx(2500 * 30 * (300 * 3538 / 1024 * PRICES["lambda_gb_second"] + 2e-7))
    assert est.glue_standard_usd > 0 and est.split["glue_manifests_per_day"] == 2500


def test_step_functions_bill_the_states_of_the_path() -> None:
    est = estimate(Workload(files_per_day=8_000))
    sfn = {i.service: i.monthly_usd for i in est.items}["Step Functions"]
    assert transitions(LAMBDA_PATH) == 8  # 7 states + the execution's start
    assert sfn == pytest.approx(1440 * 30 * 8 * PRICES["sfn_state_transition"])


def test_scheduled_invocations_follow_the_flush_rate() -> None:
    every_minute = estimate(Workload(files_per_day=0))
    every_five = estimate(Workload(files_per_day=0, flush_rate_minutes=5))
    lam1 = {i.service: i.detail for i in every_minute.items}["Lambda"]
    lam5 = {i.service: i.detail for i in every_five.items}["Lambda"]
    assert "(47,520 scheduled)" in lam1  # (1440 + 144) x 30
    assert "(12,960 scheduled)" in lam5  # (288 + 144) x 30


def test_freshness_is_the_seal_wait_plus_conversion_and_commit() -> None:
    low = estimate(Workload(files_per_day=8_000, mb_per_file=3.5))
    # sealed by age: 60 s + the next arrival (10.8 s apart) before the flush (60 s)
    assert low.freshness_parts["seal_wait_s"] == pytest.approx(60 + 86400 / 8000, abs=0.1)
    assert low.freshness_typical_s < low.freshness_worst_s < 90
    high = estimate(Workload(files_per_day=500_000, mb_per_file=3.5))
    assert high.freshness_parts["seal_wait_s"] == pytest.approx(200 / (500_000 / 86400), abs=0.1)
    legacy = estimate(legacy_workload(8_000, 3.5))
    assert legacy.freshness_worst_s > 900  # today: 15 minutes of waiting, then a Glue start


def test_legacy_workload_reproduces_the_figures_before_the_change() -> None:
    """Same price table, same counts: the stack before issue 26 costs what the issue quotes."""
    legacy_high = estimate(legacy_workload(500_000, 3.5), MEASURED_COUNTS, LEGACY_ENGINES)
    assert legacy_high.total_standard == pytest.approx(1523.58, abs=0.01)
    legacy_low = estimate(legacy_workload(8_000, 3.5), MEASURED_COUNTS, LEGACY_ENGINES)
    assert legacy_low.total_standard == pytest.approx(50.99, abs=0.01)


def test_the_cost_goal_is_met_with_the_measured_figures() -> None:
    high = estimate(Workload(files_per_day=500_000, mb_per_file=3.5), MEASURED_COUNTS, MEASURED_ENGINES)
    low = estimate(Workload(files_per_day=8_000, mb_per_file=3.5), MEASURED_COUNTS, MEASURED_ENGINES)
    assert high.total_standard <= 600 and high.engine == "lambda"
    assert low.total_standard <= 30 and low.engine == "lambda"


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


def test_engine_figures_from_bench_and_missing_file(tmp_path: Path) -> None:
    bench = {
        "commit": "0123456789abcdef0123",
        "dirty": True,
        "model": {
            "lambda_mb_per_second": 55.5,
            "lambda_fixed_seconds": 0.25,
            "lambda_cold_start_seconds": 1.5,
            "glue_mb_per_second": 40.0,
            "glue_start_seconds": 9.0,
        },
    }
    path = tmp_path / "engines.json"
    path.write_text(json.dumps(bench))
    e = load_engine_figures(path)
    assert (e.lambda_mb_per_second, e.glue_start_seconds, e.commit) == (55.5, 9.0, "0123456789abcdef0123")
    assert "0123456789ab + local changes" in e.source
    assert load_engine_figures(tmp_path / "absent.json") == EngineFigures()


def test_cli_prints_split_freshness_assumptions_and_prices(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    absent = ["--bench", str(tmp_path / "a.json"), "--engines-bench", str(tmp_path / "b.json")]
    assert cli.main(["cost", "--files-per-day", "8000", "--mb-per-file", "3.5", *absent]) == 0
    out = capsys.readouterr().out
    for needle in ("Lambda", "DynamoDB", "Step Functions", "Converter", "Glue STANDARD", "S3", "EventBridge"):
        assert needle in out
    assert "engine split: lambda 1,440/day, glue 0/day" in out
    assert "freshness (upload -> rows in the current snapshot)" in out and "seal wait" in out
    assert "Assumptions:" in out and "SEAL_MAX_AGE_SECONDS 60" in out and "LAMBDA_MAX_BYTES" in out
    assert "~$270/month" in out and "2025-01" in out and "$0.44" in out
    assert cli.main(["cost", "--files-per-day", "500000", "--mb-per-file", "3.5", "--json", *absent]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["split"]["lambda_manifests_per_day"] == 2500 and payload["split"]["glue_manifests_per_day"] == 0
    assert payload["total_standard_usd"] == pytest.approx(estimate(Workload(500_000, 3.5)).total_standard, abs=0.01)
    assert payload["freshness"]["worst_s"] > payload["freshness"]["typical_s"] > 0
    assert cli.main(["cost", "--files-per-day", "500000", "--mb-per-file", "3.5", "--legacy", "--json", *absent]) == 0
    legacy = json.loads(capsys.readouterr().out)
    assert legacy["glue_standard_usd"] == pytest.approx(1100.0) and legacy["converter_usd"] == 0
    assert to_json(estimate(Workload(500_000, 3.5)))["split"] == payload["split"]


def test_cli_refuses_bad_knobs(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["cost", "--files-per-day", "10", "--flush-rate-minutes", "0"]) == 2
    assert cli.main(["cost", "--files-per-day", "-1"]) == 2
    assert "error:" in capsys.readouterr().out
