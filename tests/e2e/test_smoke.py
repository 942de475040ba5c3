"""`ndjson-parquet smoke` (what `make smoke` runs against a deployed stage) against the endpoint of
`run --keep-running`, which keeps processing uploads: same script, boto3's normal configuration."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, cli

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def test_smoke_script_against_a_kept_runtime(small_input: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "ndjson-parquet"
    proc = subprocess.Popen(
        [str(exe), "run", "--input", str(small_input), "--output", str(tmp_path / "p"), "--keep-running", "--quiet"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        url, keys, lines = None, {}, []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
            lines.append(line)
            if match := re.search(r"local AWS endpoint: (http://127\.0\.0\.1:\d+)", line):
                url = match.group(1)
            # The smoke uploads inputs: it acts as the deployer (the runtime's administrator).
            if creds := re.search(
                r"administrator credentials: AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)", line
            ):
                keys = {"AWS_ACCESS_KEY_ID": creds.group(1), "AWS_SECRET_ACCESS_KEY": creds.group(2)}
                break
        assert url and keys, "".join(lines)
        started = time.monotonic()
        smoke = cli("smoke", "--endpoint-url", url, "--stage", "local", "--timeout", "120", env_extra=keys)
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        out = smoke.stdout
        assert re.search(r"smoke \w+: ok$", out.strip()), out
        assert "iam simulate-principal-policy: skipped (moto has no policy simulator" in out, out
        assert re.search(r"replay of \S+: SUCCEEDED", out), out
        assert "DLQ depths: ingest=1  events=0" in out, out  # the poison message
        assert time.monotonic() - started < 60, out
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
