"""The dataset as one Apache Iceberg table: catalog wiring and the one commit per manifest.

Runs on the Glue job's driver only (never inside a Spark task). The catalog is the AWS Glue Data
Catalog in AWS and pyiceberg's SQL catalog on sqlite locally, chosen by ``TableConfig.catalog``;
the rest of the code does not know which.

``commit_manifest`` makes ONE snapshot per manifest, an Iceberg overwrite that removes the data
files holding the manifest's earlier rows and adds this attempt's files, with the schema change
in the same transaction. A retried or replayed manifest therefore replaces its rows, never
doubles them, and no snapshot shows half of a manifest. The manifest's earlier files are found
from metadata alone: ``_manifest_id`` keeps full column metrics (not Iceberg's default
``truncate(16)``), each data file holds exactly one manifest's rows, so its lower and upper bound
are that manifest's id. The table is partitioned by ``_ingest_date`` (identity), a real column of
every data file holding the manifest's date, so each file's partition value comes from its own
statistics. Concurrent manifests commit optimistically; a conflict reloads the table
and tries again after a jittered backoff (chalicelib/backoff.py), for as long as the caller's
deadline allows (a Lambda converter stops before its timeout) and at most
``COMMIT_RETRY_SECONDS``; conflicts that outlast it raise ``TableCommitConflictError``, which the
workflow treats as transient (chalicelib/commit_conflict.py), unlike any other refusal.
"""

from __future__ import annotations

import logging
import time
import warnings
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from chalicelib.backoff import backoff_delay
from chalicelib.commit_conflict import conflict_message
from glue.rescue import INGEST_DATE, MANIFEST_ID
from glue.storage import S3Config
from glue.table_schema import DEFAULT_MODE, Change, check_mode

log = logging.getLogger("ndjson_parquet.glue")

CATALOGS = ("sql", "glue")
# Table properties set at creation. Full metrics on _manifest_id: deciding which files hold a
# manifest's rows from the manifest lists alone, never by reading other manifests' data.
TABLE_PROPERTIES = {
    "format-version": "2",
    f"write.metadata.metrics.column.{MANIFEST_ID}": "full",
    "write.parquet.compression-codec": "snappy",
    # A manifest's first commit is a merge-append: Iceberg folds small manifest files together, so
    # the number a commit reads stays bounded instead of growing by one per committed manifest
    # (bench/table_commit.py measured 6.7 s per commit at 500 manifests without it).
    "commit.manifest-merge.enabled": "true",
}
# How long a commit keeps retrying conflicts when the caller gives no earlier deadline. Commits to
# one table are serialised by the catalog's compare-and-swap: N committers at once need about N
# commit times, so this covers far more than the converter's reserved concurrency.
COMMIT_RETRY_SECONDS = 300.0
# Full-jitter backoff between conflicting attempts: base * 2**attempt, capped (chalicelib/backoff.py).
CONFLICT_BACKOFF_BASE, CONFLICT_BACKOFF_CAP = 0.05, 2.0


class TableCommitError(RuntimeError):
    """The manifest could not be committed: deterministic (a data file holding other manifests'
    rows), so retrying the same manifest as is would fail again."""


class TableCommitConflictError(TableCommitError):
    """Other manifests kept committing first until the deadline: nothing was committed, and the
    same manifest commits fine later. Transient: no attempt is spent on its files."""


@dataclass(frozen=True)
class TableConfig:
    """Where the table is: ``catalog`` ``sql`` (``uri``: a SQLAlchemy URL, sqlite locally) or
    ``glue`` (the Glue Data Catalog of the job's account and region), and the table's location."""

    catalog: str
    namespace: str
    name: str
    location: str
    uri: str | None = None
    mode: str = DEFAULT_MODE

    def validate(self) -> TableConfig:
        if self.catalog not in CATALOGS:
            raise ValueError(f"catalog {self.catalog!r} is not one of {', '.join(CATALOGS)}")
        if self.catalog == "sql" and not self.uri:
            raise ValueError("the sql catalog needs a uri (for example sqlite:////path/catalog.db)")
        for name in ("namespace", "name", "location"):
            if not getattr(self, name):
                raise ValueError(f"table {name} is required")
        check_mode(self.mode)
        return self

    @property
    def identifier(self) -> tuple[str, str]:
        return (self.namespace, self.name)


def _io_properties(s3: S3Config | None) -> dict[str, str]:
    """pyiceberg's FileIO settings: only an endpoint override (moto locally) carries keys; in AWS
    the job's role credentials are found by the SDK, never copied."""
    if s3 is None or not s3.endpoint_url:
        return {"s3.region": s3.region} if s3 and s3.region else {}
    props = {
        "s3.endpoint": s3.endpoint_url,
        "s3.region": s3.region or "us-east-1",
        "s3.access-key-id": s3.access_key or "testing",
        "s3.secret-access-key": s3.secret_key or "testing",
        "s3.force-virtual-addressing": "false",
    }
    if s3.session_token:
        props["s3.session-token"] = s3.session_token
    return props


def open_catalog(config: TableConfig, s3: S3Config | None = None, glue_client: Any = None) -> Any:
    """The configured catalog; ``glue_client``: a boto3 Glue client (default: from the environment)."""
    config.validate()
    props = _io_properties(s3)
    if config.catalog == "sql":
        from pyiceberg.catalog.sql import SqlCatalog
        from sqlalchemy.exc import OperationalError

        try:
            return SqlCatalog("local", uri=config.uri, warehouse=config.location, **props)
        except OperationalError:
            # Two first runs raced to create the catalog's own tables: they exist now.
            return SqlCatalog("local", uri=config.uri, warehouse=config.location, **props)
    import boto3
    from pyiceberg.catalog.glue import GlueCatalog

    if glue_client is None:
        endpoint = s3.endpoint_url if s3 else None
        region = s3.region if s3 else None
        glue_client = boto3.client(
            "glue",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=s3.access_key if s3 and endpoint else None,
            aws_secret_access_key=s3.secret_key if s3 and endpoint else None,
            aws_session_token=s3.session_token if s3 and endpoint else None,
        )
    return GlueCatalog("glue", client=glue_client, **props)


def _plain(t: pa.DataType) -> pa.DataType:
    """pyiceberg reads strings and lists as Arrow's large types; the job writes the plain ones."""
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_list(t) or pa.types.is_list(t):
        return pa.list_(_plain(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, _plain(f.type)) for f in t])
    return t


def arrow_schema(table: Any) -> pa.Schema:
    """The table's current schema as the job's Arrow types (no field ids)."""
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    schema = schema_to_pyarrow(table.schema(), include_field_ids=False)
    return pa.schema([pa.field(f.name, _plain(f.type)) for f in schema])


def load_table(catalog: Any, config: TableConfig) -> Any | None:
    from pyiceberg.exceptions import NoSuchTableError

    try:
        return catalog.load_table(config.identifier)
    except NoSuchTableError:
        return None


def current_schema(catalog: Any, config: TableConfig) -> pa.Schema | None:
    """The table's schema before a manifest is converted (None: the table does not exist yet)."""
    table = load_table(catalog, config)
    return None if table is None else arrow_schema(table)


def _create_args(schema: pa.Schema) -> dict[str, Any]:
    """The schema with its Iceberg field ids and, when the files carry ``_ingest_date``, the
    partition spec on it: identity, so each data file's value comes from its own statistics."""
    from pyiceberg.catalog import Catalog
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.schema import assign_fresh_schema_ids
    from pyiceberg.transforms import IdentityTransform

    iceberg = assign_fresh_schema_ids(Catalog._convert_schema_if_needed(schema))
    if INGEST_DATE not in schema.names:
        return {"schema": iceberg}
    source = iceberg.find_field(INGEST_DATE).field_id
    field = PartitionField(source_id=source, field_id=1000, transform=IdentityTransform(), name=INGEST_DATE)
    spec = PartitionSpec(field)
    return {"schema": iceberg, "partition_spec": spec}


def _partitioned(metadata: Any) -> bool:
    schema = metadata.schema()
    return any(schema.find_column_name(f.source_id) == INGEST_DATE for f in metadata.spec().fields)


def _load_or_create(catalog: Any, config: TableConfig, schema: pa.Schema) -> Any:
    table = load_table(catalog, config)
    if table is not None:
        return table
    # Concurrent first manifests race to create: the loser finds what the winner made (the SQL
    # catalog reports the race as an integrity error, not as "already exists").
    if config.catalog == "sql":
        # Locally the catalog is ours to set up. In AWS the stack creates the Glue database, and
        # the job's role may not create databases.
        try:
            catalog.create_namespace_if_not_exists(config.namespace)
        except Exception:
            if config.namespace not in {n[0] for n in catalog.list_namespaces()}:
                raise
    try:
        return catalog.create_table(
            config.identifier, location=config.location, properties=TABLE_PROPERTIES, **_create_args(schema)
        )
    except Exception:
        table = load_table(catalog, config)
        if table is None:
            raise
        return table


def _transaction(table: Any) -> Any:
    """``table.transaction()`` whose ``table_metadata`` is computed once per staged state.

    pyiceberg 0.11.1's ``Transaction.table_metadata`` replays the staged updates and deep-copies
    the whole metadata (every snapshot's summary) on each read, and one commit reads it some 30
    times: at 500 snapshots that was 3.7 s of a 4.4 s commit. The cache is keyed on the identity of
    the table's metadata and of the staged-updates tuple (staging rebinds it, a commit replaces the
    table's metadata), so a read after any change recomputes; the readers (schema update, snapshot
    producers, this module) never mutate it. Upstream: apache/iceberg-python#3302 and #3784.
    """
    from pyiceberg.table import Transaction
    from pyiceberg.table.update import update_table_metadata

    class _CachedTransaction(Transaction):
        _cache: tuple[Any, Any, Any] | None = None

        @property
        def table_metadata(self) -> Any:
            base, updates = self._table.metadata, self._updates
            cached = self._cache
            if cached is None or cached[0] is not base or cached[1] is not updates:
                cached = self._cache = (base, updates, update_table_metadata(base, updates))
            return cached[2]

    return _CachedTransaction(table)


@dataclass(frozen=True)
class CommitResult:
    snapshot_id: int | None
    schema_id: int
    files_added: int
    files_replaced: int
    attempts: int


def manifest_files(table: Any, manifest_id: str) -> list[Any]:
    """The data files of the current snapshot that hold ``manifest_id``'s rows, from metadata."""
    from pyiceberg.conversions import from_bytes
    from pyiceberg.expressions import EqualTo

    field_id = table.schema().find_field(MANIFEST_ID).field_id
    kind = table.schema().find_type(MANIFEST_ID)
    found = []
    for task in table.scan(row_filter=EqualTo(MANIFEST_ID, manifest_id)).plan_files():
        low = task.file.lower_bounds.get(field_id)
        high = task.file.upper_bounds.get(field_id)
        if low is None or high is None or from_bytes(kind, low) != manifest_id or from_bytes(kind, high) != manifest_id:
            # Every file this job writes holds one manifest: removing a file that also holds
            # other rows would lose them, so refuse instead.
            raise TableCommitError(f"data file {task.file.file_path} does not hold manifest {manifest_id} alone")
        found.append(task.file)
    return found


def _maybe_committed(metadata: Any, manifest_id: str) -> bool:
    """False only when the table's history proves ``manifest_id`` was never committed: every
    snapshot from the current one back to the table's first is in the metadata (none expired)
    and was made by ``commit_manifest`` (a ``manifest_id`` in its summary: another writer, a
    compaction say, may have moved rows), and none is ``manifest_id``'s. Then a first commit
    skips ``manifest_files``, which reads every Iceberg manifest of the table."""
    snapshot = metadata.current_snapshot()
    by_id = None
    while snapshot is not None:
        committed = snapshot.summary.additional_properties.get("manifest_id") if snapshot.summary else None
        if committed is None or committed == manifest_id:
            return True
        if snapshot.parent_snapshot_id is None:
            # The table's first snapshot (sequence number 1: the table is format v2) means the history
            # is whole. pyiceberg's ExpireSnapshots clears the parent id of the oldest snapshot it
            # keeps, so a parentless snapshot with a later number is a history cut short: look (else
            # a replay after an expiry would append its rows a second time).
            return snapshot.sequence_number != 1
        if by_id is None:
            by_id = {s.snapshot_id: s for s in metadata.snapshots}
        snapshot = by_id.get(snapshot.parent_snapshot_id)
    # A parent expired (history cut short): cannot tell, so look. No snapshot at all: nothing to find.
    return metadata.current_snapshot() is not None


def _commit_once(
    catalog: Any,
    config: TableConfig,
    schema: pa.Schema,
    paths: list[str],
    manifest_id: str,
    properties: dict[str, str],
) -> CommitResult:
    from pyiceberg.io.pyarrow import parquet_file_to_data_file

    table = _load_or_create(catalog, config, schema)
    with _transaction(table) as tx:
        # union_by_name adds the new fields (nested ones too) and applies the promotions
        # glue/table_schema.py allowed; a field the table has keeps its id and type.
        if arrow_schema(table) != schema:
            with tx.update_schema() as update:
                update.union_by_name(schema)
        if INGEST_DATE in schema.names and not _partitioned(tx.table_metadata):
            # A table created unpartitioned (before the files carried the date) gains the spec;
            # its earlier files keep the spec they were written with.
            with tx.update_spec() as spec:
                spec.add_identity(INGEST_DATE)
        metadata = tx.table_metadata
        missing = {k: v for k, v in TABLE_PROPERTIES.items() if k not in metadata.properties}
        if metadata.name_mapping() is None:
            # The job's files carry no Iceberg field ids: readers map their columns by name.
            # update_schema keeps this mapping in step with every later schema change.
            missing["schema.name-mapping.default"] = metadata.schema().name_mapping.model_dump_json()
        missing.pop("format-version", None)  # fixed at creation
        if missing:
            tx.set_properties(**missing)
            metadata = tx.table_metadata
        earlier = manifest_files(table, manifest_id) if _maybe_committed(table.metadata, manifest_id) else []
        added = [parquet_file_to_data_file(table.io, metadata, p) for p in paths]
        if earlier:
            # A retry or replay: its earlier files out, this attempt's in, in one snapshot.
            with tx.update_snapshot(snapshot_properties=properties).overwrite() as overwrite:
                for f in earlier:
                    overwrite.delete_data_file(f)
                for f in added:
                    overwrite.append_data_file(f)
        elif added:
            with tx.update_snapshot(snapshot_properties=properties).merge_append() as append:
                for f in added:
                    append.append_data_file(f)
    # The commit left the committed metadata on ``table``: no reload.
    snapshot = table.current_snapshot()
    return CommitResult(
        snapshot_id=snapshot.snapshot_id if snapshot else None,
        schema_id=table.schema().schema_id,
        files_added=len(added),
        files_replaced=len(earlier),
        attempts=1,
    )


def commit_manifest(
    catalog: Any,
    config: TableConfig,
    schema: pa.Schema,
    paths: list[str],
    manifest_id: str,
    run_token: str,
    changes: list[Change] | None = None,
    deadline: float | None = None,
) -> CommitResult:
    """Commit one manifest's data files (``paths``, all written with ``schema``): one snapshot
    that replaces the manifest's earlier rows, schema changes included.

    A commit conflict (``CommitFailedException``: another commit moved the table first) reloads
    and retries after a jittered backoff. ``deadline`` (a ``time.monotonic()`` value)
    bounds it: a retry is started only if its backoff plus the slowest attempt so far still end
    before ``min(deadline, start + COMMIT_RETRY_SECONDS)``; otherwise ``TableCommitConflictError``.
    Any other failure raises at once (``TableCommitError`` for a deterministic refusal)."""
    from pyiceberg.exceptions import CommitFailedException

    properties = {"manifest_id": manifest_id, "run_token": run_token}
    if changes:
        properties["schema_changes"] = "; ".join(c.describe() for c in changes)[:4000]
    started = time.monotonic()
    stop = started + COMMIT_RETRY_SECONDS if deadline is None else min(deadline, started + COMMIT_RETRY_SECONDS)
    slowest = 0.0
    attempt = 0
    while True:
        attempt += 1
        began = time.monotonic()
        try:
            with warnings.catch_warnings():
                # pyiceberg warns when a filter matches nothing: a first commit, not a problem.
                warnings.filterwarnings("ignore", message="Delete operation did not match any records")
                result = _commit_once(catalog, config, schema, paths, manifest_id, properties)
        except CommitFailedException as exc:
            # Another manifest committed first (optimistic concurrency): nothing of ours landed.
            now = time.monotonic()
            slowest = max(slowest, now - began)
            delay = backoff_delay(attempt, CONFLICT_BACKOFF_BASE, CONFLICT_BACKOFF_CAP)
            if now + delay + slowest > stop:
                raise TableCommitConflictError(conflict_message(manifest_id, attempt, now - started, str(exc))) from exc
            log.info("manifest %s: commit conflict (%s), attempt %d", manifest_id, exc, attempt)
            time.sleep(delay)
            continue
        return CommitResult(**{**result.__dict__, "attempts": attempt})
