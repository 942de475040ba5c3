"""`run --keep-running` leaves the endpoint up: the operator commands work against it (as the
operator role, IAM enforced), then `ndjson-parquet smoke` (what `make smoke` runs against a
deployed stage) passes against the same endpoint. One kept runtime for both: starting one costs
about a minute of a make-test worker (a moto server, a stack deploy and a JVM)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from glue.table import manifest_files
from ndjson_parquet.local.dataset import LocalDataset
from tests.e2e.conftest import REPO, cli

pytestmark = [pytest.mark.slow, pytest.mark.spark]

ENDPOINT = re.compile(r"local AWS endpoint: (http://127\.0\.0\.1:\d+)")
OPERATOR = re.compile(r"operator credentials: AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)")
ADMINISTRATOR = re.compile(r"administrator credentials: AWS_ACCESS_KEY_ID=(\S+) AWS_SECRET_ACCESS_KEY=(\S+)")


def _keys(match: re.Match[str]) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": match.group(1), "AWS_SECRET_ACCESS_KEY": match.group(2)}


def test_operator_commands_then_smoke_against_a_kept_runtime(small_input: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "ndjson-parquet"
    # The runtime's output goes to a file, not a pipe: a pipe nobody reads after the credentials
    # fills up (the JVM and the smoke's Glue runs log to stderr), the runtime then blocks on a
    # write and cannot act on the final Ctrl-C.
    log = tmp_path / "runtime.log"
    # PYTHONFAULTHANDLER: if it ever ignores Ctrl-C, SIGABRT below makes it print every thread's stack.
    env = os.environ | {"PYTHONFAULTHANDLER": "1"}
    with log.open("w", encoding="utf-8") as sink:
        proc = subprocess.Popen(
            [str(exe), "run", "--input", str(small_input), "--output", str(tmp_path / "p"), "--keep-running",
             "--quiet"], cwd=REPO, stdout=sink, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
    try:
        url = None
        operator: dict[str, str] = {}
        admin: dict[str, str] = {}
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and not (url and operator and admin):
            time.sleep(0.5)
            text = log.read_text(encoding="utf-8", errors="replace")
            if match := ENDPOINT.search(text):
                url = match.group(1)
            if match := OPERATOR.search(text):  # IAM is enforced: operator commands act as the operator role
                operator = _keys(match)
            if match := ADMINISTRATOR.search(text):  # the smoke uploads inputs: it acts as the deployer
                admin = _keys(match)
        assert url and operator and admin, log.read_text(encoding="utf-8", errors="replace")[-4000:]

        # Operator commands first, on the run's own state (the smoke adds files and a poison message).
        no_keys = cli("status", "--endpoint-url", url, "--stage", "local")
        assert no_keys.returncode == 2, no_keys.stderr
        assert "(The security token included in the request is invalid.)" in no_keys.stderr, no_keys.stderr
        status = cli("status", "--endpoint-url", url, "--stage", "local", env_extra=operator)
        assert status.returncode == 0, status.stderr
        converted = sum(int(n) for n in re.findall(r"converted=(\d+)", status.stdout))
        skipped = sum(int(n) for n in re.findall(r"skipped=(\d+)", status.stdout))
        assert (converted, skipped) == (4, 1), status.stdout
        assert "manifests: succeeded=" in status.stdout
        assert "DLQ depths: ingest=0  events=0" in status.stdout
        recover = cli("recover", "--endpoint-url", url, "--stage", "local", env_extra=operator)
        assert recover.returncode == 0, recover.stderr
        assert "errors=0" in recover.stdout
        # replay one manifest through the kept runtime (its Glue task runs in that process): the
        # table gets a new snapshot in which that manifest's data files changed, its rows did not
        dataset = LocalDataset.open(tmp_path / "p")
        table = dataset.load()
        manifest = sorted({r["_manifest_id"] for r in dataset.rows(("_manifest_id",))})[0]

        def files_of(t: object) -> set[str]:
            return {f.file_path for f in manifest_files(t, manifest)}

        before_files, before_rows = files_of(table), len(dataset.rows(("_manifest_id",)))
        snapshots = len(table.snapshots())
        replay = cli("replay", "--endpoint-url", url, "--stage", "local", "--manifest", manifest, env_extra=operator)
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert f"replay of {manifest}: SUCCEEDED" in replay.stdout
        table = dataset.load()
        assert len(table.snapshots()) == snapshots + 1
        assert table.current_snapshot().summary["manifest_id"] == manifest
        assert before_files and files_of(table) and not (files_of(table) & before_files)
        assert len(dataset.rows(("_manifest_id",))) == before_rows
        redrive = cli("redrive", "--endpoint-url", url, "--stage", "local", env_extra=operator)
        assert redrive.returncode == 0 and "ingest: 0 messages moved" in redrive.stdout, redrive.stdout

        # Then the smoke script, with boto3's normal configuration, as `make smoke` runs it.
        smoke = cli("smoke", "--endpoint-url", url, "--stage", "local", "--timeout", "120", env_extra=admin)
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        out = smoke.stdout
        assert re.search(r"smoke \w+: ok$", out.strip()), out
        assert "iam simulate-principal-policy: skipped (moto has no policy simulator" in out, out
        assert re.search(r"replay of \S+: SUCCEEDED", out), out
        assert "DLQ depths: ingest=1  events=0" in out, out  # the poison message
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler dumps the threads' stacks into the log
            proc.wait(timeout=30)
            stacks = log.read_text(encoding="utf-8", errors="replace")[-8000:]
            raise AssertionError(f"the kept runtime ignored Ctrl-C for 60 s:\n{stacks}") from None
    # the first Ctrl-C lets the step in flight finish, then the run ends as it began: reconciled, 0
    assert code == 0, log.read_text(encoding="utf-8", errors="replace")[-4000:]
