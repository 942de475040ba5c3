"""bench/engines.py: the result assembly (medians, ratios, the cost model's figures) is pure."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import engines
from ndjson_parquet.cost_model import engine_figures_from_bench

MIB = 1024 * 1024


def _runs() -> dict[str, list[float]]:
    return {
        "duckdb": [2.0, 1.0, 3.0],  # median 2.0
        "process_warm": [1.5, 1.0, 2.0],  # median 1.5
        "process_cold": [4.0, 3.0, 5.0],  # median 4.0
        "glue_warm": [3.0, 3.0, 9.0],  # median 3.0
        "glue_cold": [15.0, 13.0, 14.0],  # median 14.0
    }


def test_assemble_medians_ratios_and_model_figures() -> None:
    small = {"process_warm": [0.4, 0.3, 0.5], "glue_warm": [1.0, 1.0, 1.0], "duckdb": [0.1, 0.1, 0.1]}
    cold = [{"import_s": 1.0, "workers_start_s": 0.2, "run_s": 2.0}, {"import_s": 1.2, "workers_start_s": 0.4}]
    out = engines.assemble(_runs(), small, [1.0, 2.0, 1.5], cold, input_bytes=150 * MIB, small_bytes=3 * MIB)
    assert out["engines"]["process_warm"]["median_s"] == 1.5
    assert out["engines"]["process_warm"]["mib_s"] == 100.0
    assert out["engines"]["duckdb"]["mb_s"] == round(150 * MIB / 1e6 / 2.0, 1)
    assert out["ratios"]["process_warm_vs_duckdb"] == pytest.approx(2.0 / 1.5, abs=0.01)
    assert out["ratios"]["process_warm_vs_glue_warm"] == 2.0
    assert out["ratios"]["process_cold_vs_glue_cold"] == 3.5
    model = out["model"]
    assert model["lambda_mb_per_second"] == 100.0 and model["glue_mb_per_second"] == 50.0
    assert model["lambda_fixed_seconds"] == pytest.approx(0.4 - 3 / 100)  # one-file median minus its bytes
    assert model["lambda_cold_start_seconds"] == pytest.approx(1.5 + 0.3)  # imports + workers, medians
    assert model["glue_start_seconds"] == 11.0  # cold minus warm
    assert model["lambda_gb_seconds_per_mib"] == pytest.approx(3538 / 1024 / 100, abs=1e-5)
    assert model["glue_dpu_seconds_per_mib"] == pytest.approx(2 / 50)
    # the cost model reads exactly these figures
    figures = engine_figures_from_bench({"commit": "abc", "model": model})
    assert figures.lambda_mb_per_second == 100.0 and figures.glue_start_seconds == 11.0


def test_fixed_seconds_never_negative() -> None:
    small = {"process_warm": [0.01], "glue_warm": [1.0], "duckdb": [0.1]}
    out = engines.assemble(_runs(), small, [1.0], [], input_bytes=150 * MIB, small_bytes=3 * MIB)
    assert out["model"]["lambda_fixed_seconds"] == 0.0
    assert out["model"]["lambda_cold_start_seconds"] == 1.0  # no cold-run parts: imports only


def test_rounds_rotate_the_order() -> None:
    orders = [engines.rotated(engines.ENGINES, r) for r in range(len(engines.ENGINES))]
    assert {o[0] for o in orders} == set(engines.ENGINES)
    assert all(sorted(o) == sorted(engines.ENGINES) for o in orders)


def test_git_commit_names_head_and_dirty_state(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "a.txt").write_text("a")
    git("add", "a.txt")
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "a")
    head, dirty = engines.git_commit(tmp_path)
    assert len(head) == 40 and not dirty
    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "bench" / "results" / "x.json").write_text("{}")  # results do not make it dirty
    assert engines.git_commit(tmp_path) == (head, False)
    (tmp_path / "a.txt").write_text("b")
    assert engines.git_commit(tmp_path) == (head, True)
    assert engines.git_commit(tmp_path / "absent") == ("", False)
