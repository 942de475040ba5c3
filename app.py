"""Chalice app: thin handlers that parse the event and call a service in chalicelib.

Sections are owned by one module each: control plane (tracker, batching, flush),
workflow tasks (Step Functions Lambda tasks, recover).
"""

from __future__ import annotations

from chalice import Chalice

app = Chalice(app_name="ndjson-parquet")

# --- control plane (chalicelib.tracker, chalicelib.batching) -------------------------------

# --- workflow tasks (chalicelib.workflow) ---------------------------------------------------
