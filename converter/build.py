"""Build the converter Lambda function's artifact: ``python -m converter.build --out DIR``.

DIR/python/ is the unzipped tree (the zip's root: Lambda's /var/task), DIR/converter.zip the
deployment package, DIR/runtime/ what was pruned because the Lambda python3.11 runtime ships it
(boto3, botocore, s3transfer, jmespath, dateutil, six, urllib3): the artifact test puts that folder
on sys.path the way the runtime does, nothing deploys it.

Steps: manylinux2014 x86_64 wheels for CPython 3.11 (cached in .cache/converter-wheels, so a rerun
installs offline), ``pip install --target``, prune (tests, headers, Cython sources, the Arrow
components the conversion never loads, the pyiceberg CLI's dependencies, the runtime's packages),
strip native libraries' symbol tables, copy the project's packages the job imports (glue/,
chalicelib/, converter/), byte-compile them all with unchecked-hash .pyc (/var/task is read-only:
without them every cold start compiles every module in memory), write the zip. The build fails when
the tree reaches Lambda's 250 MB unzipped limit.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import py_compile
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "converter" / "requirements.txt"
WHEEL_CACHE = ROOT / ".cache" / "converter-wheels"
# Lambda's limit on a function's unzipped deployment package (code + layers), in bytes.
LAMBDA_UNZIPPED_LIMIT = 262_144_000
PLATFORM = ("--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version", "3.11")
# The project's packages the job imports (glue/job.py -> chalicelib.manifest, .schema_policy,
# .workflow.errors, .backoff, .counts, .s3_delete, .transient); chalicelib is small and whole.
PROJECT_PACKAGES = ("glue", "chalicelib", "converter")

# In the python3.11 Lambda runtime already (botocore and its dependencies); pyiceberg[glue] pulls
# them in. urllib3 too: requests (pyiceberg's REST catalog, never used here) accepts the runtime's.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")
# Only pyiceberg's CLI (pyiceberg/cli) imports these; the hive catalog its vendored thrift client.
UNUSED_PACKAGES = ("rich", "pygments", "click", "markdown_it", "mdurl", "hive_metastore", "fb303", "cmake_modules")
# Top-level folders some wheels drop into the target (pyarrow's benchmarks/examples/scripts).
UNUSED_TOP = ("bin", "benchmarks", "examples", "scripts")
# Arrow components the conversion and pyiceberg never load: Flight RPC, Substrait, the C++ test
# module; each is imported only by its own pyarrow module, removed with it.
UNUSED_PYARROW = (
    "libarrow_flight.so.*",
    "libarrow_python_flight.so",
    "_flight.cpython-*.so",
    "flight.py",
    "libarrow_substrait.so.*",
    "_substrait.cpython-*.so",
    "substrait.py",
    "_pyarrow_cpp_tests.cpython-*.so",
    "include",
    "src",
    "tests",
    "includes",
    "conftest.py",
)
# zstandard ships its C backend twice (CFFI and C extension); it loads the C extension.
UNUSED_FILES = ("zstandard/_cffi.cpython-*.so", "zstandard/backend_cffi.py")
# Source-only files no interpreter loads.
SOURCE_SUFFIXES = (".pyx", ".pxd", ".pxi", ".h", ".hpp", ".cc", ".cpp", ".c", ".pyi")


@dataclass
class BuildReport:
    tree: str
    zip: str
    installed_bytes: int
    pruned_bytes: int
    unzipped_bytes: int
    zipped_bytes: int
    files: int
    seconds: float

    def text(self) -> str:
        mb = 1024 * 1024
        return (
            f"installed (before pruning): {self.installed_bytes / mb:.1f} MiB ({self.installed_bytes:,} bytes)\n"
            f"pruned:                     {self.pruned_bytes / mb:.1f} MiB ({self.pruned_bytes:,} bytes)\n"
            f"unzipped (with project and .pyc): {self.unzipped_bytes / mb:.1f} MiB ({self.unzipped_bytes:,} bytes;"
            f" Lambda's limit {LAMBDA_UNZIPPED_LIMIT:,})\n"
            f"zipped:                     {self.zipped_bytes / mb:.1f} MiB ({self.zipped_bytes:,} bytes), "
            f"{self.files:,} files\n"
            f"tree: {self.tree}\nzip:  {self.zip}\nbuilt in {self.seconds:.1f} s"
        )


class BuildError(RuntimeError):
    pass


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, check=False)


def install(target: Path, requirements: Path = REQUIREMENTS, cache: Path = WHEEL_CACHE) -> None:
    """pip install --target from the wheel cache; the cache is filled first when it lacks a wheel."""
    common = ["--target", str(target), *PLATFORM, "--only-binary=:all:", "--no-compile", "-r", str(requirements)]
    offline = _pip("install", "--quiet", "--no-index", "--find-links", str(cache), *common) if cache.is_dir() else None
    if offline is not None and offline.returncode == 0:
        return
    shutil.rmtree(target, ignore_errors=True)
    cache.mkdir(parents=True, exist_ok=True)
    fetched = _pip(
        "download", "--quiet", "--dest", str(cache), *PLATFORM, "--only-binary=:all:", "-r", str(requirements)
    )
    if fetched.returncode != 0:
        raise BuildError(f"pip download failed:\n{fetched.stderr[-4000:]}")
    done = _pip("install", "--quiet", "--no-index", "--find-links", str(cache), *common)
    if done.returncode != 0:
        raise BuildError(f"pip install failed:\n{done.stderr[-4000:]}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _globs(root: Path, patterns: Iterable[str]) -> list[Path]:
    return sorted({p for pattern in patterns for p in root.glob(pattern)})


def prune(tree: Path, runtime: Path) -> None:
    """Remove what the function never loads; move what the Lambda runtime provides to ``runtime``."""
    runtime.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PROVIDED:
        src = tree / name
        if src.exists():
            _remove(runtime / name)
            shutil.move(str(src), str(runtime / name))
        dist = name.removesuffix(".py").replace("dateutil", "python_dateutil")
        for info in tree.glob(f"{dist}-*.dist-info"):
            _remove(runtime / info.name)
            shutil.move(str(info), str(runtime / info.name))
    for name in (*UNUSED_PACKAGES, *UNUSED_TOP):
        _remove(tree / name)
        for info in tree.glob(f"{name.replace('_', '[-_]')}-*.dist-info"):
            _remove(info)
    for info in tree.glob("markdown_it_py-*.dist-info"):
        _remove(info)
    for path in _globs(tree / "pyarrow", UNUSED_PYARROW) + _globs(tree, UNUSED_FILES):
        _remove(path)
    for path in sorted(tree.rglob("*"), reverse=True):
        if path.is_dir() and path.name in ("tests", "__pycache__") and not path.is_symlink():
            shutil.rmtree(path)
        elif path.is_file() and path.suffix in SOURCE_SUFFIXES:
            path.unlink()


def strip_native(tree: Path) -> None:
    """Drop native libraries' symbol tables (``strip --strip-unneeded``; the dynamic symbols the
    loader needs stay): libarrow 62 -> 50 MB, zstandard 11.6 -> 1 MB, pyroaring 7.7 -> 0.9 MB."""
    strip = shutil.which("strip")
    if strip is None:
        print("strip not found: native libraries kept as shipped", file=sys.stderr)
        return
    libs = [p for p in tree.rglob("*.so*") if p.is_file() and not p.is_symlink()]
    for lib in libs:
        done = subprocess.run([strip, "--strip-unneeded", str(lib)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise BuildError(f"strip {lib}: {done.stderr.strip()}")


def copy_project(tree: Path, root: Path = ROOT) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in PROJECT_PACKAGES:
        _remove(tree / name)
        shutil.copytree(root / name, tree / name, ignore=ignore)


def compile_tree(tree: Path) -> None:
    """unchecked-hash .pyc: used without comparing the source's mtime, which a zip round trip
    changes (2-second resolution), so the read-only /var/task never has to recompile."""
    ok = compileall.compile_dir(
        str(tree),
        quiet=2,
        workers=os.cpu_count() or 1,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    if not ok:
        raise BuildError(f"byte-compiling {tree} failed")


def write_zip(tree: Path, dest: Path) -> int:
    """Files in sorted order with a fixed timestamp, so the same tree gives the same zip."""
    dest.unlink(missing_ok=True)
    files = sorted(p for p in tree.rglob("*") if p.is_file())
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in files:
            info = zipfile.ZipInfo(str(path.relative_to(tree)), date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = ((0o755 if os.access(path, os.X_OK) else 0o644) | 0o100000) << 16
            with path.open("rb") as fh:
                zf.writestr(info, fh.read(), compresslevel=9)
    return len(files)


def build(out: Path, requirements: Path = REQUIREMENTS, cache: Path = WHEEL_CACHE) -> BuildReport:
    started = time.perf_counter()
    out = out.resolve()
    tree, runtime = out / "python", out / "runtime"
    for path in (tree, runtime):
        _remove(path)
    out.mkdir(parents=True, exist_ok=True)
    install(tree, requirements, cache)
    installed = tree_bytes(tree)
    prune(tree, runtime)
    strip_native(tree)
    pruned = tree_bytes(tree)
    copy_project(tree)
    compile_tree(tree)
    unzipped = tree_bytes(tree)
    if unzipped >= LAMBDA_UNZIPPED_LIMIT:
        raise BuildError(f"unzipped artifact is {unzipped:,} bytes, over Lambda's limit of {LAMBDA_UNZIPPED_LIMIT:,}")
    zpath = out / "converter.zip"
    files = write_zip(tree, zpath)
    report = BuildReport(
        tree=str(tree),
        zip=str(zpath),
        installed_bytes=installed,
        pruned_bytes=pruned,
        unzipped_bytes=unzipped,
        zipped_bytes=zpath.stat().st_size,
        files=files,
        seconds=round(time.perf_counter() - started, 1),
    )
    (out / "build.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m converter.build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="build folder (python/, runtime/, converter.zip)")
    ns = parser.parse_args(argv)
    try:
        report = build(ns.out)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
