"""Which engine converts a manifest: the converter Lambda function or the Glue job.

The choice is about work, so it is made on the bytes the converter will parse: a ``.gz`` file
counts at ``GZIP_EXPANSION`` times its (compressed) size. ClaimRun decides once per run and the
state machine branches on the answer (``$.claim.engine``); a Lambda run that times out or runs out
of memory still goes on to Glue for the same manifest (infra/statemachine/convert_manifest.asl.json).
"""

from __future__ import annotations

from collections.abc import Iterable

from chalicelib.manifest import ManifestFile

LAMBDA = "lambda"
GLUE = "glue"
AUTO = "auto"

# Uncompressed bytes per compressed byte of a .gz NDJSON file. Measured here: 6.0x on the sample
# generator's events (ndjson_parquet/sample_data.py, 20,000 events, gzip -6) and 5.2x on tests/data;
# log lines with many repeated keys reach ~10x. 8 errs toward Glue for .gz manifests: a Lambda run
# that times out and falls back costs its own seconds plus the Glue run.
GZIP_EXPANSION = 8


def is_gzip(uri: str) -> bool:
    return uri.lower().endswith(".gz")


def work_bytes(files: Iterable[ManifestFile]) -> int:
    """The bytes the converter parses: plain files at their size, ``.gz`` files expanded."""
    return sum(f.size * (GZIP_EXPANSION if is_gzip(f.uri) else 1) for f in files)


def choose_engine(nbytes: int, setting: str, lambda_max_bytes: int) -> str:
    """``setting`` (CONVERT_ENGINE) ``lambda`` or ``glue`` forces that engine; ``auto`` sends a
    manifest of at most ``lambda_max_bytes`` (LAMBDA_MAX_BYTES) work bytes to Lambda."""
    if setting == LAMBDA:
        return LAMBDA
    if setting == GLUE:
        return GLUE
    if setting != AUTO:
        raise ValueError(f"unknown engine setting {setting!r}: auto, lambda or glue")
    return LAMBDA if nbytes <= lambda_max_bytes else GLUE
