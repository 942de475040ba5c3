"""DynamoDB adapter of ``FileStore``: every read and conditional write of the control plane.

The boto3 client is injected (low-level ``dynamodb`` client, so it also works against moto and
can be wrapped by a botocore Stubber). Key layout: chalicelib.keys. Every conditional write
says next to it what its ConditionExpression guarantees.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import keys
from chalicelib.backoff import sleep_before_retry
from chalicelib.file_store import DateTotals, FileRef, TrackedFile
from chalicelib.paging import raw_pages

_SER = TypeSerializer()
_DESER = TypeDeserializer()
_BATCH_GET_RETRIES = 8


class StoreError(RuntimeError):
    """A store call failed in a way retrying the same call here will not fix."""


def _is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def to_item(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _SER.serialize(v) for k, v in data.items() if v is not None}


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


class DynamoDBFileStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self._ddb = client
        self._table = table_name

    # --- tracker -------------------------------------------------------------------------

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
        try:
            # attribute_not_exists(pk): the first delivery creates the item; a redelivery (same
            # bucket+key+version => same pk) fails here and changes nothing, not even a claim
            # or conversion that happened since.
            self._ddb.put_item(
                TableName=self._table, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    # --- counting -------------------------------------------------------------------------

    def count_files(self, date_prefix: str, shard: int, files: Sequence[tuple[str, int]]) -> int:
        """Add files to their shard counter at most once each; returns how many were new.

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
            try:
                self._ddb.update_item(
                    TableName=self._table,
                    Key=to_item({"pk": keys.file_pk(fid), "sk": keys.FILE_SK}),
                    UpdateExpression="SET counted = :t",
                    # attribute_exists(pk): never create a FILE from a stream record;
                    # attribute_not_exists(counted): this file has not been added yet.
                    ConditionExpression="attribute_exists(pk) AND attribute_not_exists(counted)",
                    ExpressionAttributeValues={":t": {"BOOL": True}},
                )
            except ClientError as exc:
                if _is_conditional_failure(exc):
                    continue
                raise
            new.append((fid, size))
        if not new:
            return 0
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=to_item({"pk": keys.counter_pk(date_prefix), "sk": keys.shard_sk(shard)}),
                # ADD only, unconditional: concurrent counters commute, nothing is read-modify-written.
                UpdateExpression="ADD #f :f, #b :b SET date_prefix = :d",
                ExpressionAttributeNames={"#f": "files", "#b": "bytes"},
                ExpressionAttributeValues=to_item({":f": len(new), ":b": sum(s for _, s in new), ":d": date_prefix}),
            )
        except (ClientError, BotoCoreError):
            self._unflag(fid for fid, _ in new)  # so the retried stream batch counts them after all
            raise
        return len(new)

    def _unflag(self, file_ids: Iterable[str]) -> None:
        """Best effort: a flag left behind only means one file counted late (by flush_stale's seal)."""
        for fid in file_ids:
            try:
                self._ddb.update_item(
                    TableName=self._table,
                    Key=to_item({"pk": keys.file_pk(fid), "sk": keys.FILE_SK}),
                    UpdateExpression="REMOVE counted",
                    ConditionExpression="attribute_exists(pk)",  # never create a stub FILE
                )
            except (ClientError, BotoCoreError):
                return

    def read_totals(self, date_prefix: str, shard_count: int) -> DateTotals:
        """All shard counters of a date plus its SEAL item, strongly consistent, in one batch get."""
        pk = keys.counter_pk(date_prefix)
        wanted = [{"pk": pk, "sk": keys.shard_sk(s)} for s in range(shard_count)] + [{"pk": pk, "sk": keys.SEAL_SK}]
        request = {self._table: {"Keys": [to_item(k) for k in wanted], "ConsistentRead": True}}
        found: list[dict[str, Any]] = []
        for attempt in range(_BATCH_GET_RETRIES):
            if attempt:
                sleep_before_retry(attempt)  # unprocessed keys mean throttling: back off, as AWS asks
            response = self._ddb.batch_get_item(RequestItems=request)
            found.extend(from_item(i) for i in response.get("Responses", {}).get(self._table, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
        else:
            raise StoreError(f"batch get of {date_prefix} counters left unprocessed keys")
        files = total_bytes = 0
        seal: dict[str, Any] = {}
        for item in found:
            if item["sk"] == keys.SEAL_SK:
                seal = item
            else:
                files += int(item.get("files", 0))
                total_bytes += int(item.get("bytes", 0))
        return DateTotals(
            date_prefix=date_prefix,
            files=files,
            bytes=total_bytes,
            seq=int(seal.get("seq", 0)),
            sealed_files=int(seal.get("sealed_files", 0)),
            sealed_bytes=int(seal.get("sealed_bytes", 0)),
            is_open=seal.get("gsi1pk") == keys.OPEN_DATES,
        )

    def open_date(self, date_prefix: str) -> None:
        """Put the date on the open-dates index (idempotent, unconditional: reopening is always safe)."""
        self._ddb.update_item(
            TableName=self._table,
            Key=to_item({"pk": keys.counter_pk(date_prefix), "sk": keys.SEAL_SK}),
            UpdateExpression=(
                "SET gsi1pk = :open, gsi1sk = :d, date_prefix = :d, seq = if_not_exists(seq, :z), "
                "sealed_files = if_not_exists(sealed_files, :z), sealed_bytes = if_not_exists(sealed_bytes, :z) "
                "REMOVE closed_at"
            ),
            ExpressionAttributeValues=to_item({":open": keys.OPEN_DATES, ":d": date_prefix, ":z": 0}),
        )

    def close_date(self, date_prefix: str, sealed_files_seen: int, now: str) -> bool:
        """Take a date off the open-dates index; False if a seal happened since it was checked."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=to_item({"pk": keys.counter_pk(date_prefix), "sk": keys.SEAL_SK}),
                UpdateExpression="REMOVE gsi1pk, gsi1sk SET closed_at = :now",
                # sealed_files = :seen: nobody sealed this date between our check and this write.
                ConditionExpression="sealed_files = :seen",
                ExpressionAttributeValues=to_item({":seen": sealed_files_seen, ":now": now}),
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def open_dates(self, page_size: int = 100) -> Iterator[str]:
        for page in self._query_pages(keys.OPEN_DATES, page_size):
            for item in page:
                yield str(item["date_prefix"])

    # --- sealing --------------------------------------------------------------------------

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
        try:
            # attribute_not_exists(pk): manifest ids are deterministic per (date, seq), so of all
            # invocations racing for this batch exactly one creates the item and wins. The item
            # stays until the seal is finished (or abandoned empty): no lock released early.
            self._ddb.put_item(
                TableName=self._table, Item=to_item(item), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def abandon_seal(self, manifest_id: str, owner: str) -> bool:
        """Drop a seal that claimed nothing, so the same seq can be sealed later."""
        try:
            self._ddb.delete_item(
                TableName=self._table,
                Key=to_item({"pk": keys.manifest_pk(manifest_id), "sk": keys.MANIFEST_SK}),
                # owner = me AND still sealing: never delete a seal someone else finished or owns.
                ConditionExpression="#o = :o AND #s = :sealing",
                ExpressionAttributeNames={"#o": "owner", "#s": "status"},
                ExpressionAttributeValues=to_item({":o": owner, ":sealing": keys.MANIFEST_SEALING}),
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def pending_pages(self, date_prefix: str, shard: int, page_size: int) -> Iterator[list[FileRef]]:
        for page in self._query_pages(keys.pending_status_key(date_prefix, shard), page_size):
            yield [_file_ref(i) for i in page]

    def claim_file(self, file_id: str, manifest_id: str, now: str) -> FileRef | None:
        """pending → claimed by ``manifest_id``; None if someone else got there first."""
        try:
            response = self._ddb.update_item(
                TableName=self._table,
                Key=to_item({"pk": keys.file_pk(file_id), "sk": keys.FILE_SK}),
                UpdateExpression="SET #s = :claimed, gsi1pk = :ck, manifest_id = :m, claimed_at = :now",
                # status = pending: a file already claimed (by this or any other manifest),
                # converted or skipped is never re-assigned, so no file is in two live manifests.
                ConditionExpression="#s = :pending",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=to_item(
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
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return None
            raise
        return _file_ref(from_item(response["Attributes"]))

    def claimed_pages(self, manifest_id: str, page_size: int) -> Iterator[list[FileRef]]:
        for page in self._query_pages(keys.claimed_status_key(manifest_id), page_size):
            yield [_file_ref(i) for i in page]

    def mark_sealed(self, manifest_id: str, manifest_uri: str, file_count: int, total_bytes: int, now: str) -> bool:
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=to_item({"pk": keys.manifest_pk(manifest_id), "sk": keys.MANIFEST_SK}),
                UpdateExpression=(
                    "SET #s = :sealed, gsi1pk = :gk, manifest_uri = :u, file_count = :n, #b = :b, sealed_at = :now"
                ),
                # status = sealing: only a seal in progress becomes sealed; a manifest the
                # workflow already moved on (running, succeeded...) is never rolled back.
                ConditionExpression="#s = :sealing",
                ExpressionAttributeNames={"#s": "status", "#b": "bytes"},
                ExpressionAttributeValues=to_item(
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
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def advance_seal(self, date_prefix: str, seq: int, files: int, total_bytes: int) -> bool:
        """Move the date to batch ``seq + 1`` and add what batch ``seq`` sealed; False if done already."""
        condition = "attribute_not_exists(seq) OR seq = :seq" if seq == 0 else "seq = :seq"
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=to_item({"pk": keys.counter_pk(date_prefix), "sk": keys.SEAL_SK}),
                UpdateExpression="SET seq = :next, date_prefix = :d ADD sealed_files :f, sealed_bytes :b",
                # seq = :seq: the ADD happens once per batch even if the sealer and recover both
                # try to finish it; a second attempt finds seq already moved on and changes nothing.
                ConditionExpression=condition,
                ExpressionAttributeValues=to_item(
                    {":seq": seq, ":next": seq + 1, ":f": files, ":b": total_bytes, ":d": date_prefix}
                ),
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def mark_emitted(self, manifest_id: str, now: str) -> None:
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=to_item({"pk": keys.manifest_pk(manifest_id), "sk": keys.MANIFEST_SK}),
                UpdateExpression="SET emitted_at = :now",
                # attribute_exists(pk): a marker on an existing manifest, never a stub item.
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=to_item({":now": now}),
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise

    def get_manifest(self, manifest_id: str) -> dict[str, Any] | None:
        response = self._ddb.get_item(
            TableName=self._table,
            Key=to_item({"pk": keys.manifest_pk(manifest_id), "sk": keys.MANIFEST_SK}),
            ConsistentRead=True,
        )
        item = response.get("Item")
        return from_item(item) if item else None

    # --- helpers --------------------------------------------------------------------------

    def _query_pages(self, status_key: str, page_size: int) -> Iterator[list[dict[str, Any]]]:
        """Pages of the status index, oldest first, one page in memory at a time (docs/invariants.md #3)."""
        for items in raw_pages(
            self._ddb.get_paginator("query"),
            page_size,
            TableName=self._table,
            IndexName=keys.STATUS_INDEX,
            KeyConditionExpression="gsi1pk = :k",
            ExpressionAttributeValues={":k": {"S": status_key}},
        ):
            if items:
                yield [from_item(i) for i in items]
