"""One run of the job over one manifest: plan, convert in tasks, unify, reconcile, commit.

``run_job(engine, JobArgs) -> RunSummary`` is the stable API (the entry point, the converter Lambda
and the local runtime call it). ``engine`` runs the tasks (glue/executors.py): a SparkSession (the
Glue job; wrapped in a SparkExecutor) or a ProcessExecutor (the Lambda converter's worker
processes). Both give the same rows, records, summary and commit; the summary's ``engine`` says
which ran. Nothing here imports pyspark.

Guarantees, in order: arguments are checked before Spark does anything; every object of the
manifest is checked to exist before any output is written (a missing one fails the run, named);
all parts are written to a staging folder; a file whose conversion fails deterministically is set
aside whole (glue/isolation.py: one quarantine record, ``set_aside`` in its summary entry) while a
transient error fails the run; the run fails if any file's ``lines != rows + quarantined + blank``;
with a deadline (the Lambda's), the run stops with ConverterDeadlineError before it commits anything
when too little time is left; the run summary ``<OUTPUT_PATH>/_runs/<manifest_id>.json`` is written
BEFORE the commit (``committed: false``: a run killed after its commit still leaves a summary that
Finalize can read) and again after it (``committed: true``, with the snapshot); only then
``dt=<date>/manifest=<id>/`` of the output and of the quarantine are replaced by the staged ones
(a rerun replaces, never adds).
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa

from chalicelib.manifest import Manifest
from chalicelib.schema_policy import refusal_message
from chalicelib.workflow.errors import ReconciliationError
from glue import blocks as glue_blocks
from glue import isolation
from glue import parts as glue_parts
from glue.convert import (
    COMPRESSIONS,
    ConformSpec,
    TaskResult,
    TaskSpec,
    data_fields,
    run_conform,
    run_task,
    with_provenance,
)
from glue.executors import Executor, as_executor
from glue.rescue import RESERVED
from glue.schema import final_schema, parse_schema_text, schema_json
from glue.storage import MissingObjectError, S3Config, Storage, join
from glue.table import CommitResult, TableConfig, commit_manifest, current_schema, open_catalog
from glue.table_schema import SchemaChangeRefused, evolve, fits_within

log = logging.getLogger("ndjson_parquet.glue")

# NDJSON events shrink about 4x into snappy Parquet (bench data: 147 MB -> ~35 MB); the summary
# records the measured ratio so TARGET_FILE_MB can be tuned against real data.
EXPECTED_PARQUET_RATIO = 0.25


class JobError(RuntimeError):
    """The run cannot complete; nothing was committed to the output or quarantine folders."""


class JobArgsError(JobError, ValueError):
    """Bad job arguments, detected before Spark starts."""


class SchemaChangeError(JobError):
    """``failOnNewColumns``: the manifest would change the table's schema; nothing was committed."""


@dataclass(frozen=True)
class JobArgs:
    manifest_path: str
    output_path: str
    quarantine_path: str
    compression: str = "snappy"
    schema_path: str | None = None
    target_file_mb: float = 128.0
    # The Iceberg table the manifest is committed to (glue/table.py); None: the per-manifest
    # folder output (``dt=<date>/manifest=<id>/`` replaced on every run).
    table: TableConfig | None = None

    def validate(self) -> JobArgs:
        for name in ("manifest_path", "output_path", "quarantine_path"):
            if not getattr(self, name):
                raise JobArgsError(f"--{name.upper()} is required")
        if self.compression.lower() not in COMPRESSIONS:
            raise JobArgsError(
                f"--COMPRESSION_TYPE {self.compression!r} is not supported; use one of {', '.join(COMPRESSIONS)}"
            )
        if not (self.target_file_mb > 0):
            raise JobArgsError(f"--TARGET_FILE_MB must be > 0, got {self.target_file_mb}")
        if self.table is not None:
            try:
                self.table.validate()
            except ValueError as exc:
                raise JobArgsError(f"table: {exc}") from None
        return self


@dataclass
class RunSummary:
    manifest_id: str
    date_prefix: str
    files: list[dict[str, Any]]
    totals: dict[str, int]
    schema: dict[str, Any]
    schema_source: str
    compression: str
    output_path: str
    quarantine_path: str
    data_files: int
    tasks: int
    input_bytes: int
    output_bytes: int
    timings: dict[str, float] = field(default_factory=dict)
    # Files set aside whole (each file entry's ``set_aside`` holds its reason; glue/isolation.py).
    files_set_aside: int = 0
    # The table commit (table output only): its snapshot, the schema it left, what changed.
    table: str | None = None
    snapshot_id: int | None = None
    schema_id: int | None = None
    schema_changes: list[str] = field(default_factory=list)
    run_token: str | None = None
    # Which engine ran the tasks: "glue" (Spark) or "lambda" (the process pool).
    engine: str | None = None
    # False: written before the commit (a run killed after its commit leaves this one); True: after.
    committed: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan_tasks(sizes: list[tuple[str, int]], target_bytes: int, min_tasks: int) -> list[list[str]]:
    """Group files into tasks by bytes (one Parquet part per task, more when a task's output passes
    TARGET_FILE_MB or changes schema mid-way, see glue/parts.py): enough tasks to keep every core
    busy, no more than the bytes call for. Largest first onto the lightest task (LPT), stable."""
    if not sizes:
        return []
    total = sum(s for _, s in sizes)
    count = min(len(sizes), max(min_tasks, math.ceil(total / max(target_bytes, 1))))
    loads = [0] * count
    groups: list[list[tuple[int, str]]] = [[] for _ in range(count)]
    for pos, (uri, size) in sorted(enumerate(sizes), key=lambda p: (-p[1][1], p[0])):
        i = loads.index(min(loads))
        loads[i] += max(size, 1)
        groups[i].append((pos, uri))
    return [[uri for _, uri in sorted(g)] for g in groups if g]


def _load_schema(storage: Storage, path: str | None) -> pa.Schema | None:
    """StructType JSON or Spark DDL, parsed by our own code (glue/schema.py): no JVM, both engines."""
    if not path:
        return None
    text = storage.read_bytes(path).decode("utf-8-sig")
    schema = parse_schema_text(text)
    clash = [f.name for f in schema if f.name.lower() in RESERVED]
    if clash:
        raise JobArgsError(f"schema declares provenance column {clash[0]!r}; the job adds it itself")
    return schema


def _check_objects(storage: Storage, manifest: Manifest) -> list[tuple[str, int]]:
    uris = [f.uri for f in manifest.files]
    with ThreadPoolExecutor(max_workers=min(16, len(uris))) as pool:
        sizes = list(pool.map(storage.size, uris, [f.version_id for f in manifest.files]))
    missing = [u for u, s in zip(uris, sizes, strict=True) if s is None]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise MissingObjectError(f"manifest {manifest.manifest_id}: {len(missing)} object(s) not found: {shown}")
    return [(u, int(s or 0)) for u, s in zip(uris, sizes, strict=True)]


def _reconcile(manifest: Manifest, results: list[TaskResult]) -> list[dict[str, Any]]:
    by_uri = {c.uri: c for r in results for c in r.files}
    counted = [c.uri for r in results for c in r.files]
    expected = [f.uri for f in manifest.files]
    if sorted(counted) != sorted(expected):
        raise ReconciliationError(f"manifest {manifest.manifest_id}: converted files differ from the manifest's")
    broken = [c for c in by_uri.values() if not c.reconciles()]
    if broken:
        detail = "; ".join(
            f"{c.uri}: lines={c.lines} rows={c.rows} quarantined={c.quarantined} blank={c.blank}" for c in broken[:5]
        )
        raise ReconciliationError(f"lines != rows + quarantined + blank for {len(broken)} file(s): {detail}")
    # ``set_aside`` only on the files set aside (its reason): the other entries keep their shape.
    return [{k: v for k, v in asdict(by_uri[u]).items() if k != "set_aside" or v} for u in expected]


def run_job(engine: Executor | Any, args: JobArgs, s3: S3Config | None = None) -> RunSummary:
    """Convert one manifest; see the module docstring for what is guaranteed. ``engine``: an
    Executor or a SparkSession. ``s3``: where and as whom to reach S3 (default: the environment;
    the local runtime passes the Glue role's keys)."""
    started = time.perf_counter()
    executor = as_executor(engine)
    timings: dict[str, float] = {}
    args = args.validate()
    compression = args.compression.lower()
    s3 = s3 or S3Config.from_env()
    storage = Storage(s3)
    manifest = Manifest.from_json(storage.read_bytes(args.manifest_path))
    schema = _load_schema(storage, args.schema_path)
    sizes = _check_objects(storage, manifest)
    # The table's schema is read before conversion: the manifest is conformed to it (and to
    # what the table's schema policy lets the manifest add), never to a schema of its own.
    catalog = open_catalog(args.table, s3) if args.table else None
    table_schema = current_schema(catalog, args.table) if args.table else None
    timings["plan_s"] = time.perf_counter() - started
    log.info("manifest %s: %d files, %d bytes", manifest.manifest_id, len(sizes), sum(s for _, s in sizes))

    mid, date = manifest.manifest_id, manifest.date_prefix
    token = uuid.uuid4().hex[:12]
    q_final = join(args.quarantine_path, f"dt={date}", f"manifest={mid}")
    q_stage = join(args.quarantine_path, "_staging", f"{mid}-{token}")
    if args.table:
        # Inside the table's location, under a name no other attempt uses: once committed, a
        # file stays where a snapshot references it (old ones go when snapshots expire).
        data_final = data_stage = join(args.table.location, "data", f"dt={date}", f"{mid}-{token}")
    else:
        data_final = join(args.output_path, f"dt={date}", f"manifest={mid}")
        data_stage = join(args.output_path, "_staging", f"{mid}-{token}")

    target_bytes = int(args.target_file_mb * 1024 * 1024 / EXPECTED_PARQUET_RATIO)
    groups = plan_tasks(sizes, target_bytes, executor.parallelism)
    versions = {f.uri: f.version_id for f in manifest.files}
    inject = isolation.INJECT  # None outside tests
    specs = [
        TaskSpec(
            i,
            tuple(g),
            tuple(versions[u] for u in g),
            mid,
            data_stage,
            q_stage,
            compression,
            schema,
            s3,
            inject,
            target_file_mb=args.target_file_mb,
            block_bytes=glue_blocks.BLOCK_BYTES,
            flush_bytes=glue_parts.FLUSH_BYTES,
            ingest_date=date if args.table else None,
        )
        for i, g in enumerate(groups)
    ]

    summary_path = join(args.output_path, "_runs", f"{mid}.json")

    def write_summary(commit: CommitResult | None, done: bool) -> RunSummary:
        """The run summary ``<OUTPUT_PATH>/_runs/<manifest>.json``: before the commit (``done``
        False) and after it, with the commit once there is one."""
        totals = {k: sum(f[k] for f in files) for k in ("lines", "rows", "quarantined", "blank", "bytes")}
        timings["total_s"] = time.perf_counter() - started
        summary = RunSummary(
            manifest_id=mid,
            date_prefix=date,
            files=files,
            totals=totals,
            schema=schema_json(final),
            schema_source="explicit" if schema is not None else "inferred",
            compression=compression,
            output_path=data_final,
            quarantine_path=q_final,
            data_files=len(parts),
            tasks=len(specs),
            input_bytes=sum(s for _, s in sizes),
            output_bytes=out_bytes,
            timings={k: round(v, 3) for k, v in timings.items()},
            files_set_aside=sum(1 for f in files if f.get("set_aside")),
            table=".".join(args.table.identifier) if args.table else None,
            snapshot_id=commit.snapshot_id if commit else None,
            schema_id=commit.schema_id if commit else None,
            schema_changes=[c.describe() for c in changes],
            run_token=token,
            engine=executor.name,
            committed=done,
        )
        storage.write_bytes(
            summary_path,
            json.dumps(summary.to_dict(), indent=2, ensure_ascii=False).encode("utf-8"),
        )
        return summary

    committed = False
    commit_started = False
    commit = None
    changes: list[Any] = []
    try:
        t = time.perf_counter()
        results: list[TaskResult] = executor.map(run_task, specs)
        timings["convert_s"] = time.perf_counter() - t
        files = _reconcile(manifest, results)

        t = time.perf_counter()
        if schema is None:
            # Files in manifest order, whatever task converted them: the first casing of a name
            # seen in that order is the column (docs/json-shapes.md), the same on every rerun.
            by_uri = {c.uri: (c, s) for r in results for c, s in zip(r.files, r.file_schemas, strict=True)}
            ordered = [by_uri[f.uri] for f in manifest.files]
            final = final_schema([s for c, s in ordered if c.rows])
        else:
            final = schema
        if args.table:
            try:
                final, changes = evolve(table_schema, final, args.table.mode)
            except SchemaChangeRefused as exc:
                raise SchemaChangeError(refusal_message(c.describe() for c in exc.changes)) from exc
        target = with_provenance(final, partitioned=args.table is not None)
        redo = [
            ConformSpec(p.uri, target, compression, s3, tuple((c.uri, versions[c.uri]) for c in r.files))
            for r in results
            for p in r.parts
            if p.uri.endswith(".arrow") or not _part_fits(p.schema, target, table=args.table is not None)
        ]
        executor.check_deadline("unify")
        rewritten = executor.map(run_conform, redo)
        conformed = dict(zip([c.staged_file for c in redo], rewritten, strict=True))
        parts = [conformed.get(p.uri, p.uri) for r in results for p in r.parts]
        timings["unify_s"] = time.perf_counter() - t

        # Sizes of the staged parts (folder output: the same files once moved into place).
        out_bytes = sum(storage.size(u) or 0 for u in parts)
        t = time.perf_counter()
        # A Lambda must not start a commit it cannot finish; past here the run's outputs move.
        executor.check_deadline("commit")
        write_summary(None, done=False)
        storage.replace_folder(q_stage, q_final)
        if args.table:
            commit_started = True
            # Conflict retries stop in time for the summary rewrite after the commit; past this
            # deadline a conflict surfaces as TableCommitConflictError (transient: no attempt spent).
            commit = commit_manifest(
                catalog, args.table, target, parts, mid, token, changes, deadline=_commit_deadline(executor)
            )
        else:
            storage.replace_folder(data_stage, data_final)
        committed = True
        log.info("manifest %s committed to %s", mid, args.table.identifier if args.table else data_final)
        timings["commit_s"] = time.perf_counter() - t
    finally:
        if not committed:
            # A table commit that was attempted may have landed (an ambiguous failure): its files
            # stay, a snapshot may reference them; unreferenced ones are orphan files for the
            # table's maintenance to remove. Files no commit ever saw are ours to delete.
            if not commit_started:
                storage.delete_prefix(data_stage)
            storage.delete_prefix(q_stage)

    set_aside = [f for f in files if f.get("set_aside")]
    if set_aside:
        log.warning("manifest %s: %d file(s) set aside whole", mid, len(set_aside))
    return write_summary(commit, done=True)


# Seconds a Lambda run keeps after its last commit retry: the summary rewrite and the return.
COMMIT_STOP_BEFORE_DEADLINE_S = 5.0


def _commit_deadline(executor: Any) -> float | None:
    """When commit conflict retries must stop: the executor's deadline less a few seconds (a Lambda
    killed mid-retry would leave the run ambiguous); None on Glue, whose job timeout bounds it."""
    deadline = getattr(executor, "deadline", None)
    return None if deadline is None else deadline - COMMIT_STOP_BEFORE_DEADLINE_S


def _part_fits(part: pa.Schema, target: pa.Schema, table: bool) -> bool:
    """Whether a staged part can be committed as written. Folder output: exactly the manifest's
    schema. Table output: a part may lack columns (the table reads them as null), but each column
    it has must be the table's, with the table's type."""
    if not table:
        return part == data_fields(target)
    return fits_within(part, data_fields(target))
