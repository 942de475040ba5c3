"""Per-core CPU time of the conversion stages, strict-first core against the screened core.

Data: FILES x 3.5 MB of generated events (glue/bench data: ``ndjson_parquet.sample_data.generate``,
seed 11) at 0 %, 0.1 % and 1 % bad lines. Each file is one block (as in ``bench.glue_job``). Both
cores run interleaved ROUNDS times in this one process (one core); figures are input MB (10^6
bytes) over the median CPU seconds (``time.process_time``) of each stage:

- strict-first: ``parse_lines`` (strict validation), ``_fast`` (Arrow's reader), the rest of
  ``convert_lines`` (provenance), Parquet (``parquet_bytes``, snappy);
- screened: ``screen_lines``, Arrow (``_screened`` less the screen), the rest, Parquet.

``python -m bench.fastpath_profile [--rounds N] [--files N] [--profile]`` (``--profile``: cProfile of
each core on the 0.1 % data as well). Figures are for reading, never asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATES = (0.0, 0.001, 0.01)
CPU = time.process_time


def _stages(core: str, datas: list[tuple[str, bytes]]) -> dict[str, float]:
    from glue import convert
    from glue.lines import parse_lines
    from glue.screen import screen_lines

    out = {"validate": 0.0, "arrow": 0.0, "rest": 0.0, "parquet": 0.0}
    for uri, data in datas:
        t0 = CPU()
        if core == "strict-first":
            parsed = parse_lines(data)
            t1 = CPU()
            convert._fast(parsed.valid, None)
        else:
            screen_lines(data)
            t1 = CPU()
            convert._screened(data, None, 1, True)  # screens again: subtracted below
        t2 = CPU()
        table, _, _ = convert.convert_lines(uri, data, None, "m-bench", core=core)
        t3 = CPU()
        convert.parquet_bytes(table, "snappy")
        t4 = CPU()
        validate, arrow = t1 - t0, t2 - t1
        if core == "screened":
            arrow -= validate
        out["validate"] += validate
        out["arrow"] += arrow
        out["rest"] += max((t3 - t2) - validate - arrow, 0.0)
        out["parquet"] += t4 - t3
    out["total"] = out["validate"] + out["arrow"] + out["rest"] + out["parquet"]
    return out


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(ROOT))
    from glue import convert
    from ndjson_parquet.sample_data import generate

    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fastpath-") as tmp:
        for rate in RATES:
            made = generate(Path(tmp) / str(rate), args.files, 3.5, rate, 11)
            datas = [(str(f.path), f.path.read_bytes()) for f in made]
            mb = sum(len(d) for _, d in datas) / 1e6
            runs: dict[str, list[dict[str, float]]] = {"strict-first": [], "screened": []}
            for _ in range(args.rounds):
                for core, got in runs.items():
                    got.append(_stages(core, datas))
            for core, got in runs.items():
                cells = [f"{k} {mb / statistics.median(r[k] for r in got):6.0f}" for k in got[0] if k != "rest"]
                rest = statistics.median(r["rest"] for r in got)
                print(f"bad {rate:5.1%}  {core:12s} MB/s per core: " + "  ".join(cells) + f"  (rest {rest:.3f} s)")
            if args.profile and rate == 0.001:
                for core in runs:
                    prof = cProfile.Profile(CPU)
                    prof.enable()
                    for uri, data in datas:
                        table, _, _ = convert.convert_lines(uri, data, None, "m-bench", core=core)
                        convert.parquet_bytes(table, "snappy")
                    prof.disable()
                    text = io.StringIO()
                    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(12)
                    print(f"--- cProfile {core} (0.1 % bad, {mb:.1f} MB)\n" + text.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
