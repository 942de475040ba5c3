"""Peak memory of one Spark task's conversion against the size of its one input file, in one run.

Inputs (sizes in MB of 2^20 bytes, configurable so ``make bench`` stays short):
- plain NDJSON of each size in BENCH_RSS_MB (default ``25,100``; the README quotes ``100,1024``);
- one ``.gz`` inflating to BENCH_RSS_GZ_MB (default 300; the README quotes 2200), made of repeated
  gzip members (a multi-member stream, as ``cat a.gz b.gz`` makes).
The text is ~8 MB of the project's generated events (0.1% bad lines, seed 5) repeated to the size:
the same shapes as ``bench.glue_job``, generated once.

Each conversion runs ``glue.convert.run_task`` for a task of that one file in a fresh Python
process (what a Spark Python worker runs), local storage; the child reports its own peak RSS
(``ru_maxrss``) and its RSS after imports. Up to BENCH_RSS_WHOLE_MAX_MB (default 100) the files also
run through the whole-object path the job used before streaming (read the object, decompress, parse,
one Parquet part), for the before/after figure. Results: ``bench/results/task_memory.json``.

The generated events take the fast path (Arrow's reader). A block that takes the slow path (Python
values: a type conflict inside the block, an integer beyond 2^53) holds its rows as Python objects:
measured once with the fast path disabled, 50 MB peaked at 0.77 GB with 16 MiB blocks (70 MB at 32
MiB blocks: 1.37 GB), still flat in the file's size since it is per block.
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULT = ROOT / "bench" / "results" / "task_memory.json"
MIB = 1024 * 1024


def _sizes() -> tuple[list[float], float, float]:
    plain = [float(x) for x in os.environ.get("BENCH_RSS_MB", "25,100").split(",") if x.strip()]
    gz = float(os.environ.get("BENCH_RSS_GZ_MB", "300"))
    whole_max = float(os.environ.get("BENCH_RSS_WHOLE_MAX_MB", "100"))
    return plain, gz, whole_max


def _base_text(work: Path) -> bytes:
    from ndjson_parquet.sample_data import generate

    made = generate(work / "base", 1, 8, 0.001, 5)
    data = made[0].path.read_bytes()
    return data if data.endswith(b"\n") else data + b"\n"


def _write_plain(path: Path, base: bytes, mb: float) -> int:
    target = int(mb * MIB)
    with path.open("wb") as out:
        written = 0
        while written < target:
            out.write(base)
            written += len(base)
    return written


def _write_gz(path: Path, base: bytes, mb: float) -> int:
    member = gzip.compress(base, compresslevel=6, mtime=0)
    copies = max(1, -(-int(mb * MIB) // len(base)))
    with path.open("wb") as out:
        for _ in range(copies):
            out.write(member)
    return copies * len(base)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(mode: str, path: str, out: str) -> int:
    """One conversion in this process; prints its figures as one JSON line."""
    sys.path.insert(0, str(ROOT))
    import pyarrow as pa

    from glue.convert import (
        TaskSpec,
        conform_table,
        convert_bytes,
        data_fields,
        parquet_bytes,
        run_task,
        with_provenance,
    )
    from glue.schema import sorted_schema, unify_schemas
    from glue.storage import S3Config, Storage

    imported = _rss_mb()
    started = time.perf_counter()
    if mode == "stream":
        spec = TaskSpec(0, (path,), (None,), "bench", f"{out}/d", f"{out}/q", "snappy", None, S3Config())
        result = run_task(spec)
        rows, lines, parts = result.rows, sum(f.lines for f in result.files), len(result.parts)
    else:  # the job's task before streaming: the whole object, its lines and its rows at once
        storage = Storage()
        raw = storage.read_bytes(path)
        table, bad, counts = convert_bytes(path, raw, None, "bench")
        del raw
        target = with_provenance(sorted_schema(unify_schemas([data_fields(table.schema)])))
        table = pa.concat_tables([conform_table(table, target)])
        storage.write_bytes(f"{out}/d/part-00000.parquet", parquet_bytes(table, "snappy"))
        rows, lines, parts = table.num_rows, counts.lines, 1
    seconds = time.perf_counter() - started
    print(json.dumps({"peak_rss_mb": round(_rss_mb(), 1), "rss_after_imports_mb": round(imported, 1),
                      "seconds": round(seconds, 2), "rows": rows, "lines": lines, "parts": parts}))  # fmt: skip
    return 0


def _measure(mode: str, path: Path, out: Path) -> dict:
    cmd = [sys.executable, "-m", "bench.task_memory", "--child", mode, str(path), str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    shutil.rmtree(out, ignore_errors=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} conversion of {path.name} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from glue.blocks import BLOCK_BYTES
    from glue.parts import FLUSH_BYTES

    plain, gz_mb, whole_max = _sizes()
    work = Path(tempfile.mkdtemp(prefix="bench-rss-"))
    rows = []
    try:
        base = _base_text(work)
        inputs = []
        for mb in plain:
            path = work / f"plain-{mb:g}mb.ndjson"
            inputs.append((path, _write_plain(path, base, mb)))
        if gz_mb > 0:
            path = work / f"inflates-{gz_mb:g}mb.ndjson.gz"
            inputs.append((path, _write_gz(path, base, gz_mb)))
        for path, text_bytes in inputs:
            modes = ["stream"] + (["whole"] if text_bytes <= whole_max * MIB * 1.05 else [])
            for mode in modes:
                got = _measure(mode, path, work / "out")
                row = {
                    "input": path.name,
                    "input_mb": round(path.stat().st_size / MIB, 1),
                    "text_mb": round(text_bytes / MIB, 1),
                    "path": "streamed blocks (now)" if mode == "stream" else "whole object (before)",
                    **got,
                    "peak_over_text": round(got["peak_rss_mb"] / (text_bytes / MIB), 2),
                }
                rows.append(row)
                print(
                    f"{row['input']:>32} {row['text_mb']:>8} MB text  {row['path']:<22} "
                    f"peak RSS {row['peak_rss_mb']:>7} MB  ({row['seconds']} s)",
                    flush=True,
                )
            path.unlink()
        result = {
            "what": "peak RSS of one task converting one file (fresh Python process, run_task, local storage)",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "block_mb": round(BLOCK_BYTES / MIB, 1),
            "flush_mb": round(FLUSH_BYTES / MIB, 1),
            "runs": rows,
        }
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {RESULT.relative_to(ROOT)}")
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        sys.exit(child(*sys.argv[2:]))
    sys.exit(main())
