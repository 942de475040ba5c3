"""The tracking table's repository: every read and write of the DynamoDB table lives here.

The tracker, batching (counting, sealing, flush), the workflow tasks (ClaimRun, Finalize,
Compensate), recover, the circuit breaker, the CLI and the local runtime all go through
``TrackingTable``; none of them sees the client or the item format. Decisions (is a batch full,
where does a failed file go, may the breaker let a seal through) stay in their pure modules.

- One codec: boto3's TypeSerializer/TypeDeserializer; numbers come back as int/float, not Decimal.
- One paging helper: boto3's paginators with a page size (``chalicelib/paging.py``).
- One conditional-write shape (``_conditional``); next to each write, a comment says what its
  ConditionExpression guarantees.
- One transient rule (``chalicelib/transient.py``) for transaction retries.

Key layout: ``chalicelib/keys.py``. The client is injected (the low-level ``dynamodb`` client,
so it works against moto's server and under a botocore Stubber).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import keys
from chalicelib.backoff import sleep_before_retry
from chalicelib.file_store import DateTotals, FileRef, ShardCounter, TrackedFile
from chalicelib.paging import raw_pages
from chalicelib.transient import cancellation_reasons, is_transient
from chalicelib.workflow.errors import StaleRunError, TransientError

_SER = TypeSerializer()
_DESER = TypeDeserializer()
PAGE_SIZE = 100
TRANSACT_MAX = 100  # TransactWriteItems' limit on actions per call
_BATCH_GET_RETRIES = 8
BREAKER_KEY = {"pk": "BREAKER", "sk": "STATE"}


class StoreError(RuntimeError):
    """A store call failed in a way retrying the same call here will not fix."""


# --- codec -------------------------------------------------------------------------------------
def _to_dynamo(value: Any) -> Any:
    """Floats become Decimals (the serializer refuses floats); containers are walked."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def to_item(data: Mapping[str, Any]) -> dict[str, Any]:
    """An item (or key) in DynamoDB JSON; a None attribute is left out (absent means unset)."""
    return {k: _SER.serialize(_to_dynamo(v)) for k, v in data.items() if v is not None}


def to_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """ExpressionAttributeValues: every placeholder is sent, a None as NULL."""
    return {k: _SER.serialize(_to_dynamo(v)) for k, v in data.items()}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(_DESER.deserialize(v)) for k, v in item.items()}


def _file_ref(data: Mapping[str, Any]) -> FileRef:
    return FileRef(
        file_id=str(data["file_id"]),
        bucket=str(data["bucket"]),
        key=str(data["key"]),
        size=int(data.get("size", 0)),
        etag=str(data.get("etag", "")),
        version_id=data.get("version_id"),
        arrived_at=str(data.get("arrived_at", "")),
        sort_key=str(data.get("gsi1sk", "")),
        batch_limit=int(data["batch_limit"]) if data.get("batch_limit") else None,
    )


def _set_clause(attrs: Mapping[str, Any], names: dict[str, str], values: dict[str, Any]) -> list[str]:
    """``#aN = :aN`` for each attribute, filling in the placeholders (names may be reserved words)."""
    sets = []
    for i, (name, value) in enumerate(sorted(attrs.items())):
        names[f"#a{i}"] = name
        values[f":a{i}"] = value
        sets.append(f"#a{i} = :a{i}")
    return sets


# The SEAL item back on the open-dates index (flush_stale's list): shared by ``open_date`` and the
# reopen inside a file move, so both put the same attributes back.
_REOPEN = "SET gsi1pk = :open, gsi1sk = :d, date_prefix = :d, seq = if_not_exists(seq, :z)"


@dataclass(frozen=True)
class FileUpdate:
    """One FILE item to move out of ``claimed#<manifest_id>``: its new status key and attributes."""

    pk: str
    status: str
    status_key: str
    set_attrs: dict[str, Any]
    add_attempts: int = 0
    # The file goes back to pending: its date's SEAL item is reopened (put back on flush_stale's
    # open-dates list, what ``open_date`` does) in the same transaction as the move.
    reopen_date: str = ""
    # ...and the file was in that date's sealed totals (its manifest advanced SEAL): it leaves
    # them again, so ``files - sealed_files`` keeps equalling what is really unsealed.
    unseal_bytes: int | None = None


class _Verdict:
    held = True  # False: the write's ConditionExpression did not hold and nothing was written


class TrackingTable:
    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self.name = table_name

    @contextmanager
    def _conditional(self) -> Iterator[_Verdict]:
        """Wrap one conditional write: a failed condition is an answer (``held`` False), not an error."""
        verdict = _Verdict()
        try:
            yield verdict
        except self._client.exceptions.ConditionalCheckFailedException:
            verdict.held = False

    def _key(self, pk: str, sk: str) -> dict[str, Any]:
        return to_item({"pk": pk, "sk": sk})

    # --- FILE: tracker -----------------------------------------------------------------------
    def put_file(self, f: TrackedFile) -> bool:
        """Record one object version; False when it was already recorded (an SQS redelivery)."""
        status_key = (
            keys.pending_status_key(f.date_prefix, f.shard)
            if f.status == keys.PENDING
            else keys.skipped_status_key(f.date_prefix, f.shard)
        )
        item = {
            "pk": keys.file_pk(f.file_id),
            "sk": keys.FILE_SK,
            "file_id": f.file_id,
            "bucket": f.bucket,
            "key": f.key,
            "size": f.size,
            "etag": f.etag,
            "version_id": f.version_id,
            "arrived_at": f.arrived_at,
            "date_prefix": f.date_prefix,
            "shard": f.shard,
            "status": f.status,
            "gsi1pk": status_key,
            "gsi1sk": f"{f.arrived_at}#{f.file_id}",
            "ttl": f.expires_at,
        }
        with self._conditional() as write:
            # attribute_not_exists(pk): the first delivery creates the item; a redelivery (same
            # bucket+key+version => same pk) fails here and changes nothing, not even a claim
            # or conversion that happened since.
            self._client.put_item(
                TableName=self.name, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)"
            )
        return write.held

    # --- counters (stream) -------------------------------------------------------------------
    def count_files(
        self, date_prefix: str, shard: int, files: Sequence[tuple[str, int]], oldest_arrival: str | None = None
    ) -> int:
        """Add files to their shard counter at most once each; returns how many were new.

        ``oldest_arrival`` (the earliest ``arrived_at`` of ``files``) becomes the counter's
        ``pending_since`` age hint if it has none (batching.py: the seal-by-age rule reads it
        with the totals, for free). It is recorded with the count, in the same write.

        Two steps, no transaction: first each FILE is flagged ``counted`` conditionally (the
        flag is the dedupe of redelivered stream records), then one ADD puts all newly flagged
        files of this date/shard on the counter. A crash between the steps under-counts, which
        only delays a threshold seal (flush_stale seals by age, not by count); it can never
        over-count. Why not TransactWriteItems: a transaction costs 2 write units per item
        (more than these single writes) and moto's transactions roll back by restoring a table
        snapshot, which erases concurrent writes, so the race tests could not exercise them.
        """
        new: list[tuple[str, int]] = []
        for fid, size in dict(files).items():  # de-duplicate ids within one batch
            with self._conditional() as write:
                self._client.update_item(
                    TableName=self.name,
                    Key=self._key(keys.file_pk(fid), keys.FILE_SK),
                    UpdateExpression="SET counted = :t",
                    # attribute_exists(pk): never create a FILE from a stream record;
                    # attribute_not_exists(counted): this file has not been added yet.
                    ConditionExpression="attribute_exists(pk) AND attribute_not_exists(counted)",
                    ExpressionAttributeValues={":t": {"BOOL": True}},
                )
            if write.held:
                new.append((fid, size))
        if not new:
            return 0
        values: dict[str, Any] = {":f": len(new), ":b": sum(s for _, s in new), ":d": date_prefix}
        since = ""
        if oldest_arrival:
            # if_not_exists: the first count after a refresh sets the hint, later ones keep it, so
            # it stays the oldest of the files counted since (concurrent counts still commute).
            since, values[":a"] = ", pending_since = if_not_exists(pending_since, :a)", oldest_arrival
        try:
            self._client.update_item(
                TableName=self.name,
                Key=self._key(keys.counter_pk(date_prefix), keys.shard_sk(shard)),
                # ADD only, unconditional: concurrent counters commute, nothing is read-modify-written.
                UpdateExpression="ADD #f :f, #b :b SET date_prefix = :d" + since,
                ExpressionAttributeNames={"#f": "files", "#b": "bytes"},
                ExpressionAttributeValues=to_values(values),
            )
        except (ClientError, BotoCoreError):
            self._unflag(fid for fid, _ in new)  # so the retried stream batch counts them after all
            raise
        return len(new)

    def _unflag(self, file_ids: Iterable[str]) -> None:
        """Best effort: a flag left behind only means one file counted late (by flush_stale's seal)."""
        for fid in file_ids:
            try:
                self._client.update_item(
                    TableName=self.name,
                    Key=self._key(keys.file_pk(fid), keys.FILE_SK),
                    UpdateExpression="REMOVE counted",
                    ConditionExpression="attribute_exists(pk)",  # never create a stub FILE
                )
            except (ClientError, BotoCoreError):
                return

    def read_totals(self, date_prefix: str, shard_count: int) -> DateTotals:
        """All shard counters of a date plus its SEAL item, strongly consistent, in one batch get."""
        pk = keys.counter_pk(date_prefix)
        wanted = [{"pk": pk, "sk": keys.shard_sk(s)} for s in range(shard_count)] + [{"pk": pk, "sk": keys.SEAL_SK}]
        request = {self.name: {"Keys": [to_item(k) for k in wanted], "ConsistentRead": True}}
        found: list[dict[str, Any]] = []
        for attempt in range(_BATCH_GET_RETRIES):
            if attempt:
                sleep_before_retry(attempt)  # unprocessed keys mean throttling: back off, as AWS asks
            response = self._client.batch_get_item(RequestItems=request)
            found.extend(from_item(i) for i in response.get("Responses", {}).get(self.name, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise StoreError(f"batch get of {date_prefix} counters left unprocessed keys")
        files = total_bytes = 0
        seal: dict[str, Any] = {}
        shards: list[ShardCounter] = []
        shard_of = {keys.shard_sk(s): s for s in range(shard_count)}
        for item in found:
            if item["sk"] == keys.SEAL_SK:
                seal = item
            else:
                files += int(item.get("files", 0))
                total_bytes += int(item.get("bytes", 0))
                since = item.get("pending_since")
                shards.append(ShardCounter(shard_of[item["sk"]], int(item.get("files", 0)), since and str(since)))
        return DateTotals(
            date_prefix=date_prefix,
            files=files,
            bytes=total_bytes,
            seq=int(seal.get("seq", 0)),
            sealed_files=int(seal.get("sealed_files", 0)),
            sealed_bytes=int(seal.get("sealed_bytes", 0)),
            is_open=seal.get("gsi1pk") == keys.OPEN_DATES,
            shards=tuple(sorted(shards, key=lambda c: c.shard)),
        )

    def set_pending_since(self, date_prefix: str, shard: int, files_seen: int, value: str | None) -> bool:
        """Refresh a shard counter's age hint to ``value`` (the arrival of the shard's oldest
        pending file, read after ``files_seen``), or remove it (None: nothing pending there).
        False when a file was counted on the shard since ``files_seen`` was read."""
        update = "REMOVE pending_since" if value is None else "SET pending_since = :v"
        values: dict[str, Any] = {":seen": files_seen}
        if value is not None:
            values[":v"] = value
        with self._conditional() as write:
            self._client.update_item(
                TableName=self.name,
                Key=self._key(keys.counter_pk(date_prefix), keys.shard_sk(shard)),
                UpdateExpression=update,
                # #f = :seen: no file was counted on this shard since the caller read the totals,
                # and the caller read the pending index after that, so ``value`` covers every
                # counted file (a count that raced fails this and keeps the older hint: a hint
                # is only ever left too old, which costs one more check, never a late seal).
                # The counter exists (it held files_seen), so this never creates a stub counter.
                ConditionExpression="#f = :seen",
                ExpressionAttributeNames={"#f": "files"},
                ExpressionAttributeValues=to_values(values),
            )
        return write.held

    # --- SEAL: open dates, the seal election, batch sequence -------------------------------------
    def open_date(self, date_prefix: str) -> None:
        """Put the date on the open-dates index (idempotent, unconditional: reopening is always safe)."""
        self._client.update_item(
            TableName=self.name,
            Key=self._key(keys.counter_pk(date_prefix), keys.SEAL_SK),
            UpdateExpression=(
                f"{_REOPEN}, sealed_files = if_not_exists(sealed_files, :z), "
                "sealed_bytes = if_not_exists(sealed_bytes, :z) REMOVE closed_at"
            ),
            ExpressionAttributeValues=to_values({":open": keys.OPEN_DATES, ":d": date_prefix, ":z": 0}),
        )

    def close_date(self, date_prefix: str, sealed_files_seen: int, now: str) -> bool:
        """Take a date off the open-dates index; False if a seal happened since it was checked."""
        with self._conditional() as write:
            self._client.update_item(
                TableName=self.name,
                Key=self._key(keys.counter_pk(date_prefix), keys.SEAL_SK),
                UpdateExpression="REMOVE gsi1pk, gsi1sk SET closed_at = :now",
                # sealed_files = :seen: nobody sealed this date between our check and this write.
                ConditionExpression="sealed_files = :seen",
                ExpressionAttributeValues=to_values({":seen": sealed_files_seen, ":now": now}),
            )
        return write.held

    def open_dates(self, page_size: int = PAGE_SIZE) -> Iterator[str]:
        for page in self._index_pages(keys.OPEN_DATES, page_size):
            for item in page:
                yield str(item["date_prefix"])

    def begin_seal(self, manifest_id: str, date_prefix: str, seq: int, owner: str, now: str) -> bool:
        """Try to become the one sealer of batch ``seq`` of a date (the election)."""
        item = {
            "pk": keys.manifest_pk(manifest_id),
            "sk": keys.MANIFEST_SK,
            "manifest_id": manifest_id,
            "date_prefix": date_prefix,
            "seq": seq,
            "status": keys.MANIFEST_SEALING,
            "owner": owner,
            "created_at": now,
            "gsi1pk": keys.manifest_status_key(keys.MANIFEST_SEALING),
            "gsi1sk": f"{now}#{manifest_id}",
        }
        with self._conditional() as write:
            # attribute_not_exists(pk): manifest ids are deterministic per (date, seq), so of all
            # invocations racing for this batch exactly one creates the item and wins. The item
            # stays until the seal is finished (or abandoned empty): no lock released early.
            self._client.put_item(
                TableName=self.name, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)"
            )
        return write.held

    def abandon_seal(self, manifest_id: str, owner: str) -> bool:
        """Drop a seal that claimed nothing, so the same seq can be sealed later."""
        with self._conditional() as write:
            self._client.delete_item(
                TableName=self.name,
                Key=self._key(keys.manifest_pk(manifest_id), keys.MANIFEST_SK),
                # owner = me AND still sealing: never delete a seal someone else finished or owns.
                ConditionExpression="#o = :o AND #s = :sealing",
                ExpressionAttributeNames={"#o": "owner", "#s": "status"},
                ExpressionAttributeValues=to_values({":o": owner, ":sealing": keys.MANIFEST_SEALING}),
            )
        return write.held

    def pending_pages(self, date_prefix: str, shard: int, page_size: int) -> Iterator[list[FileRef]]:
        for page in self._index_pages(keys.pending_status_key(date_prefix, shard), page_size):
            if page:
                yield [_file_ref(i) for i in page]

    def claim_file(self, file_id: str, manifest_id: str, now: str) -> FileRef | None:
        """pending → claimed by ``manifest_id``; None if someone else got there first."""
        with self._conditional() as write:
            response = self._client.update_item(
                TableName=self.name,
                Key=self._key(keys.file_pk(file_id), keys.FILE_SK),
                UpdateExpression="SET #s = :claimed, gsi1pk = :ck, manifest_id = :m, claimed_at = :now",
                # status = pending: a file already claimed (by this or any other manifest),
                # converted or skipped is never re-assigned, so no file is in two live manifests.
                ConditionExpression="#s = :pending",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=to_values(
                    {
                        ":claimed": keys.CLAIMED,
                        ":pending": keys.PENDING,
                        ":ck": keys.claimed_status_key(manifest_id),
                        ":m": manifest_id,
                        ":now": now,
                    }
                ),
                ReturnValues="ALL_NEW",
            )
        return _file_ref(from_item(response["Attributes"])) if write.held else None

    def claimed_pages(self, manifest_id: str, page_size: int = PAGE_SIZE) -> Iterator[list[FileRef]]:
        """The files a manifest claims, as manifest entries."""
        for page in self.iter_claimed_file_pages(manifest_id, page_size):
            yield [_file_ref(i) for i in page]

    def mark_sealed(self, manifest_id: str, manifest_uri: str, file_count: int, total_bytes: int, now: str) -> bool:
        with self._conditional() as write:
            self._client.update_item(
                TableName=self.name,
                Key=self._key(keys.manifest_pk(manifest_id), keys.MANIFEST_SK),
                UpdateExpression=(
                    "SET #s = :sealed, gsi1pk = :gk, manifest_uri = :u, file_count = :n, #b = :b, sealed_at = :now"
                ),
                # status = sealing: only a seal in progress becomes sealed; a manifest the
                # workflow already moved on (running, succeeded...) is never rolled back.
                ConditionExpression="#s = :sealing",
                ExpressionAttributeNames={"#s": "status", "#b": "bytes"},
                ExpressionAttributeValues=to_values(
                    {
                        ":sealed": keys.MANIFEST_SEALED,
                        ":sealing": keys.MANIFEST_SEALING,
                        ":gk": keys.manifest_status_key(keys.MANIFEST_SEALED),
                        ":u": manifest_uri,
                        ":n": file_count,
                        ":b": total_bytes,
                        ":now": now,
                    }
                ),
            )
        return write.held

    def advance_seal(self, date_prefix: str, seq: int, files: int, total_bytes: int) -> bool:
        """Move the date to batch ``seq + 1`` and add what batch ``seq`` sealed; False if done already."""
        condition = "attribute_not_exists(seq) OR seq = :seq" if seq == 0 else "seq = :seq"
        with self._conditional() as write:
            self._client.update_item(
                TableName=self.name,
                Key=self._key(keys.counter_pk(date_prefix), keys.SEAL_SK),
                UpdateExpression="SET seq = :next, date_prefix = :d ADD sealed_files :f, sealed_bytes :b",
                # seq = :seq: the ADD happens once per batch even if the sealer and recover both
                # try to finish it; a second attempt finds seq already moved on and changes nothing.
                ConditionExpression=condition,
                ExpressionAttributeValues=to_values(
                    {":seq": seq, ":next": seq + 1, ":f": files, ":b": total_bytes, ":d": date_prefix}
                ),
            )
        return write.held

    def mark_emitted(self, manifest_id: str, now: str) -> None:
        with self._conditional():
            self._client.update_item(
                TableName=self.name,
                Key=self._key(keys.manifest_pk(manifest_id), keys.MANIFEST_SK),
                UpdateExpression="SET emitted_at = :now",
                # attribute_exists(pk): a marker on an existing manifest, never a stub item.
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=to_values({":now": now}),
            )

    # --- MANIFEST: the workflow's runs ---------------------------------------------------------
    def get_manifest(self, manifest_id: str) -> dict[str, Any] | None:
        response = self._client.get_item(
            TableName=self.name,
            Key=self._key(keys.manifest_pk(manifest_id), keys.MANIFEST_SK),
            ConsistentRead=True,
        )
        return from_item(response["Item"]) if "Item" in response else None

    def start_run(self, manifest_id: str, execution_arn: str, now_iso: str, replay: bool) -> dict[str, Any] | None:
        """sealed -> running for this execution; returns the new item, or None when the
        manifest is not startable (a duplicate delivery)."""
        condition = "#status = :sealed"
        values: dict[str, Any] = {
            ":sealed": keys.MANIFEST_SEALED,
            ":running": keys.MANIFEST_RUNNING,
            ":gsi": keys.manifest_status_key(keys.MANIFEST_RUNNING),
            ":arn": execution_arn,
            ":now": now_iso,
            ":one": 1,
        }
        if replay:
            condition += " OR #status = :succeeded OR (#status = :failed AND succeeded_once = :true)"
            values.update({":succeeded": keys.MANIFEST_SUCCEEDED, ":failed": keys.MANIFEST_FAILED, ":true": True})
        with self._conditional() as write:
            response = self._client.update_item(
                TableName=self.name,
                Key=self._key(keys.manifest_pk(manifest_id), keys.MANIFEST_SK),
                UpdateExpression=(
                    "SET #status = :running, gsi1pk = :gsi, execution_arn = :arn, started_at = :now ADD run_count :one"
                ),
                # The condition is the idempotency: only a `sealed` manifest starts (so two
                # deliveries of one ManifestReady race and exactly one wins); a replay may also
                # restart a manifest that succeeded once (its output is replaced), never a running
                # one and never a failed one whose files went back to pending (they belong to a
                # newer manifest now).
                ConditionExpression=f"attribute_exists(pk) AND ({condition})",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_values(values),
                ReturnValues="ALL_NEW",
            )
        return from_item(response["Attributes"]) if write.held else None

    def end_run(self, manifest_id: str, execution_arn: str, status: str, attrs: dict[str, Any]) -> None:
        """running -> succeeded/failed, only while ``execution_arn`` still owns the manifest."""
        names = {"#status": "status"}
        values: dict[str, Any] = {
            ":status": status,
            ":gsi": keys.manifest_status_key(status),
            ":running": keys.MANIFEST_RUNNING,
            ":arn": execution_arn,
        }
        sets = ["#status = :status", "gsi1pk = :gsi", *_set_clause(attrs, names, values)]
        with self._conditional() as write:
            self._client.update_item(
                TableName=self.name,
                Key=self._key(keys.manifest_pk(manifest_id), keys.MANIFEST_SK),
                UpdateExpression="SET " + ", ".join(sets),
                # Ownership check: a run that recover already compensated (or a newer replay) must
                # not overwrite the manifest's fate.
                ConditionExpression="#status = :running AND execution_arn = :arn",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_values(values),
            )
        if not write.held:
            raise StaleRunError(f"execution {execution_arn} no longer owns manifest {manifest_id}")

    def mark_finalizing(self, manifest_id: str, execution_arn: str, now_iso: str) -> None:
        """Record that this run's summary reconciled and its files start moving (compensate then
        rolls forward instead of undoing)."""
        with self._conditional() as write:
            self._client.update_item(
                TableName=self.name,
                Key=self._key(keys.manifest_pk(manifest_id), keys.MANIFEST_SK),
                UpdateExpression="SET finalizing_since = if_not_exists(finalizing_since, :now)",
                # Only while this execution owns the running manifest (same check as end_run).
                ConditionExpression="#status = :running AND execution_arn = :arn",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_values(
                    {":now": now_iso, ":running": keys.MANIFEST_RUNNING, ":arn": execution_arn}
                ),
            )
        if not write.held:
            raise StaleRunError(f"execution {execution_arn} no longer owns manifest {manifest_id}")

    def release_manifest(self, manifest_id: str, now_iso: str) -> bool:
        """held -> failed once its files are released (``ndjson-parquet release``): the manifest is
        done, its files belong to newer manifests. False when it is not held (released already)."""
        with self._conditional() as write:
            self._client.update_item(
                TableName=self.name,
                Key=self._key(keys.manifest_pk(manifest_id), keys.MANIFEST_SK),
                UpdateExpression="SET #status = :failed, gsi1pk = :gsi, released_at = :now",
                # status = held: a manifest is released once (a second or concurrent release finds
                # it failed and changes nothing), and no manifest of another status is touched.
                ConditionExpression="#status = :held",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=to_values(
                    {
                        ":failed": keys.MANIFEST_FAILED,
                        ":gsi": keys.manifest_status_key(keys.MANIFEST_FAILED),
                        ":held": keys.MANIFEST_HELD,
                        ":now": now_iso,
                    }
                ),
            )
        return write.held

    def iter_manifests(self, status: str, page_size: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        for page in self._index_pages(keys.manifest_status_key(status), page_size):
            yield from page

    # --- FILE: moves out of a manifest ----------------------------------------------------------
    def iter_claimed_file_pages(self, manifest_id: str, page_size: int = PAGE_SIZE) -> Iterator[list[dict[str, Any]]]:
        """Pages of the FILE items a manifest claims (status key ``claimed#<manifest_id>``)."""
        for page in self._index_pages(keys.claimed_status_key(manifest_id), page_size):
            if page:
                yield page

    def move_claimed_files(
        self,
        manifest_id: str,
        updates: Sequence[FileUpdate],
        owner_execution_arn: str | None,
        max_conflict_retries: int = 3,
    ) -> int:
        """Move claimed files to their new status in transactions of <= 100 actions.

        Each file update is conditional on the file still being ``claimed#<manifest_id>``, so a
        retried Finalize or Compensate never counts a file twice (attempts + 1 happens once).
        With ``owner_execution_arn`` every transaction also checks that this execution still owns
        the running manifest. Files returning to pending reopen their date (and leave its sealed
        totals) in the same transaction, so a file can never be pending on a closed date, nor
        be subtracted twice. Returns how many files moved."""
        return self._move_files(
            manifest_id, keys.claimed_status_key(manifest_id), updates, owner_execution_arn, max_conflict_retries
        )

    def iter_held_file_pages(self, manifest_id: str, page_size: int = PAGE_SIZE) -> Iterator[list[dict[str, Any]]]:
        """Pages of the FILE items a schema-change refusal holds for a manifest (``held#<id>``)."""
        for page in self._index_pages(keys.held_status_key(manifest_id), page_size):
            if page:
                yield page

    def release_held_files(self, manifest_id: str, updates: Sequence[FileUpdate], max_conflict_retries: int = 3) -> int:
        """Move files held for ``manifest_id`` back to pending (``ndjson-parquet release``), in
        transactions of <= 100 actions, each file conditional on still being ``held#<id>``: a file
        leaves held once, whoever else releases it at the same time or later, and its date's
        reopen/unseal in the same transaction happens once with it. Returns how many moved."""
        return self._move_files(manifest_id, keys.held_status_key(manifest_id), updates, None, max_conflict_retries)

    def _move_files(
        self,
        manifest_id: str,
        from_key: str,
        updates: Sequence[FileUpdate],
        owner_execution_arn: str | None,
        max_conflict_retries: int,
    ) -> int:
        reopened = {u.reopen_date for u in updates if u.reopen_date}
        per_tx = max(1, TRANSACT_MAX - (1 if owner_execution_arn else 0) - len(reopened))
        moved = 0
        for start in range(0, len(updates), per_tx):
            chunk = list(updates[start : start + per_tx])
            moved += self._transact_chunk(manifest_id, from_key, chunk, owner_execution_arn, max_conflict_retries)
        return moved

    def _transact_chunk(
        self, manifest_id: str, from_key: str, chunk: list[FileUpdate], owner: str | None, max_conflict_retries: int
    ) -> int:
        attempt = 0
        while chunk:
            actions = [self._file_action(from_key, u) for u in chunk]
            actions.extend(self._reopen_actions(chunk))  # after the files, before the owner check (last)
            if owner:
                actions.append(self._owner_check(manifest_id, owner))
            try:
                self._client.transact_write_items(TransactItems=actions)
                return len(chunk)
            except self._client.exceptions.TransactionCanceledException as exc:
                reasons = cancellation_reasons(exc)
                if owner and len(reasons) == len(actions) and reasons[-1] == "ConditionalCheckFailed":
                    raise StaleRunError(f"execution {owner} no longer owns manifest {manifest_id}") from None
                failed = {i for i, code in enumerate(reasons[: len(chunk)]) if code == "ConditionalCheckFailed"}
                if failed:
                    # Those files left ``from_key`` under us (already moved by an earlier attempt of
                    # this step, or by a concurrent release): nothing left to do for them; retry the rest.
                    chunk = [u for i, u in enumerate(chunk) if i not in failed]
                    continue
                if not is_transient(exc):
                    raise
                attempt += 1
                if attempt > max_conflict_retries:
                    raise TransientError(f"transaction conflicts on manifest {manifest_id}: {reasons}") from None
                sleep_before_retry(attempt)
        return 0

    def _file_action(self, from_key: str, u: FileUpdate) -> dict[str, Any]:
        names = {"#status": "status"}
        values: dict[str, Any] = {":status": u.status, ":gsi": u.status_key, ":from": from_key}
        expr = "SET " + ", ".join(["#status = :status", "gsi1pk = :gsi", *_set_clause(u.set_attrs, names, values)])
        if u.add_attempts:
            values[":inc"] = u.add_attempts
            expr += " ADD attempts :inc"
        return {
            "Update": {
                "TableName": self.name,
                "Key": self._key(u.pk, keys.FILE_SK),
                "UpdateExpression": expr,
                # The file must still be where this move takes it from. ``claimed#<id>``: a second
                # Finalize/Compensate of the same run finds it moved and skips it (exactly-once
                # status transition). ``held#<id>``: a second release, concurrent or later, finds it
                # pending (or claimed by a newer manifest) already and skips it, so a held file goes
                # back to pending once and its date is unsealed once.
                "ConditionExpression": "gsi1pk = :from",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": to_values(values),
            }
        }

    def _reopen_actions(self, chunk: Sequence[FileUpdate]) -> list[dict[str, Any]]:
        """One SEAL update per date that files of this chunk return to."""
        per_date: dict[str, list[int]] = {}
        for u in chunk:
            if u.reopen_date:
                files_bytes = per_date.setdefault(u.reopen_date, [0, 0])
                if u.unseal_bytes is not None:
                    files_bytes[0] += 1
                    files_bytes[1] += u.unseal_bytes
        return [
            {
                "Update": {
                    "TableName": self.name,
                    "Key": self._key(keys.counter_pk(date), keys.SEAL_SK),
                    # No condition: reopening is always safe, and the ADD of a negative count
                    # happens exactly once because it commits or fails with the conditional file
                    # moves of this same transaction (a retry finds those files moved already).
                    "UpdateExpression": f"{_REOPEN} REMOVE closed_at ADD sealed_files :f, sealed_bytes :b",
                    "ExpressionAttributeValues": to_values(
                        {":open": keys.OPEN_DATES, ":d": date, ":z": 0, ":f": -files, ":b": -nbytes}
                    ),
                }
            }
            for date, (files, nbytes) in sorted(per_date.items())
        ]

    def _owner_check(self, manifest_id: str, execution_arn: str) -> dict[str, Any]:
        return {
            "ConditionCheck": {
                "TableName": self.name,
                "Key": self._key(keys.manifest_pk(manifest_id), keys.MANIFEST_SK),
                # Files move only while this execution owns the running manifest.
                "ConditionExpression": "#status = :running AND execution_arn = :arn",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": to_values({":running": keys.MANIFEST_RUNNING, ":arn": execution_arn}),
            }
        }

    # --- BREAKER: the circuit breaker's one item ------------------------------------------------
    def read_breaker(self) -> dict[str, Any] | None:
        response = self._client.get_item(TableName=self.name, Key=to_item(BREAKER_KEY), ConsistentRead=True)
        return from_item(response["Item"]) if "Item" in response else None

    def write_breaker(self, state: Mapping[str, Any], expected_version: int) -> bool:
        """Replace the breaker item; False when another writer moved it since ``expected_version``."""
        with self._conditional() as write:
            self._client.put_item(
                TableName=self.name,
                Item=to_item({**state, **BREAKER_KEY}),
                # Optimistic concurrency: the write lands only if nobody moved the breaker since we
                # read it (absent item = version 0), so one writer wins each transition.
                ConditionExpression="attribute_not_exists(pk) OR version = :v",
                ExpressionAttributeValues=to_values({":v": expected_version}),
            )
        return write.held

    # --- reads for operators: status, recover, the local runtime -------------------------------
    def scan_index_pages(
        self, page_size: int = 500, filter_prefix: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of the whole status index (operations: status, recover); bounded pages."""
        request: dict[str, Any] = {"TableName": self.name, "IndexName": keys.STATUS_INDEX}
        if filter_prefix:
            request["FilterExpression"] = "begins_with(gsi1pk, :p)"
            request["ExpressionAttributeValues"] = to_values({":p": filter_prefix})
        for items in raw_pages(self._client.get_paginator("scan"), page_size, **request):
            yield [from_item(i) for i in items]

    def scan_items(self, page_size: int = 500) -> Iterator[dict[str, Any]]:
        """Every item of the table (the local runtime's end-of-run picture; never on a Lambda path)."""
        for items in raw_pages(self._client.get_paginator("scan"), page_size, TableName=self.name):
            for item in items:
                yield from_item(item)

    def scan_statuses(self, page_size: int = 500) -> Iterator[dict[str, Any]]:
        """``sk`` and ``status`` of every item (the local runtime's progress poll, several times a
        second while it waits: the projection keeps each poll small; never on a Lambda path)."""
        request = {
            "TableName": self.name,
            "ProjectionExpression": "sk, #s",
            "ExpressionAttributeNames": {"#s": "status"},
        }
        for items in raw_pages(self._client.get_paginator("scan"), page_size, **request):
            for item in items:
                yield from_item(item)

    def _index_pages(self, status_key: str, page_size: int) -> Iterator[list[dict[str, Any]]]:
        """Pages of the status index under one key, oldest first, decoded; one page in memory at a
        time (docs/invariants.md #3)."""
        for items in raw_pages(
            self._client.get_paginator("query"),
            page_size,
            TableName=self.name,
            IndexName=keys.STATUS_INDEX,
            KeyConditionExpression="gsi1pk = :k",
            ExpressionAttributeValues=to_values({":k": status_key}),
        ):
            yield [from_item(i) for i in items]
