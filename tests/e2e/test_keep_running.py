"""`run --keep-running` leaves the endpoint up; the operator commands work against it."""

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


def test_status_and_recover_against_a_kept_runtime(small_input: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "ndjson-parquet"
    proc = subprocess.Popen(
        [str(exe), "run", "--input", str(small_input), "--output", str(tmp_path / "p"), "--keep-running", "--quiet"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        url = None
        keys: dict[str, str] = {}
        deadline = time.monotonic() + 300
        lines = []
        while time.monotonic() < deadline and proc.poll() is None:
            line = proc.stdout.readline()
            lines.append(line)
            match = re.search(r"local AWS endpoint: (http://127\.0\.0\.1:\d+)", line)
            if match:
                url = match.group(1)
            creds = re.search(r"operator credentials: AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)", line)
            if creds:  # IAM is enforced: the operator commands act as the operator role
                keys = {"AWS_ACCESS_KEY_ID": creds.group(1), "AWS_SECRET_ACCESS_KEY": creds.group(2)}
                break
        assert url and keys, "".join(lines)
        no_keys = cli("status", "--endpoint-url", url, "--stage", "local")
        assert no_keys.returncode == 2, no_keys.stderr
        assert "(The security token included in the request is invalid.)" in no_keys.stderr, no_keys.stderr
        status = cli("status", "--endpoint-url", url, "--stage", "local", env_extra=keys)
        assert status.returncode == 0, status.stderr
        converted = sum(int(n) for n in re.findall(r"converted=(\d+)", status.stdout))
        skipped = sum(int(n) for n in re.findall(r"skipped=(\d+)", status.stdout))
        assert (converted, skipped) == (4, 1), status.stdout
        assert "manifests: succeeded=" in status.stdout
        assert "DLQ depths: ingest=0  events=0" in status.stdout
        recover = cli("recover", "--endpoint-url", url, "--stage", "local", env_extra=keys)
        assert recover.returncode == 0, recover.stderr
        assert "errors=0" in recover.stdout
        # replay one manifest through the kept runtime (its Glue task runs in that process)
        folders = sorted((tmp_path / "p").glob("dt=*/manifest=*"))
        assert folders, "the run wrote no manifest folder"
        manifest = re.search(r"manifest=(.+)$", folders[0].name)
        assert manifest
        replay = cli(
            "replay", "--endpoint-url", url, "--stage", "local", "--manifest", manifest.group(1), env_extra=keys
        )
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert f"replay of {manifest.group(1)}: SUCCEEDED" in replay.stdout
        redrive = cli("redrive", "--endpoint-url", url, "--stage", "local", env_extra=keys)
        assert redrive.returncode == 0 and "ingest: 0 messages moved" in redrive.stdout, redrive.stdout
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
