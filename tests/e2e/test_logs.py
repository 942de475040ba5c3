"""No record contents and no whole events in the logs of an end-to-end run at INFO.

The CLI runs the whole local pipeline (tracker, stream, sealing, Step Functions, Glue) as a
subprocess with LOG_LEVEL=INFO on an input whose records, bad lines and values carry unique
markers; every line it writes (stdout and stderr) is then searched for those markers and for
the signatures of a dumped S3/SQS/stream/EventBridge event.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MARKER = "zq7-record-content-marker"
BAD_MARKER = "zq7-bad-line-marker"
# What a whole event dump looks like, whichever logger printed it.
EVENT_SIGNATURES = (
    '"Records"',
    "'Records'",
    '"eventSource"',
    "'eventSource'",
    '"NewImage"',
    "'NewImage'",
    '"receiptHandle"',
    "'receiptHandle'",
    '"detail-type"',
    "'detail-type'",
)


def _input(root: Path) -> Path:
    folder = root / "2026-11-20"
    folder.mkdir(parents=True)
    for n in range(3):
        lines = [json.dumps({"id": i, "secret": f"{MARKER}-{n}-{i}", "nested": {"v": MARKER}}) for i in range(20)]
        lines.insert(5, '{"id": 99, "secret": "' + BAD_MARKER + '"')  # invalid: unterminated
        (folder / f"part-{n}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_no_record_contents_or_event_dumps_in_info_logs(tmp_path: Path) -> None:
    # GIVEN an input whose every record and bad line carries a marker
    src = _input(tmp_path / "in")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["LOG_LEVEL"] = "INFO"
    env["POWERTOOLS_LOG_LEVEL"] = "INFO"
    exe = Path(sys.executable).parent / "ndjson-parquet"
    # WHEN the whole pipeline runs at INFO
    proc = subprocess.run(
        [str(exe), "run", "--input", str(src), "--output", str(tmp_path / "out" / "p"), "--batch-max-files", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        env=env,
        check=False,
    )
    logs = (proc.stdout + "\n" + proc.stderr).splitlines()
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    # the run did log at INFO (a test that sees no log lines proves nothing)
    assert any('"level":"INFO"' in line or " INFO " in line for line in logs), "no INFO log lines captured"
    # and the markers really reached the output: rows and quarantine hold them, the logs must not
    quarantine = "".join(p.read_text("utf-8") for p in (tmp_path / "out").rglob("*.jsonl"))
    assert BAD_MARKER in quarantine
    # THEN no line carries record contents or a dumped event
    leaks = [line for line in logs if MARKER in line or BAD_MARKER in line]
    assert not leaks, f"{len(leaks)} log line(s) with record contents, e.g. {leaks[0][:300]}"
    dumps = [line for line in logs if any(sig in line for sig in EVENT_SIGNATURES)]
    assert not dumps, f"{len(dumps)} log line(s) with a whole event, e.g. {dumps[0][:300]}"
