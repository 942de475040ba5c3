"""Make ``glue`` and ``chalicelib`` importable in Spark's Python workers.

Workers do not see the driver's ``sys.path``. On Glue both packages arrive in the
``--extra-py-files`` zip; locally (tests, the local runtime, ``python glue/ndjson_to_parquet.py``)
they are zipped from the source tree once per SparkContext and shipped with ``addPyFile``.
``python -m glue.shipping <dest.zip>`` builds the same zip for the deploy (infra/deploy.sh).
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path
from typing import Any

_SHIPPED: set[int] = set()


def build_zip(dest: Path) -> Path | None:
    """Zip the two packages when they are plain directories (not already inside a zip)."""
    import chalicelib
    import glue

    roots = [Path(glue.__file__).parent, Path(chalicelib.__file__).parent]
    if not all(r.is_dir() for r in roots):
        return None
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for root in roots:
            for path in sorted(root.rglob("*.py")):
                zf.write(path, str(path.relative_to(root.parent)))
    return dest


def ship_modules(sc: Any) -> None:
    key = id(sc._jsc) if getattr(sc, "_jsc", None) is not None else id(sc)
    if key in _SHIPPED:
        return
    path = build_zip(Path(tempfile.mkdtemp(prefix="ndjson-parquet-")) / "ndjson_parquet_job.zip")
    if path is not None:
        sc.addPyFile(str(path))
    _SHIPPED.add(key)


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m glue.shipping <dest.zip>")
    if build_zip(Path(sys.argv[1])) is None:
        raise SystemExit("glue.shipping: glue/ and chalicelib/ are not source directories; run from the repository")
    print(sys.argv[1])
