"""EventBridge contract: one SOURCE, PascalCase detail types, and the ManifestReady detail."""

from __future__ import annotations

SOURCE = "ndjson-parquet"
MANIFEST_READY = "ManifestReady"
