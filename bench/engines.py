"""The conversion engines side by side, in one run, on the same data: DuckDB, the process-pool engine
(the converter Lambda's) warm and cold, and the Glue path (Spark) warm and cold.

Data: 40 files x 3.5 MiB of generated nested events (0.1% bad lines, seed 11), ~147 MB; and a
one-file manifest of the same data (a run's fixed cost). Parquet codec: zstd on every side, the
stack's ``CompressionType`` default (infra/pipeline.yaml). Engines, each on 2 cores:

- DuckDB ``COPY (SELECT * FROM read_json(..., ignore_errors=true)) TO ... (FORMAT parquet,
  COMPRESSION zstd)`` with ``SET threads=2``: the reference (auto-detecting; it nulls bad lines);
- process warm: ``run_job(ProcessExecutor(2), args)``, one executor reused across runs (a warm
  Lambda container), after a first run that is not counted;
- process cold: a fresh ``python -c`` process that imports the converter's modules, starts
  ProcessExecutor(2), runs the job once and exits: what a Lambda cold start adds to a run;
- glue warm: ``run_job`` with one local[2] SparkSession, after a first run that is not counted;
- glue cold: ``python glue/ndjson_to_parquet.py`` in a fresh process (a new JVM, as each Glue run).

ROUNDS interleaved rounds (each round runs every engine once, in a rotated order, so a burst of load
from other processes on a shared machine hits all of them); medians. MB/s is input MiB (2^20
bytes) over wall seconds. Also measured: the converter's cold-start import time (a fresh
interpreter importing the converter: ``converter.handler`` when present, else ``glue.job``,
``glue.executors``, ``pyarrow.parquet`` and ``pyiceberg.catalog.glue``), ROUNDS times, median.

Derived (``model``, read by ``ndjson_parquet/cost_model.py``): MiB/s per engine on 2 cores (2 local
cores stand for the converter's 2 vCPUs at 3,538 MB, and for a 2 x G.1X job), GB-seconds per MiB at
3,538 MB, DPU-seconds per MiB, a run's fixed seconds (one-file manifest minus its bytes at the
warm rate), the Glue start (cold minus warm). Results: ``bench/results/engines.json`` with the
git commit measured. ``python -m bench.engines [--rounds N] [--files N] [--out PATH]``. Figures
are for reading; only the engines disagreeing on rows fails the bench.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "engines.json"
FILES, FILE_MB, BAD_RATE, SEED = 40, 3.5, 0.001, 11
ROUNDS = 5
CODEC = "zstd"  # infra/pipeline.yaml CompressionType default
CONVERTER_MEMORY_MB = 3538  # infra/pipeline.yaml ConverterMemoryMB default: 2 vCPU
GLUE_DPU = 2  # 2 x G.1X
MIB = 1024 * 1024
ENGINES = ("duckdb", "process_warm", "process_cold", "glue_warm", "glue_cold")

# The converter's imports in a fresh interpreter (a Lambda INIT): the handler when it exists.
IMPORTS_SCRIPT = """
import importlib.util, json, sys, time
t = time.perf_counter()
if importlib.util.find_spec("converter") and importlib.util.find_spec("converter.handler"):
    import converter.handler
    what = ["converter.handler"]
else:
    import glue.job, glue.executors, pyarrow.parquet, pyiceberg.catalog.glue
    what = ["glue.job", "glue.executors", "pyarrow.parquet", "pyiceberg.catalog.glue"]
print(json.dumps({"import_s": time.perf_counter() - t, "modules": what}))
"""

# A cold process-pool run: imports, workers, one job, exit (its wall time is taken from outside).
COLD_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
from glue.executors import ProcessExecutor
from glue.job import JobArgs, run_job
t1 = time.perf_counter()
ex = ProcessExecutor(2)
try:
    t2 = time.perf_counter()
    s = run_job(ex, JobArgs(sys.argv[1], sys.argv[2], sys.argv[3], compression=sys.argv[4]))
    t3 = time.perf_counter()
finally:
    ex.close()
print(json.dumps({"import_s": t1 - t0, "workers_start_s": t2 - t1, "run_s": t3 - t2,
                  "rows": s.totals["rows"], "quarantined": s.totals["quarantined"], "engine": s.engine}))
"""


def git_commit(root: Path = ROOT) -> tuple[str, bool]:
    """HEAD's commit id and whether the tree differs from it (results files aside)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", ":!bench/results"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "", False
    return head, bool(status.strip())


def rotated(names: Sequence[str], round_no: int) -> list[str]:
    """The engines' order in a round: rotated by one each round, so none always runs first."""
    k = round_no % len(names)
    return list(names[k:]) + list(names[:k])


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def assemble(
    runs: Mapping[str, Sequence[float]],
    small: Mapping[str, Sequence[float]],
    import_s: Sequence[float],
    cold_parts: Sequence[Mapping[str, float]],
    input_bytes: int,
    small_bytes: int,
) -> dict[str, Any]:
    """Medians, MiB/s, ratios and the cost model's figures from the raw wall seconds."""
    mib = input_bytes / MIB
    engines: dict[str, Any] = {}
    for name in ENGINES:
        secs = list(runs[name])
        med = median(secs)
        engines[name] = {
            "runs_s": [round(s, 3) for s in secs],
            "median_s": round(med, 3),
            "mib_s": round(mib / med, 1),
            "mb_s": round(input_bytes / 1e6 / med, 1),
        }
    duck = mib / median(runs["duckdb"])
    ratios = {f"{name}_vs_duckdb": round((mib / median(runs[name])) / duck, 2) for name in ENGINES if name != "duckdb"}
    ratios["process_warm_vs_glue_warm"] = round(median(runs["glue_warm"]) / median(runs["process_warm"]), 2)
    ratios["process_cold_vs_glue_cold"] = round(median(runs["glue_cold"]) / median(runs["process_cold"]), 2)
    lambda_mib_s = mib / median(runs["process_warm"])
    glue_mib_s = mib / median(runs["glue_warm"])
    fixed = max(0.0, median(small["process_warm"]) - (small_bytes / MIB) / lambda_mib_s)
    imports = median(import_s)
    workers = median([p["workers_start_s"] for p in cold_parts]) if cold_parts else 0.0
    model = {
        "lambda_mb_per_second": round(lambda_mib_s, 2),
        "lambda_fixed_seconds": round(fixed, 3),
        "lambda_cold_start_seconds": round(imports + workers, 3),
        "glue_mb_per_second": round(glue_mib_s, 2),
        "glue_start_seconds": round(max(0.0, median(runs["glue_cold"]) - median(runs["glue_warm"])), 3),
        "lambda_gb_seconds_per_mib": round(CONVERTER_MEMORY_MB / 1024 / lambda_mib_s, 5),
        "glue_dpu_seconds_per_mib": round(GLUE_DPU / glue_mib_s, 5),
        "converter_memory_mb": CONVERTER_MEMORY_MB,
        "note": (
            "MiB/s on 2 local cores stand for the converter's 2 vCPUs at 3,538 MB and for a 2 x G.1X Glue job; "
            "the Glue figure is billed at >= 60 s per run"
        ),
    }
    return {
        "engines": engines,
        "small_manifest": {
            k: {"runs_s": [round(s, 3) for s in v], "median_s": round(median(v), 3)} for k, v in small.items()
        },
        "converter_cold_start": {
            "import_runs_s": [round(s, 3) for s in import_s],
            "import_median_s": round(imports, 3),
            "workers_start_median_s": round(workers, 3),
            "in_cold_runs": [{k: round(v, 3) for k, v in p.items() if isinstance(v, float)} for p in cold_parts],
        },
        "ratios": ratios,
        "model": model,
    }


# ---------------------------------------------------------------- the engines


def _duckdb(input_glob: str, out: Path) -> float:
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET threads=2")
        started = time.perf_counter()
        con.execute(
            f"COPY (SELECT * FROM read_json('{input_glob}', format='newline_delimited', ignore_errors=true)) "
            f"TO '{out}' (FORMAT parquet, COMPRESSION {CODEC})"
        )
        return time.perf_counter() - started
    finally:
        con.close()


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return dict(
        os.environ, PYSPARK_PYTHON=sys.executable, PYTHONPATH=f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)
    )


def _subprocess(cmd: list[str], cwd: Path, what: str) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{proc.stderr[-4000:]}")
    return seconds, proc.stdout.strip().splitlines()[-1]


def _import_time(work: Path) -> float:
    _, out = _subprocess([sys.executable, "-c", IMPORTS_SCRIPT], work, "converter imports")
    return float(json.loads(out)["import_s"])


class Bench:
    def __init__(self, work: Path, manifests: dict[str, Path]) -> None:
        self.work = work
        self.manifests = manifests
        self.n = 0
        self.executor: Any = None
        self.spark: Any = None
        self.rows: dict[str, tuple[int, int]] = {}

    def _out(self, name: str) -> tuple[str, str]:
        self.n += 1
        base = self.work / "runs" / f"{name}-{self.n}"
        return str(base / "out"), str(base / "q")

    def _args(self, manifest: str, name: str) -> Any:
        from glue.job import JobArgs

        out, q = self._out(name)
        return JobArgs(str(self.manifests[manifest]), out, q, compression=CODEC)

    def _record(self, name: str, manifest: str, rows: int, quarantined: int) -> None:
        seen = self.rows.setdefault(manifest, (rows, quarantined))
        if seen != (rows, quarantined):
            raise RuntimeError(f"{name} converted {rows} rows / {quarantined} quarantined, another engine {seen}")

    def start(self) -> None:
        from glue.executors import ProcessExecutor
        from glue.spark import local_session

        self.executor = ProcessExecutor(2)
        self.spark = local_session(
            "local[2]", "bench-engines", {"spark.sql.shuffle.partitions": "4"}, log_level="ERROR"
        )
        for manifest in self.manifests:  # first runs: not counted (JIT/JVM warm-up, page cache)
            self.process_warm(manifest)
            self.glue_warm(manifest)

    def stop(self) -> None:
        if self.executor is not None:
            self.executor.close()
        if self.spark is not None:
            self.spark.stop()

    def duckdb(self, manifest: str) -> float:
        pattern = "events-00000.ndjson" if manifest == "small" else "*.ndjson"
        return _duckdb(str(self.work / "input" / pattern), self.work / "runs" / f"duck-{manifest}.parquet")

    def process_warm(self, manifest: str) -> float:
        from glue.job import run_job

        args = self._args(manifest, "process")
        started = time.perf_counter()
        summary = run_job(self.executor, args)
        seconds = time.perf_counter() - started
        self._record("process_warm", manifest, summary.totals["rows"], summary.totals["quarantined"])
        return seconds

    def glue_warm(self, manifest: str) -> float:
        from glue.job import run_job

        args = self._args(manifest, "glue")
        started = time.perf_counter()
        summary = run_job(self.spark, args)
        seconds = time.perf_counter() - started
        self._record("glue_warm", manifest, summary.totals["rows"], summary.totals["quarantined"])
        return seconds

    def process_cold(self, manifest: str) -> float:
        out, q = self._out("process-cold")
        cmd = [sys.executable, "-c", COLD_SCRIPT, str(self.manifests[manifest]), out, q, CODEC]
        seconds, line = _subprocess(cmd, self.work, "cold process-pool run")
        parts = json.loads(line)
        self._record("process_cold", manifest, parts["rows"], parts["quarantined"])
        self.cold_parts.append(parts)
        return seconds

    def glue_cold(self, manifest: str) -> float:
        out, q = self._out("glue-cold")
        cmd = [
            sys.executable, str(ROOT / "glue" / "ndjson_to_parquet.py"),
            "--MANIFEST_PATH", str(self.manifests[manifest]), "--OUTPUT_PATH", out, "--QUARANTINE_PATH", q,
            "--COMPRESSION_TYPE", CODEC,
        ]  # fmt: skip
        seconds, line = _subprocess(cmd, self.work, "cold Glue job run")
        totals = json.loads(line)  # the entry point prints the totals at the top level
        self._record("glue_cold", manifest, totals["rows"], totals["quarantined"])
        return seconds

    cold_parts: list[dict[str, Any]]


def run(rounds: int, files: int, out: Path, progress: Callable[[str], None] = print) -> dict[str, Any]:
    from chalicelib.manifest import Manifest, ManifestFile
    from ndjson_parquet.sample_data import generate

    commit, dirty = git_commit()
    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    try:
        t = time.perf_counter()
        made = generate(work / "input", files, FILE_MB, BAD_RATE, SEED)
        progress(f"generated {len(made)} files in {time.perf_counter() - t:.1f}s")
        manifests = {}
        for name, chosen in (("full", made), ("small", made[:1])):
            path = work / f"manifest-{name}.json"
            mfiles = tuple(ManifestFile(uri=str(f.path), size=f.size) for f in chosen)
            path.write_text(Manifest(f"bench-{name}", "2024-05-01", mfiles).to_json())
            manifests[name] = path
        bench = Bench(work, manifests)
        bench.cold_parts = []
        runs: dict[str, list[float]] = {n: [] for n in ENGINES}
        small: dict[str, list[float]] = {"process_warm": [], "glue_warm": [], "duckdb": []}
        imports: list[float] = []
        bench.start()
        try:
            for r in range(rounds):
                imports.append(_import_time(work))
                for name in rotated(ENGINES, r):
                    runs[name].append(getattr(bench, name)("full"))
                for name in rotated(tuple(small), r):
                    small[name].append(getattr(bench, name)("small"))
                progress(
                    f"round {r + 1}/{rounds}: "
                    + ", ".join(f"{n} {runs[n][-1]:.2f} s" for n in ENGINES)
                    + f"; one file: process {small['process_warm'][-1]:.2f} s, glue {small['glue_warm'][-1]:.2f} s"
                    + f"; converter imports {imports[-1]:.2f} s"
                )
                shutil.rmtree(work / "runs", ignore_errors=True)
        finally:
            bench.stop()
        input_bytes = sum(f.size for f in made)
        result = {
            "what": "input MiB/s converting the same NDJSON to Parquet (zstd) on 2 cores, every engine in one run",
            "commit": commit,
            "dirty": dirty,
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "load_average": {"start": [round(x, 2) for x in load_start], "end": [round(x, 2) for x in os.getloadavg()]},
            "rounds": rounds,
            "codec": CODEC,
            "data": {
                "files": len(made),
                "input_mib": round(input_bytes / MIB, 2),
                "input_mb": round(input_bytes / 1e6, 2),
                "lines": sum(f.lines for f in made),
                "bad_lines": sum(f.bad_lines for f in made),
                "rows": bench.rows["full"][0],
                "quarantined": bench.rows["full"][1],
                "seed": SEED,
                "small_manifest_bytes": made[0].size,
            },
            **assemble(runs, small, imports, bench.cold_parts, input_bytes, made[0].size),
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        progress(json.dumps({"ratios": result["ratios"], "model": result["model"]}, indent=1))
        progress(f"wrote {out}")
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engines", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--files", type=int, default=FILES)
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv if argv is not None else [])
    sys.path.insert(0, str(ROOT))
    run(args.rounds, args.files, args.out, progress=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
