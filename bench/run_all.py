"""``make bench``: run every ``bench/<name>.py`` that exposes ``main()``, in name order.

Modules are discovered, not listed, so a new benchmark only has to define ``main()``. One failing
benchmark does not hide the others; the exit code says whether all of them succeeded.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback
from pathlib import Path

# load and freshness are long runs with their own targets (`make load FILES=...`, `python -m
# bench.freshness --minutes 10`), not part of `make bench`.
SKIP = {"run_all", "__init__", "__main__", "load", "freshness"}


def discover() -> list[str]:
    here = Path(__file__).resolve().parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.ispkg and m.name not in SKIP)
    found = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        if callable(getattr(module, "main", None)):
            found.append(name)
    return found


def main(argv: list[str] | None = None) -> int:
    only = set(argv if argv is not None else sys.argv[1:])
    failed = []
    for name in discover():
        if only and name not in only:
            continue
        print(f"== bench.{name}", flush=True)
        started = time.perf_counter()
        try:
            code = importlib.import_module(f"bench.{name}").main()
        except SystemExit as exc:
            code = exc.code
        except Exception:
            traceback.print_exc()
            code = 1
        print(f"== bench.{name}: {'ok' if not code else 'FAILED'} in {time.perf_counter() - started:.1f}s", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
