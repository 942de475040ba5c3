"""ClaimRun's engine rule (chalicelib/workflow/engine.py) and its settings."""

from __future__ import annotations

import pytest

from chalicelib.manifest import ManifestFile
from chalicelib.settings import DEFAULT_LAMBDA_MAX_BYTES, Settings, SettingsError
from chalicelib.workflow.engine import GZIP_EXPANSION, choose_engine, work_bytes
from chalicelib.workflow.finalize import run_identity

BASE = {"TABLE_NAME": "t", "MANIFEST_BUCKET": "m", "EVENT_BUS_NAME": "b"}


def test_gz_files_count_expanded_plain_files_at_their_size() -> None:
    files = [ManifestFile("s3://b/a.ndjson", 100), ManifestFile("s3://b/b.JSONL.GZ", 10), ManifestFile("s3://b/c", 1)]
    assert work_bytes(files) == 100 + 10 * GZIP_EXPANSION + 1
    assert work_bytes([]) == 0


def test_auto_sends_up_to_the_limit_to_lambda_and_a_setting_forces_an_engine() -> None:
    assert choose_engine(1000, "auto", 1000) == "lambda"
    assert choose_engine(1001, "auto", 1000) == "glue"
    assert choose_engine(10**12, "lambda", 1000) == "lambda"
    assert choose_engine(0, "glue", 1000) == "glue"
    with pytest.raises(ValueError, match="unknown engine setting"):
        choose_engine(0, "spark", 1000)


def test_settings_read_the_rule_and_refuse_an_unknown_engine() -> None:
    default = Settings.from_env(BASE)
    assert (default.convert_engine, default.lambda_max_bytes) == ("auto", DEFAULT_LAMBDA_MAX_BYTES)
    # 40 MB/s (assumed, cold) x 300 s x a fifth: 2.4 GB
    assert DEFAULT_LAMBDA_MAX_BYTES == 2_400_000_000
    custom = Settings.from_env({**BASE, "CONVERT_ENGINE": "Glue", "LAMBDA_MAX_BYTES": "0"})
    assert (custom.convert_engine, custom.lambda_max_bytes) == ("glue", 0)
    with pytest.raises(SettingsError, match="CONVERT_ENGINE='spark' must be one of auto, lambda, glue"):
        Settings.from_env({**BASE, "CONVERT_ENGINE": "spark"})
    with pytest.raises(SettingsError, match="LAMBDA_MAX_BYTES"):
        Settings.from_env({**BASE, "LAMBDA_MAX_BYTES": "-1"})


def test_finalize_reads_run_id_and_engine_and_still_accepts_job_run_id() -> None:
    assert run_identity({"run_id": "tok", "engine": "lambda"}) == ("tok", "lambda")
    assert run_identity({"run_id": "jr_1", "engine": "glue"}) == ("jr_1", "glue")
    assert run_identity({"job_run_id": "jr_2"}) == ("jr_2", "glue")  # an execution started before issue 26
    assert run_identity({}) == ("", "")
