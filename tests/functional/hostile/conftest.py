"""The Glue-job fixtures (one local SparkSession, manifest writer) shared with tests/functional/glue."""

from __future__ import annotations

from tests.functional.glue.conftest import make_manifest, spark

__all__ = ["make_manifest", "spark"]
