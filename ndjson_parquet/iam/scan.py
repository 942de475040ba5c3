"""Finds the boto3 calls in the code that runs with a role: ``<x>.<operation>(``,
``<x>.get_paginator("<operation>")`` and ``<x>.get_waiter("<name>")``, where the method is an
operation of a service the code uses. AST-based and deliberately broad: a method that only
shares a name with an operation (``publisher.publish``) is listed in ``NOT_AWS`` by call site."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from botocore import xform_name

from ndjson_parquet.iam.actions import operation_names

ROOT = Path(__file__).resolve().parents[2]
# Code that runs with a mapped role (converter/: the converter function's own code, ConverterRole).
# ndjson_parquet/local (moto set-up, admin), postdeploy.py and
# smoke.py (the deployer's credentials) are not in the map.
SCANNED = ("app.py", "chalicelib", "glue", "converter", "ndjson_parquet/commands", "ndjson_parquet/stack_env.py")
SERVICES = (
    "s3",
    "dynamodb",
    "dynamodbstreams",
    "sqs",
    "sns",
    "events",
    "stepfunctions",
    "glue",
    "cloudformation",
    "lambda",
    "logs",
    "kms",
    "cloudwatch",
    "xray",
    "ec2",
    "sts",
)
# (file, receiver expression, method): calls of our own objects whose method shares an operation's name.
NOT_AWS = frozenset(
    {
        ("chalicelib/event_publisher.py", "publisher", "publish"),
        ("chalicelib/tracker.py", "store", "put_file"),
        ("chalicelib/workflow/claim_run.py", "store", "start_run"),
        ("glue/convert.py", "storage", "delete_file"),
        ("glue/lines.py", "_LONE_SURROGATE", "search"),
        ("glue/table.py", "table", "scan"),  # an Iceberg scan planned from metadata
        ("glue/table.py", "tx", "update_schema"),  # an Iceberg schema update inside the transaction
    }
)
# Library modules whose boto3 calls ``lib`` entries of the map name (their client is the job's).
LIBRARY_CLIENTS = ("pyiceberg.catalog.glue",)


@dataclass(frozen=True)
class Site:
    file: str
    line: int
    receiver: str
    method: str  # boto3 method (paginators and waiters: the operation/waiter they wrap)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.receiver}.{self.method}("


def _methods() -> frozenset[str]:
    return frozenset(xform_name(op) for svc in SERVICES for op in operation_names(svc))


def _files(root: Path, scanned: Iterable[str]) -> Iterator[Path]:
    for name in scanned:
        path = root / name
        yield from [path] if path.is_file() else sorted(path.rglob("*.py"))


def scan(root: Path = ROOT, scanned: Iterable[str] = SCANNED) -> list[Site]:
    methods = _methods()
    found: list[Site] = []
    for path in _files(root, scanned):
        rel = path.relative_to(root).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=rel)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver, method = ast.unparse(node.func.value), node.func.attr
            if method in ("get_paginator", "get_waiter"):
                arg = node.args[0] if node.args else None
                name = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else "<dynamic>"
                found.append(Site(rel, node.lineno, receiver, name if method == "get_paginator" else f"waiter:{name}"))
            elif method in methods and (rel, receiver, method) not in NOT_AWS:
                found.append(Site(rel, node.lineno, receiver, method))
    return sorted(found, key=lambda s: (s.file, s.line))


def unmapped_sites(root: Path = ROOT) -> list[str]:
    """Scanned calls no map entry names, and map entries whose call is gone from their file."""
    from ndjson_parquet.iam.callmap import code_sites

    sites = scan(root)
    mapped = code_sites()
    problems = [
        f"{s} is in no entry of ndjson_parquet/iam/callmap.py" for s in sites if (s.file, s.method) not in mapped
    ]
    found = {(s.file, s.method) for s in sites}
    problems += [
        f"{f}: no .{m}( call left, but ndjson_parquet/iam/callmap.py maps one" for f, m in sorted(mapped - found)
    ]
    return problems + library_problems()


def library_problems() -> list[str]:
    """Calls of a library (``LIBRARY_CLIENTS``) the map names that the installed version no longer makes."""
    import importlib.util

    from ndjson_parquet.iam.callmap import library_calls

    problems = []
    for module, method in sorted(library_calls()):
        if module not in LIBRARY_CLIENTS:
            continue  # e.g. pyarrow's S3 requests: made in C++, nothing to scan
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            problems.append(f"{module} is not installed, but ndjson_parquet/iam/callmap.py maps its calls")
            continue
        source = Path(spec.origin)
        calls = {
            node.func.attr
            for node in ast.walk(ast.parse(source.read_text(encoding="utf-8")))
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        }
        if method not in calls:
            problems.append(f"{module}: no .{method}( call, but ndjson_parquet/iam/callmap.py maps one")
    return problems
