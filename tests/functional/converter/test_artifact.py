"""The converter's deployment artifact (``python -m converter.build``), checked by use, not only by
size: built from manylinux wheels for Python 3.11, pruned, under Lambda's 250 MB unzipped limit, and
its zip, unpacked, converts and commits manifests to the Glue Data Catalog's Iceberg table (moto's)
in an isolated interpreter that sees nothing but the artifact, the Lambda runtime's own packages
and the standard library. Slow (a build, wheels downloaded once into .cache/converter-wheels):
``make artifact-check``, never ``make test``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from converter import build
from tests.conftest import client
from tests.functional.converter.test_handler import BUCKET, TABLE, put_manifest, table_rows

pytestmark = [pytest.mark.artifact, pytest.mark.slow]

DRIVER = Path(__file__).with_name("artifact_driver.py")
RUNTIME_PACKAGES = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3"}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> build.BuildReport:
    """A fresh build, or CONVERTER_ARTIFACT_DIR: one ``python -m converter.build`` already made (the
    deploy step checks the very artifact it uploads)."""
    built = os.environ.get("CONVERTER_ARTIFACT_DIR")
    if built:
        report = build.BuildReport(**json.loads((Path(built) / "build.json").read_text()))
    else:
        report = build.build(tmp_path_factory.mktemp("converter-build"))
    print(report.text())
    return report


def test_the_artifact_is_pruned_and_under_lambdas_limit(artifact: build.BuildReport) -> None:
    tree = Path(artifact.tree)
    with zipfile.ZipFile(artifact.zip) as zf:
        entries = zf.infolist()
    unzipped = sum(e.file_size for e in entries)  # what Lambda counts against 262,144,000 bytes
    assert unzipped == artifact.unzipped_bytes == build.tree_bytes(tree)
    assert unzipped < build.LAMBDA_UNZIPPED_LIMIT
    assert artifact.pruned_bytes < artifact.installed_bytes
    names = {e.filename for e in entries}
    top = {n.split("/", 1)[0] for n in names}
    assert not top & RUNTIME_PACKAGES  # the runtime's, never shadowed by ours
    assert {p.name for p in (tree.parent / "runtime").iterdir()} >= RUNTIME_PACKAGES
    assert {"converter", "glue", "chalicelib", "pyarrow", "pyiceberg", "orjson", "numpy"} <= top
    assert "converter/handler.py" in names and "glue/job.py" in names
    assert not [n for n in names if "/tests/" in n or n.startswith("pyarrow/include/") or n.endswith((".pyx", ".pxd"))]
    assert not [n for n in names if "flight" in n.rsplit("/", 1)[-1] or n.startswith(("click/", "hive_metastore/"))]
    # byte-compiled for the read-only /var/task: each module of ours has its .pyc
    assert "converter/__pycache__/handler.cpython-311.pyc" in names


def test_the_unzipped_artifact_converts_and_commits_in_an_isolated_interpreter(
    artifact: build.BuildReport, aws: str, tmp_path: Path
) -> None:
    task = tmp_path / "var-task"
    with zipfile.ZipFile(artifact.zip) as zf:
        zf.extractall(task)
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    client("glue").create_database(DatabaseInput={"Name": TABLE.namespace})
    events = [
        {"manifest_id": mid, "manifest_uri": put_manifest(s3, mid, bodies), "execution_arn": "arn:x", "run": 1}
        for mid, bodies in (
            ("m1", {"a.ndjson": b'{"n": 1, "t": "2024-05-01T00:00:00Z"}\nbroken\n', "b.json.gz": _gz(b'{"n": 2}\n')}),
            ("m2", {"c.ndjson": b'{"n": 3, "extra": [1, 2]}\n'}),
        )
    ]
    scratch = tmp_path / "scratch"
    env = {
        "PATH": os.environ["PATH"],
        **{k: os.environ[k] for k in os.environ if k.startswith("AWS_")},
        "OUTPUT_PATH": f"s3://{BUCKET}/parquet",
        "QUARANTINE_PATH": f"s3://{BUCKET}/quarantine",
        "TABLE_CATALOG": "glue",
        "TABLE_NAMESPACE": TABLE.namespace,
        "TABLE_NAME": TABLE.name,
        "TABLE_LOCATION": TABLE.location,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "3538",  # two workers
        "CONVERTER_SCRATCH_DIR": str(scratch),
    }
    runtime = Path(artifact.tree).parent / "runtime"
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-B", str(DRIVER), str(task), str(runtime), json.dumps(events)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(report, indent=2))

    assert report["outside"] == []
    assert report["origins"]["boto3"].startswith(str(runtime)) and report["origins"]["botocore"].startswith(
        str(runtime)
    )
    for name in ("pyarrow", "pyiceberg", "orjson"):
        assert report["origins"][name].startswith(str(task))
    first, second = (c["result"] for c in report["calls"])
    assert first["engine"] == second["engine"] == "lambda"
    assert first["totals"]["rows"] == 2 and first["totals"]["quarantined"] == 1
    assert second["totals"]["rows"] == 1
    snapshot, rows = table_rows()
    assert snapshot == second["snapshot_id"]
    assert sorted((r["_manifest_id"], r["n"]) for r in rows) == [("m1", 1), ("m1", 2), ("m2", 3)]


def _gz(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data, mtime=0)
