"""converter/build.py's steps on small trees (the real build is `make artifact-check`)."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest

from converter import build


def _touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 10)


def test_prune_moves_the_runtimes_packages_and_drops_what_nothing_loads(tmp_path: Path) -> None:
    tree, runtime = tmp_path / "python", tmp_path / "runtime"
    _touch(
        tree,
        "boto3/__init__.py",
        "boto3-1.44.18.dist-info/METADATA",
        "botocore/data/s3.json",
        "dateutil/parser.py",
        "python_dateutil-2.9.0.post0.dist-info/METADATA",
        "six.py",
        "urllib3/__init__.py",
        "click/__init__.py",
        "click-8.5.1.dist-info/METADATA",
        "hive_metastore/ThriftHiveMetastore.py",
        "bin/pyiceberg",
        "pyarrow/libarrow_flight.so.1700",
        "pyarrow/_flight.cpython-311-x86_64-linux-gnu.so",
        "pyarrow/libarrow_substrait.so.1700",
        "pyarrow/lib.pyx",
        "pyarrow/include/arrow/api.h",
        "pyarrow/tests/test_array.py",
        "pyarrow/lib.cpython-311-x86_64-linux-gnu.so",
        "numpy/_core/tests/test_x.py",
        "numpy/__pycache__/__init__.cpython-311.pyc",
        "numpy/__init__.py",
        "zstandard/_cffi.cpython-311-x86_64-linux-gnu.so",
        "zstandard/backend_c.cpython-311-x86_64-linux-gnu.so",
        "rich/console.py",
        "pyiceberg/schema.py",
    )

    build.prune(tree, runtime)

    left = sorted(str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file())
    assert left == [
        "numpy/__init__.py",
        "pyarrow/lib.cpython-311-x86_64-linux-gnu.so",
        "pyarrow/libarrow_substrait.so.1700",  # libarrow_python links it
        "pyiceberg/schema.py",
        "rich/console.py",  # pyiceberg.schema imports it on every commit
        "zstandard/backend_c.cpython-311-x86_64-linux-gnu.so",
    ]
    moved = {p.name for p in runtime.iterdir()}
    assert moved == {
        "boto3",
        "boto3-1.44.18.dist-info",
        "botocore",
        "dateutil",
        "python_dateutil-2.9.0.post0.dist-info",
        "six.py",
        "urllib3",
    }


def test_the_zip_is_the_tree_and_the_same_tree_gives_the_same_zip(tmp_path: Path) -> None:
    tree = tmp_path / "python"
    _touch(tree, "b/mod.py", "a/__init__.py", "lib.so")
    (tree / "lib.so").chmod(0o755)
    first, second = tmp_path / "1.zip", tmp_path / "2.zip"
    assert build.write_zip(tree, first) == 3
    build.write_zip(tree, second)
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as zf:
        assert zf.namelist() == ["a/__init__.py", "b/mod.py", "lib.so"]
        assert sum(i.file_size for i in zf.infolist()) == build.tree_bytes(tree) == 30
        assert (zf.getinfo("lib.so").external_attr >> 16) & 0o777 == 0o755


def test_an_artifact_over_lambdas_limit_fails_the_build() -> None:
    assert build.check_size(build.LAMBDA_UNZIPPED_LIMIT - 1) == build.LAMBDA_UNZIPPED_LIMIT - 1
    with pytest.raises(build.BuildError, match="262,144,000 bytes, over Lambda's limit of 262,144,000"):
        build.check_size(build.LAMBDA_UNZIPPED_LIMIT)


def test_a_pip_failure_fails_the_build_with_pips_words(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("this is not a requirement !!\n")
    with pytest.raises(build.BuildError, match="pip download failed"):
        build.install(tmp_path / "python", requirements, tmp_path / "empty-cache")


@pytest.mark.skipif(sys.platform != "linux", reason="the smoke import runs only where the binaries load")
def test_a_tree_that_does_not_import_fails_the_build(tmp_path: Path) -> None:
    tree, runtime = tmp_path / "python", tmp_path / "runtime"
    (tree / "converter").mkdir(parents=True)
    runtime.mkdir()
    (tree / "converter" / "__init__.py").write_text("")
    (tree / "converter" / "handler.py").write_text("import libarrow_substrait_was_pruned\n")
    with pytest.raises(build.BuildError, match="(?s)does not import.*libarrow_substrait_was_pruned"):
        build.smoke_import(tree, runtime)
