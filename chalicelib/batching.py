"""count_arrivals, seal and flush: turn tracked files into sealed manifests and ManifestReady.

Counting: each new pending FILE is added at most once to its own date/shard counter (ADD only,
after a conditional ``counted`` flag on the FILE), so redelivered stream records never
double-count and no single item takes every arrival. Counts only trigger seals; what a seal
takes is decided by the files' own status, so a (rare) lost count delays, never loses, a file.

Sealing: the decision reads all shard counters of the date plus its SEAL item in one batch
get; ``unsealed = sum(counters) - sealed``. A would-be sealer proposes batch ``seq`` (from
SEAL) and wins it by creating MANIFEST ``<date>-<seq>`` with a conditional put; exactly one
invocation wins a batch and the item stays until the work is done. The winner claims up to
BATCH_MAX_FILES / BATCH_MAX_BYTES pending files oldest-first across shards (pending → claimed,
conditional per file), writes the manifest JSON, marks the item ``sealed``, advances SEAL
(``seq = :seq``, so its ADD happens once), then emits ManifestReady. A loser gives up: the
winner re-reads the totals after advancing, which include every count the loser saw.

Circuit breaker: every would-be seal (a full batch here, a stale one in flush_stale) first asks
``SealGate``, which reads the breaker (chalicelib.workflow.breaker) once per invocation. While it
is open nothing is sealed, yet files are still tracked, counted and left pending (nothing is
lost); after the cool-down one invocation wins the half-open probe and seals exactly one
manifest, whose Finalize closes the breaker (or whose Compensate opens it again). resume_seal is
not gated: it finishes a batch that was already won, it does not start a new one.

Sealing by age (SEAL_MAX_AGE_SECONDS): a date's pending files are also sealed, on an arrival,
once the oldest has waited that long, so a row is queryable about a minute after its file lands
whatever the rate. Knowing "the oldest pending file's age" costs nothing on most arrivals: each
shard counter carries a ``pending_since`` hint (the arrival of the oldest file counted since the
hint was refreshed; set by the count's own write with ``if_not_exists``), and the totals' batch
get returns it. Only when the hint says a file may be due does the check read the truth: one
``Limit 1`` query per shard of the pending index (the head of each shard). A head old enough
seals; otherwise the heads refresh the hints (a write conditional on the shard's count not having
moved, see TrackingTable.set_pending_since), so a stale hint costs one check, not one per arrival.
A hint can only miss a file the index had not shown yet at a refresh, or one compensate returned
to pending (never counted again): flush_stale seals those by their own arrival time.

A crash after winning leaves a ``sealing``/``sealed`` item; ``resume_seal`` (called by
recover) completes it from the files already claimed, and ``emit_manifest_ready`` re-emits.
"""

from __future__ import annotations

import heapq
import math
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import aws, keys
from chalicelib.event_publisher import EventBridgePublisher, EventPublisher, publish_manifest_ready
from chalicelib.file_store import DateTotals, FileRef, FileStore, batch_is_full
from chalicelib.manifest import Manifest, ManifestFile, manifest_object_key
from chalicelib.observability import (
    CIRCUIT_BREAKER_OPEN,
    EMIT_FAILURES,
    FILES_COUNTED,
    FILES_PER_MANIFEST,
    MANIFESTS_SEALED,
    OLDEST_PENDING_FILE_AGE,
    RECORDS_REJECTED,
    SEAL_LATENCY,
    SEALS_INCOMPLETE,
    SEALS_PAUSED,
    count,
    logger,
    seconds,
    tracer,
)
from chalicelib.settings import Settings, get_settings
from chalicelib.timeutil import format_time, parse_time
from chalicelib.tracking_table import TrackingTable, from_item
from chalicelib.transient import is_transient
from chalicelib.workflow import breaker as circuit

MAX_SEALS_PER_DATE = 20  # per invocation: bounds the handler's run time; the next one continues
SEAL_LEASE_SECONDS = 900  # >= the longest Lambda timeout: a live sealer never outlives it


class SealBusyError(RuntimeError):
    """resume_seal was asked to finish a seal whose owner may still be working on it."""


class SealBreaker(Protocol):
    def permit(self, now: float) -> circuit.SealPermit: ...


class TableSealBreaker:
    """The circuit breaker item in the tracking table (the one compensate and finalize move)."""

    def __init__(self, table: TrackingTable, cfg: circuit.BreakerConfig) -> None:
        self._table = table
        self._cfg = cfg

    def permit(self, now: float) -> str:
        return circuit.seal_permit(self._table, now, self._cfg)

    def is_open(self) -> bool:
        """Open or half-open (a probe is out); a plain read that never takes the probe."""
        return circuit.read_state(self._table).state != circuit.CLOSED


class SealGate:
    """The breaker's verdict for one invocation, read lazily at its first would-be seal.

    Closed: every seal goes. Probe: this invocation won the half-open probe, so it seals exactly
    one manifest (an attempt that sealed nothing, e.g. ``empty``, does not use it up). Denied:
    nothing is sealed. One read per invocation keeps the breaker off the per-seal path; a breaker
    that opens mid-invocation is seen by the next one."""

    def __init__(self, breaker: SealBreaker | None, now: float) -> None:
        self._breaker = breaker
        self._now = now
        self._permit: str | None = None
        self._probe_used = False

    def allow(self) -> bool:
        if self._permit is None:
            self._permit = circuit.SealPermit.SEAL if self._breaker is None else self._breaker.permit(self._now)
            if self._permit != circuit.SealPermit.SEAL:
                logger.warning("circuit breaker not closed", extra={"permit": self._permit})
        if self._permit == circuit.SealPermit.SEAL:
            return True
        return self._permit == circuit.SealPermit.PROBE and not self._probe_used

    def record(self, outcome: SealOutcome) -> None:
        if self._permit == circuit.SealPermit.PROBE and outcome.status in ("sealed", "incomplete"):
            self._probe_used = True  # incomplete too: recover finishes that manifest, it is the probe

    def paused(self, date_prefix: str, seq: int) -> SealOutcome:
        count(SEALS_PAUSED)
        logger.warning("seal paused by the circuit breaker", extra={"date_prefix": date_prefix})
        return SealOutcome("paused", keys.manifest_id_for(date_prefix, seq))


@dataclass
class Deps:
    """Collaborators of the batching services; anything not given is built from settings."""

    settings: Settings
    store: FileStore
    s3: Any
    publisher: EventPublisher
    breaker: SealBreaker | None = None  # None: no breaker (every seal allowed)

    @classmethod
    def build(
        cls,
        settings: Settings | None = None,
        store: FileStore | None = None,
        s3: Any = None,
        publisher: EventPublisher | None = None,
        breaker: SealBreaker | None = None,
    ) -> Deps:
        settings = settings or get_settings()
        cfg = circuit.BreakerConfig(
            settings.breaker_threshold, settings.breaker_window_seconds, settings.breaker_cooldown_seconds
        )
        table = TrackingTable(aws.client("dynamodb"), settings.table_name)
        return cls(
            settings=settings,
            store=store or table,
            s3=s3 or aws.client("s3"),
            publisher=publisher or EventBridgePublisher(aws.client("events"), settings.event_bus_name),
            breaker=breaker or TableSealBreaker(table, cfg),
        )


@dataclass(frozen=True)
class ArrivedFile:
    file_id: str
    date_prefix: str
    shard: int
    size: int
    arrived_at: str = ""  # the tracker's stamp (ISO-8601 UTC); "" in images that lack it


@dataclass(frozen=True)
class SealOutcome:
    status: str  # sealed | lost | empty | incomplete | paused (circuit breaker open: nothing claimed)
    manifest_id: str
    file_count: int = 0
    bytes: int = 0


@dataclass
class CountResult:
    counted: int = 0
    ignored: int = 0
    rejected: int = 0
    seals: list[SealOutcome] = field(default_factory=list)


# --- count_arrivals ------------------------------------------------------------------------


def arrived_file(event_name: str, image: Mapping[str, Any] | None) -> ArrivedFile | None:
    """The new pending FILE a stream record announces, or None for anything else (pure).

    Only INSERTs count: MODIFY records (counted flag, claims, conversion) and REMOVEs (TTL)
    must never add to a counter. Raises ValueError on a FILE image that lacks its fields.
    """
    if event_name != "INSERT" or not image:
        return None
    if image.get("sk") != keys.FILE_SK or image.get("status") != keys.PENDING:
        return None
    try:
        return ArrivedFile(
            file_id=str(image["file_id"]),
            date_prefix=str(image["date_prefix"]),
            shard=int(image["shard"]),
            size=int(image["size"]),
            arrived_at=str(image.get("arrived_at") or ""),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"FILE image without {exc}") from None


@tracer.capture_method(capture_response=False)
def count_arrivals(
    records: Iterable[tuple[str, Mapping[str, Any] | None]], deps: Deps | None = None, now: datetime | None = None
) -> CountResult:
    """Count new FILEs (records: event name + NewImage in DynamoDB JSON), then seal full batches.

    Permanent errors never raise (a raising record blocks its stream shard for 24 h); a file
    whose count is lost is still pending and flush_stale seals it. Transient errors raise so the
    stream retries, which the ``counted`` flag makes harmless.
    """
    deps = deps or Deps.build()
    result = CountResult()
    groups: dict[tuple[str, int], dict[str, int]] = defaultdict(dict)
    arrivals: dict[tuple[str, int], list[str]] = defaultdict(list)
    for event_name, raw_image in records:
        try:
            arrived = arrived_file(event_name, from_item(raw_image) if raw_image else None)
        except (ValueError, TypeError, KeyError) as exc:  # TypeDeserializer raises TypeError on bad JSON
            result.rejected += 1
            logger.error("rejected stream record", extra={"reason": str(exc)})
            continue
        if arrived is None:
            result.ignored += 1
            continue
        groups[(arrived.date_prefix, arrived.shard)][arrived.file_id] = arrived.size
        if arrived.arrived_at:
            arrivals[(arrived.date_prefix, arrived.shard)].append(arrived.arrived_at)
    for (date_prefix, shard), files in sorted(groups.items()):
        oldest = min(arrivals.get((date_prefix, shard), []), default=None)
        try:
            result.counted += deps.store.count_files(date_prefix, shard, list(files.items()), oldest)
        except ClientError as exc:
            if is_transient(exc):
                raise
            result.rejected += len(files)
            logger.error("count failed permanently", extra={"date_prefix": date_prefix, "error": str(exc)})
    count(FILES_COUNTED, result.counted)
    count(RECORDS_REJECTED, result.rejected)
    now = now or datetime.now(UTC)
    gate = SealGate(deps.breaker, now.timestamp())
    for date_prefix in sorted({d for d, _ in groups}):
        try:
            result.seals.extend(seal_full_batches(date_prefix, deps, gate, now))
        except ClientError as exc:
            if is_transient(exc):
                raise  # retried with the batch; the counts are already in and will not be added again
            # e.g. AccessDenied: raising would block the stream shard; the counts are durable
            # and flush_stale seals these files by age once the cause is fixed.
            count(SEALS_INCOMPLETE)
            logger.error("seal check failed permanently", extra={"date_prefix": date_prefix, "error": str(exc)})
    return result


def seal_full_batches(
    date_prefix: str, deps: Deps, gate: SealGate | None = None, now: datetime | None = None
) -> list[SealOutcome]:
    """Seal batches of a date while its unsealed total is at a threshold, or while its oldest
    pending file has waited SEAL_MAX_AGE_SECONDS (module docstring); stop at a loss."""
    outcomes: list[SealOutcome] = []
    s = deps.settings
    now = now or datetime.now(UTC)
    gate = gate or SealGate(deps.breaker, now.timestamp())
    for _ in range(MAX_SEALS_PER_DATE):
        totals = deps.store.read_totals(date_prefix, s.shard_count)
        if not totals.is_open:
            deps.store.open_date(date_prefix)  # flush_stale finds the date from now on
        if batch_is_full(totals, s.batch_max_files, s.batch_max_bytes):
            reason = "full"
        elif age_may_be_due(totals, now, s.seal_max_age_seconds) and oldest_is_due(date_prefix, totals, deps, now):
            reason = "age"
        else:
            break
        if not gate.allow():
            # Breaker open: the files stay pending and counted; flush_stale or the next arrival
            # seals them once it closes (or wins the probe).
            outcomes.append(gate.paused(date_prefix, totals.seq))
            break
        outcome = seal_next(date_prefix, totals, deps, reason=reason, now=now)
        gate.record(outcome)
        outcomes.append(outcome)
        if outcome.status != "sealed":
            break  # lost: the winner re-checks after it advances; empty/incomplete: nothing more to do now
    return outcomes


def age_may_be_due(totals: DateTotals, now: datetime, max_age_seconds: int) -> bool:
    """The hint's verdict (pure, no read): may a pending file of this date have waited
    ``max_age_seconds``? False means surely not (or the rule is off: 0)."""
    since = totals.pending_since
    return max_age_seconds > 0 and since is not None and now - parse_time(since) >= timedelta(seconds=max_age_seconds)


def oldest_is_due(date_prefix: str, totals: DateTotals, deps: Deps, now: datetime) -> bool:
    """The truth behind a hint that says due: the head of each shard's pending index (Limit 1
    each). Not due: the heads become the hints (conditional on each shard's count, so a file
    counted meanwhile keeps the older hint), so the next arrival does not look again."""
    heads = pending_heads(date_prefix, deps)
    oldest = min(heads.values(), key=lambda f: f.sort_key, default=None)
    max_age = timedelta(seconds=deps.settings.seal_max_age_seconds)
    if oldest is not None and now - parse_time(oldest.arrived_at) >= max_age:
        return True
    for counter in totals.shards:
        head = heads.get(counter.shard)
        value = head.arrived_at if head is not None else None
        if value != counter.pending_since:
            deps.store.set_pending_since(date_prefix, counter.shard, counter.files, value)
    return False


def reopen_date(date_prefix: str, deps: Deps | None = None) -> None:
    """Put a date back on flush_stale's list (for anything that returns files to pending)."""
    (deps or Deps.build()).store.open_date(date_prefix)


# --- sealing -------------------------------------------------------------------------------


@tracer.capture_method(capture_response=False)
def seal_next(
    date_prefix: str, totals: DateTotals, deps: Deps, reason: str, now: datetime | None = None
) -> SealOutcome:
    """Try to win batch ``totals.seq`` of a date and seal it. Never raises after winning: a
    half-done seal is durable state (the MANIFEST item) that resume_seal completes."""
    started = time.monotonic()
    manifest_id = keys.manifest_id_for(date_prefix, totals.seq)
    owner = uuid.uuid4().hex
    stamp = format_time(now or datetime.now(UTC))
    if not deps.store.begin_seal(manifest_id, date_prefix, totals.seq, owner, stamp):
        return SealOutcome("lost", manifest_id)
    try:
        files = claim_batch(date_prefix, manifest_id, deps, stamp)
        if not files:
            deps.store.abandon_seal(manifest_id, owner)
            return SealOutcome("empty", manifest_id)
        outcome = finish_seal(manifest_id, date_prefix, totals.seq, files, deps, stamp)
    except (ClientError, BotoCoreError) as exc:
        count(SEALS_INCOMPLETE)
        logger.error("seal left for recover", extra={"manifest_id": manifest_id, "error": str(exc)})
        return SealOutcome("incomplete", manifest_id)
    count(MANIFESTS_SEALED)
    count(FILES_PER_MANIFEST, outcome.file_count)
    seconds(SEAL_LATENCY, time.monotonic() - started)
    logger.info(
        "manifest sealed",
        extra={"manifest_id": manifest_id, "files": outcome.file_count, "bytes": outcome.bytes, "reason": reason},
    )
    return outcome


def shard_page_size(max_files: int, shard_count: int) -> int:
    """Query Limit per shard: about this shard's share of a batch, plus slack for skew."""
    return max(1, min(max_files, math.ceil(max_files / shard_count) + 4))


def _pending_stream(deps: Deps, date_prefix: str, shard: int, page_size: int) -> Iterator[FileRef]:
    for page in deps.store.pending_pages(date_prefix, shard, page_size):
        yield from page


def claim_batch(date_prefix: str, manifest_id: str, deps: Deps, stamp: str) -> list[FileRef]:
    """Claim up to a batch of pending files of a date, oldest first across all shards.

    Scatter-gather as a k-way merge over per-shard index queries: each shard's query is read
    lazily one page (``Limit``) at a time, so memory is bounded by shard_count pages however
    many files are pending. A file another sealer claimed first fails its condition and is skipped.
    """
    s = deps.settings
    page_size = shard_page_size(s.batch_max_files, s.shard_count)
    streams = [_pending_stream(deps, date_prefix, shard, page_size) for shard in range(s.shard_count)]
    heap: list[tuple[str, int, FileRef]] = []
    for index, stream in enumerate(streams):
        first = next(stream, None)
        if first is not None:
            heap.append((first.sort_key, index, first))
    heapq.heapify(heap)
    claimed: list[FileRef] = []
    uris: set[str] = set()
    total = 0
    cap = s.batch_max_files  # narrowed by the batch_limit of any file claimed (see FileRef)
    while heap and len(claimed) < cap:
        _, index, candidate = heapq.heappop(heap)
        if claimed and total + candidate.size > s.batch_max_bytes:
            break  # byte budget reached; a single oversized file still makes a batch of one
        # A file narrowed after a whole-run failure joins only a batch of at most batch_limit
        # files; when this one is already fuller it stays pending for the next seal (oldest
        # first, so it leads that batch). The first file of a batch always fits.
        narrowed_out = candidate.batch_limit is not None and len(claimed) + 1 > candidate.batch_limit
        skip = candidate.uri in uris or narrowed_out
        got = None if skip else deps.store.claim_file(candidate.file_id, manifest_id, stamp)
        if got is not None:
            claimed.append(got)
            uris.add(got.uri)
            total += got.size
            if got.batch_limit is not None:
                cap = min(cap, got.batch_limit)
        if len(claimed) >= cap:
            break  # do not fetch a page we will not use
        following = next(streams[index], None)
        if following is not None:
            heapq.heappush(heap, (following.sort_key, index, following))
    return claimed


def build_manifest(manifest_id: str, date_prefix: str, files: list[FileRef], stamp: str, seq: int) -> Manifest:
    ordered = sorted(files, key=lambda f: (f.arrived_at, f.file_id))
    return Manifest(
        manifest_id=manifest_id,
        date_prefix=date_prefix,
        files=tuple(ManifestFile(uri=f.uri, size=f.size, etag=f.etag, version_id=f.version_id) for f in ordered),
        created_at=stamp,
        extra={"seq": seq},
    ).validate()


def finish_seal(
    manifest_id: str, date_prefix: str, seq: int, files: list[FileRef], deps: Deps, stamp: str
) -> SealOutcome:
    """Write the manifest, mark it sealed, advance SEAL, then emit (docs/invariants.md #8: recorded first)."""
    s = deps.settings
    manifest = build_manifest(manifest_id, date_prefix, files, stamp, seq)
    object_key = manifest_object_key(s.manifest_prefix, date_prefix, manifest_id)
    deps.s3.put_object(
        Bucket=s.manifest_bucket, Key=object_key, Body=manifest.to_json().encode(), ContentType="application/json"
    )
    uri = f"s3://{s.manifest_bucket}/{object_key}"
    deps.store.mark_sealed(manifest_id, uri, len(manifest.files), manifest.total_bytes, stamp)
    deps.store.advance_seal(date_prefix, seq, len(manifest.files), manifest.total_bytes)
    item = {
        "manifest_id": manifest_id,
        "manifest_uri": uri,
        "date_prefix": date_prefix,
        "file_count": len(manifest.files),
        "bytes": manifest.total_bytes,
    }
    emit_manifest_ready(item, deps)
    return SealOutcome("sealed", manifest_id, len(manifest.files), manifest.total_bytes)


def emit_manifest_ready(item: Mapping[str, Any], deps: Deps | None = None) -> bool:
    """PutEvents ManifestReady for a sealed MANIFEST item; False (logged, counted) if it failed.

    A failure leaves the manifest ``sealed`` without ``emitted_at``: recover re-emits it.
    Consumers are idempotent per manifest id, so emitting twice is safe."""
    deps = deps or Deps.build()
    try:
        publish_manifest_ready(deps.publisher, [item])
        deps.store.mark_emitted(str(item["manifest_id"]), format_time(datetime.now(UTC)))
    except (ClientError, BotoCoreError, RuntimeError) as exc:
        count(EMIT_FAILURES)
        logger.error("ManifestReady not emitted", extra={"manifest_id": item.get("manifest_id"), "error": str(exc)})
        return False
    return True


@tracer.capture_method(capture_response=False)
def resume_seal(manifest_id: str, deps: Deps | None = None, now: datetime | None = None) -> SealOutcome | None:
    """Finish a seal its owner left half done (for recover). Idempotent.

    ``sealing`` older than the lease: the files it claimed are the batch (Query
    ``claimed#<id>``); none → the item is dropped so the seq can be sealed again.
    ``sealed``: SEAL is advanced if it was not, and ManifestReady is (re-)emitted.
    Later statuses belong to the workflow: nothing to do. Raises SealBusyError inside the lease.
    """
    deps = deps or Deps.build()
    now = now or datetime.now(UTC)
    item = deps.store.get_manifest(manifest_id)
    if item is None:
        return None
    status = item.get("status")
    date_prefix, seq = str(item["date_prefix"]), int(item["seq"])
    if status == keys.MANIFEST_SEALING:
        created = parse_time(str(item["created_at"]))
        if now - created < timedelta(seconds=SEAL_LEASE_SECONDS):
            raise SealBusyError(f"{manifest_id} is being sealed since {item['created_at']}; lease not expired")
        page_size = max(1, deps.settings.batch_max_files)
        files = [f for page in deps.store.claimed_pages(manifest_id, page_size) for f in page]
        if not files:
            deps.store.abandon_seal(manifest_id, str(item["owner"]))
            return SealOutcome("empty", manifest_id)
        return finish_seal(manifest_id, date_prefix, seq, files, deps, format_time(now))
    if status == keys.MANIFEST_SEALED:
        deps.store.advance_seal(date_prefix, seq, int(item["file_count"]), int(item["bytes"]))
        emit_manifest_ready(item, deps)
        return SealOutcome("sealed", manifest_id, int(item["file_count"]), int(item["bytes"]))
    return None


# --- flush_stale ---------------------------------------------------------------------------


def pending_heads(date_prefix: str, deps: Deps) -> dict[int, FileRef]:
    """The oldest pending file of each shard of a date that has one: one Limit-1 query per shard."""
    heads: dict[int, FileRef] = {}
    for shard in range(deps.settings.shard_count):
        page = next(iter(deps.store.pending_pages(date_prefix, shard, 1)), [])
        if page:
            heads[shard] = page[0]
    return heads


def oldest_pending(date_prefix: str, deps: Deps) -> FileRef | None:
    """The oldest pending file of a date: the first item of each shard's index (Limit 1)."""
    return min(pending_heads(date_prefix, deps).values(), key=lambda f: f.sort_key, default=None)


@tracer.capture_method(capture_response=False)
def flush_stale(deps: Deps | None = None, now: datetime | None = None) -> list[SealOutcome]:
    """Seal partial batches that waited BATCH_MAX_WAIT_SECONDS, and everything of past dates.

    Also publishes the gauges the alarms watch: OldestPendingFileAge (what is still pending after
    this run, from the Limit-1 reads the loop makes anyway) and CircuitBreakerOpen (one read)."""
    deps = deps or Deps.build()
    now = now or datetime.now(UTC)
    today = now.astimezone(UTC).date().isoformat()
    max_wait = timedelta(seconds=deps.settings.batch_max_wait_seconds)
    outcomes: list[SealOutcome] = []
    oldest_age = 0.0
    gate = SealGate(deps.breaker, now.timestamp())
    for date_prefix in list(deps.store.open_dates()):
        past = date_prefix < today
        oldest = oldest_pending(date_prefix, deps)
        for _ in range(MAX_SEALS_PER_DATE):
            if oldest is None or (not past and now - parse_time(oldest.arrived_at) < max_wait):
                break
            totals = deps.store.read_totals(date_prefix, deps.settings.shard_count)
            if not gate.allow():
                outcomes.append(gate.paused(date_prefix, totals.seq))  # the date stays open: nothing is closed
                break
            outcome = seal_next(date_prefix, totals, deps, reason="end_of_day" if past else "stale", now=now)
            gate.record(outcome)
            outcomes.append(outcome)
            if outcome.status not in ("sealed", "lost"):
                break
            oldest = oldest_pending(date_prefix, deps)
        if oldest is not None:
            oldest_age = max(oldest_age, (now - parse_time(oldest.arrived_at)).total_seconds())
        if past and oldest is None:
            close_if_drained(date_prefix, deps, now)
    seconds(OLDEST_PENDING_FILE_AGE, oldest_age)
    publish_breaker_state(deps.breaker)
    return outcomes


def publish_breaker_state(breaker: SealBreaker | None) -> None:
    """CircuitBreakerOpen: 1 while open or half-open, else 0 (no breaker: every seal is allowed).

    A breaker that cannot tell its state (a test double with ``permit`` only) or fails to be read
    publishes nothing; the error is logged, and the gate's own read in the next run fails too."""
    if breaker is None:
        count(CIRCUIT_BREAKER_OPEN, 0)
        return
    is_open = getattr(breaker, "is_open", None)
    if is_open is None:
        return
    try:
        value = 1 if is_open() else 0
    except (ClientError, BotoCoreError) as exc:
        logger.error("circuit breaker state not read", extra={"error": str(exc)})
        return
    count(CIRCUIT_BREAKER_OPEN, value)


def close_if_drained(date_prefix: str, deps: Deps, now: datetime) -> bool:
    """Take a past date off the open list once every counted file is sealed and none is pending.

    The close is conditional on sealed_files not having moved, and re-checked afterwards: a
    file counted concurrently shows up in the strongly consistent counters, and reopens it."""
    totals = deps.store.read_totals(date_prefix, deps.settings.shard_count)
    if totals.unsealed_files:
        return False
    if not deps.store.close_date(date_prefix, totals.sealed_files, format_time(now)):
        return False
    after = deps.store.read_totals(date_prefix, deps.settings.shard_count)
    if after.unsealed_files or oldest_pending(date_prefix, deps) is not None:
        deps.store.open_date(date_prefix)
        return False
    return True
