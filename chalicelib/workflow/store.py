"""DynamoDB I/O of the workflow: MANIFEST and FILE items, through the key layout in chalicelib.keys.

Only I/O lives here; the decisions (may this run start, where does a failed file go) are made
by the callers. Every query pages with a Limit (invariant 3); file updates go out as
TransactWriteItems of up to 100 actions, never one call per file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib import keys
from chalicelib.backoff import sleep_before_retry
from chalicelib.paging import raw_pages
from chalicelib.workflow.errors import StaleRunError, TransientError

_SER = TypeSerializer()
_DES = TypeDeserializer()
PAGE_SIZE = 100
TRANSACT_MAX = 100


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _SER.serialize(v) for k, v in data.items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _DES.deserialize(v) for k, v in item.items()}


def _values(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _SER.serialize(v) for k, v in data.items()}


@dataclass(frozen=True)
class FileUpdate:
    """One FILE item to move out of ``claimed#<manifest_id>``: its new status key and attributes."""

    pk: str
    status: str
    status_key: str
    set_attrs: dict[str, Any]
    add_attempts: int = 0
    # The file goes back to pending: its date's SEAL item is reopened (put back on flush_stale's
    # open-dates list, what batching.reopen_date does) in the same transaction as the move.
    reopen_date: str = ""
    # ...and the file was in that date's sealed totals (its manifest advanced SEAL): it leaves
    # them again, so ``files - sealed_files`` keeps equalling what is really unsealed.
    unseal_bytes: int | None = None


class WorkflowStore:
    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table = table_name

    # --- MANIFEST ------------------------------------------------------------------------
    def get_manifest(self, manifest_id: str) -> dict[str, Any] | None:
        resp = self.client.get_item(
            TableName=self.table,
            Key=to_item({"pk": keys.manifest_pk(manifest_id), "sk": keys.MANIFEST_SK}),
            ConsistentRead=True,
        )
        return from_item(resp["Item"]) if "Item" in resp else None

    def start_run(self, manifest_id: str, execution_arn: str, now_iso: str, replay: bool) -> dict[str, Any] | None:
        """sealed -> running for this execution; returns the new item, or None when the
        manifest is not startable (a duplicate delivery)."""
        # The condition is the idempotency: only a `sealed` manifest starts (so two deliveries
        # of one ManifestReady race and exactly one wins); a replay may also restart a manifest
        # that succeeded once (its output is replaced, invariant 5), never a running one and never
        # a failed one whose files went back to pending (they belong to a newer manifest now).
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
        try:
            resp = self.client.update_item(
                TableName=self.table,
                Key=to_item({"pk": keys.manifest_pk(manifest_id), "sk": keys.MANIFEST_SK}),
                UpdateExpression=(
                    "SET #status = :running, gsi1pk = :gsi, execution_arn = :arn, started_at = :now ADD run_count :one"
                ),
                ConditionExpression=f"attribute_exists(pk) AND ({condition})",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_values(values),
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return from_item(resp["Attributes"])

    def end_run(self, manifest_id: str, execution_arn: str, status: str, attrs: dict[str, Any]) -> None:
        """running -> succeeded/failed, only while ``execution_arn`` still owns the manifest."""
        names = {"#status": "status"}
        sets = ["#status = :status", "gsi1pk = :gsi"]
        values: dict[str, Any] = {
            ":status": status,
            ":gsi": keys.manifest_status_key(status),
            ":running": keys.MANIFEST_RUNNING,
            ":arn": execution_arn,
        }
        for i, (name, value) in enumerate(sorted(attrs.items())):
            names[f"#a{i}"] = name
            values[f":a{i}"] = value
            sets.append(f"#a{i} = :a{i}")
        try:
            self.client.update_item(
                TableName=self.table,
                Key=to_item({"pk": keys.manifest_pk(manifest_id), "sk": keys.MANIFEST_SK}),
                UpdateExpression="SET " + ", ".join(sets),
                # Ownership check: a run that recover already compensated (or a newer replay) must
                # not overwrite the manifest's fate.
                ConditionExpression="#status = :running AND execution_arn = :arn",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_values(values),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StaleRunError(f"execution {execution_arn} no longer owns manifest {manifest_id}") from None
            raise

    def mark_finalizing(self, manifest_id: str, execution_arn: str, now_iso: str) -> None:
        """Record that this run's summary reconciled and its files start moving (compensate then
        rolls forward instead of undoing)."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=to_item({"pk": keys.manifest_pk(manifest_id), "sk": keys.MANIFEST_SK}),
                UpdateExpression="SET finalizing_since = if_not_exists(finalizing_since, :now)",
                # Only while this execution owns the running manifest (same check as end_run).
                ConditionExpression="#status = :running AND execution_arn = :arn",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues=_values(
                    {":now": now_iso, ":running": keys.MANIFEST_RUNNING, ":arn": execution_arn}
                ),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise StaleRunError(f"execution {execution_arn} no longer owns manifest {manifest_id}") from None
            raise

    def iter_manifests(self, status: str, page_size: int = PAGE_SIZE) -> Iterator[dict[str, Any]]:
        yield from self._query_index(keys.manifest_status_key(status), page_size)

    # --- FILE ----------------------------------------------------------------------------
    def iter_claimed_file_pages(self, manifest_id: str, page_size: int = PAGE_SIZE) -> Iterator[list[dict[str, Any]]]:
        """Pages of the FILE items a manifest claims (status key ``claimed#<manifest_id>``)."""
        for page in self._index_pages(keys.claimed_status_key(manifest_id), page_size):
            if page:
                yield page

    def scan_index_pages(
        self, page_size: int = 500, filter_prefix: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of the whole status index (operations: status, recover); bounded pages."""
        request: dict[str, Any] = {"TableName": self.table, "IndexName": keys.STATUS_INDEX}
        if filter_prefix:
            request["FilterExpression"] = "begins_with(gsi1pk, :p)"
            request["ExpressionAttributeValues"] = to_item({":p": filter_prefix})
        for items in raw_pages(self.client.get_paginator("scan"), page_size, **request):
            yield [from_item(i) for i in items]

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
        reopened = {u.reopen_date for u in updates if u.reopen_date}
        per_tx = max(1, TRANSACT_MAX - (1 if owner_execution_arn else 0) - len(reopened))
        moved = 0
        for start in range(0, len(updates), per_tx):
            chunk = list(updates[start : start + per_tx])
            moved += self._transact_chunk(manifest_id, chunk, owner_execution_arn, max_conflict_retries)
        return moved

    def _transact_chunk(
        self, manifest_id: str, chunk: list[FileUpdate], owner: str | None, max_conflict_retries: int
    ) -> int:
        attempt = 0
        while chunk:
            actions = [self._file_action(manifest_id, u) for u in chunk]
            actions.extend(self._reopen_actions(chunk))  # after the files, before the owner check (last)
            if owner:
                actions.append(self._owner_check(manifest_id, owner))
            try:
                self.client.transact_write_items(TransactItems=actions)
                return len(chunk)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
                if owner and len(reasons) == len(actions) and reasons[-1] == "ConditionalCheckFailed":
                    raise StaleRunError(f"execution {owner} no longer owns manifest {manifest_id}") from None
                failed = {i for i, code in enumerate(reasons[: len(chunk)]) if code == "ConditionalCheckFailed"}
                if failed:
                    # Those files left claimed#<id> under us (already moved by an earlier attempt of
                    # this step): nothing left to do for them; retry the rest.
                    chunk = [u for i, u in enumerate(chunk) if i not in failed]
                    continue
                attempt += 1
                if attempt > max_conflict_retries:
                    raise TransientError(f"transaction conflicts on manifest {manifest_id}: {reasons}") from None
                sleep_before_retry(attempt)
        return 0

    def _file_action(self, manifest_id: str, u: FileUpdate) -> dict[str, Any]:
        names = {"#status": "status"}
        values: dict[str, Any] = {
            ":status": u.status,
            ":gsi": u.status_key,
            ":claimed": keys.claimed_status_key(manifest_id),
        }
        sets = ["#status = :status", "gsi1pk = :gsi"]
        for i, (name, value) in enumerate(sorted(u.set_attrs.items())):
            names[f"#a{i}"] = name
            values[f":a{i}"] = value
            sets.append(f"#a{i} = :a{i}")
        expr = "SET " + ", ".join(sets)
        if u.add_attempts:
            values[":inc"] = u.add_attempts
            expr += " ADD attempts :inc"
        return {
            "Update": {
                "TableName": self.table,
                "Key": to_item({"pk": u.pk, "sk": keys.FILE_SK}),
                "UpdateExpression": expr,
                # The file must still be claimed by this manifest: a second Finalize/Compensate of
                # the same run finds it moved and skips it (exactly-once status transition).
                "ConditionExpression": "gsi1pk = :claimed",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": _values(values),
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
                    "TableName": self.table,
                    "Key": to_item({"pk": keys.counter_pk(date), "sk": keys.SEAL_SK}),
                    # No condition: reopening is always safe, and the ADD of a negative count
                    # happens exactly once because it commits or fails with the conditional file
                    # moves of this same transaction (a retry finds those files moved already).
                    "UpdateExpression": (
                        "SET gsi1pk = :open, gsi1sk = :d, date_prefix = :d, seq = if_not_exists(seq, :z) "
                        "REMOVE closed_at ADD sealed_files :f, sealed_bytes :b"
                    ),
                    "ExpressionAttributeValues": _values(
                        {":open": keys.OPEN_DATES, ":d": date, ":z": 0, ":f": -files, ":b": -nbytes}
                    ),
                }
            }
            for date, (files, nbytes) in sorted(per_date.items())
        ]

    def _owner_check(self, manifest_id: str, execution_arn: str) -> dict[str, Any]:
        return {
            "ConditionCheck": {
                "TableName": self.table,
                "Key": to_item({"pk": keys.manifest_pk(manifest_id), "sk": keys.MANIFEST_SK}),
                # Files move only while this execution owns the running manifest.
                "ConditionExpression": "#status = :running AND execution_arn = :arn",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": to_item({":running": keys.MANIFEST_RUNNING, ":arn": execution_arn}),
            }
        }

    def _query_index(self, pk: str, page_size: int) -> Iterator[dict[str, Any]]:
        for page in self._index_pages(pk, page_size):
            yield from page

    def _index_pages(self, pk: str, page_size: int) -> Iterator[list[dict[str, Any]]]:
        """Pages of the status index under one key, decoded; empty pages included."""
        for items in raw_pages(
            self.client.get_paginator("query"),
            page_size,
            TableName=self.table,
            IndexName=keys.STATUS_INDEX,
            KeyConditionExpression="gsi1pk = :pk",
            ExpressionAttributeValues=to_item({":pk": pk}),
        ):
            yield [from_item(i) for i in items]
