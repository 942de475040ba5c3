"""Scenario inputs and the invariant check run after every fault-injection scenario.

The check is independent of the pipeline's bookkeeping where it can be: the expected outcome of
every input line comes from a strict reading of the input files (``glue.lines``), and the
observed one from the Parquet rows and quarantine records on disk (their provenance columns),
so a line that went missing, or was written twice, is named whatever the run summaries say.
"""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from chalicelib import keys
from chalicelib.workflow import paths
from glue.lines import decompress, parse_lines
from ndjson_parquet.local.dataset import LocalDataset
from ndjson_parquet.local.faults import START_FAILURE, FaultPlan
from ndjson_parquet.local.runtime import LocalPipeline, RunOptions, read_state

BAD_LINES = (b"{not json", b"[1, 2]", b"'single'", b'{"a": 1} trailing', b"42", b'{"id": NaN}')


def write_scenario_input(folder: Path, seed: int) -> None:
    """3-6 small files (plain and .gz), each a few valid lines of one schema, some invalid lines
    and blanks, so every line has exactly one right outcome: a row or a quarantine record."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(rng.randint(3, 6)):
        lines: list[bytes] = []
        for i in range(rng.randint(2, 8)):
            roll = rng.random()
            if roll < 0.15:
                lines.append(rng.choice(BAD_LINES))
            elif roll < 0.2:
                lines.append(b"   ")
            else:
                lines.append(json.dumps({"id": i, "file": n, "v": rng.random(), "tag": f"t{i}"}).encode())
        body = b"\n".join(lines) + b"\n"
        name = f"dt=2026-01-0{1 + n % 2}/part-{n:02d}.ndjson"
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if rng.random() < 0.3:
            path.with_suffix(".ndjson.gz").write_bytes(gzip.compress(body))
        else:
            path.write_bytes(body)


def scenario_options(tmp: Path, batch_max_files: int, recover_idle_seconds: float, max_recovers: int) -> RunOptions:
    """A small local run over ``tmp/in`` into ``tmp/out``: two shards, and a named failure after
    90 s without any progress."""
    return RunOptions(
        input_dir=tmp / "in",
        output_dir=tmp / "out" / "parquet",
        quarantine_dir=tmp / "out" / "quarantine",
        batch_max_files=batch_max_files,
        shards=2,
        idle_timeout_seconds=90,
        recover_idle_seconds=recover_idle_seconds,
        max_recovers=max_recovers,
    )


@dataclass(frozen=True)
class Expected:
    valid: frozenset[int]
    bad: frozenset[int]
    blank: int
    lines: int
    set_aside: bool = False  # the whole file becomes one quarantine record (glue/isolation.py)
    killer: bool = False  # its runs die as a whole: quarantined after MAX_ATTEMPTS alone, no output


SET_ASIDE = Expected(frozenset(), frozenset({1}), 0, 1, set_aside=True)  # one unit, one quarantine record at line 1


KILLER = Expected(frozenset(), frozenset(), 0, 0, killer=True)


def expected_outcome(path: Path, poison: bool = False, killer: bool = False) -> Expected:
    """What a strict reading of the input says each line becomes; a file that cannot be read
    (a corrupt .gz) or is poison (its conversion fails on purpose) is set aside whole; a killer
    (its worker dies) leaves nothing and is quarantined."""
    if killer:
        return KILLER
    if poison:
        return SET_ASIDE
    try:
        data = decompress(path.read_bytes(), path.name)
    except ValueError:
        return SET_ASIDE
    parsed = parse_lines(data)
    return Expected(
        frozenset(parsed.valid_line_numbers),
        frozenset(q.line_number for q in parsed.quarantined),
        parsed.blank,
        parsed.lines,
    )


def _queue_depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def check_invariants(
    run: LocalPipeline,
    plan: FaultPlan | None = None,
    poison_messages: int = 0,
    poison_files: frozenset[str] = frozenset(),
    killer_files: frozenset[str] = frozenset(),
    max_attempts: int = 3,
) -> list[str]:
    """Every violated invariant, as a sentence; empty when the run kept every promise.

    ``poison_files``: uris whose conversion fails deterministically on purpose; they, and only
    they (with corrupt .gz inputs), must end ``quarantined`` with one record each, their
    neighbours converted. ``killer_files``: uris whose every run dies as a whole (the worker is
    killed); narrowing must leave them alone in their last manifests, quarantined after exactly
    ``max_attempts`` failures of their own, while every neighbour is converted."""
    violations = [
        f"run: {p}"
        for p in run.report.problems
        if not any(p.startswith(f"{uri} ended {keys.QUARANTINED}") for uri in killer_files)
    ]
    outputs = run.outputs

    # No file pending or claimed, no manifest left open; quarantined only what must be set aside.
    state = read_state(boto3.client("dynamodb"), outputs["TableName"])
    for status, n in state.files_by_status.items():
        if status not in (keys.CONVERTED, keys.SKIPPED, keys.QUARANTINED):
            violations.append(f"{n} file(s) ended {status}")
    for item in state.file_items:
        uri = f"s3://{item['bucket']}/{item['key']}"
        source = run.uploaded.get(uri)
        want = expected_outcome(source.path, uri in poison_files, uri in killer_files) if source else None
        must = want is not None and (want.set_aside or want.killer)
        if want is not None and want.killer and int(item.get("attempts") or 0) != max_attempts:
            violations.append(f"{uri} (killer) ended with {item.get('attempts')} attempts, not {max_attempts}")
        if (item.get("status") == keys.QUARANTINED) != must:
            violations.append(
                f"{uri} ended {item.get('status')}"
                + (" but must be set aside" if must else " but it is not poison: a neighbour paid for another file")
            )
        elif want is not None and want.set_aside and not str(item.get("quarantine_reason") or ""):
            violations.append(f"{uri} is quarantined without a reason")
    # Narrowing: a file quarantined by MAX_ATTEMPTS failed on its own (its last manifest held it alone).
    file_counts = {str(m["manifest_id"]): int(m.get("file_count") or 0) for m in state.manifest_items}
    for item in state.file_items:
        last = str(item.get("failed_manifest_id") or "")
        alone = file_counts.get(last) == 1
        if item.get("status") == keys.QUARANTINED and not item.get("quarantine_reason") and not alone:
            violations.append(
                f"s3://{item['bucket']}/{item['key']} quarantined after manifest {last} of "
                f"{file_counts.get(last)} files: only a file failing alone may reach MAX_ATTEMPTS"
            )
    for status, n in state.manifests_by_status.items():
        if status not in (keys.MANIFEST_SUCCEEDED, keys.MANIFEST_FAILED):
            violations.append(f"{n} manifest(s) ended {status}")
    succeeded = {m["manifest_id"] for m in state.manifest_items if m.get("status") == keys.MANIFEST_SUCCEEDED}

    # Every valid line exactly one row, every bad line exactly one quarantine record, and no
    # output at all from a manifest that did not succeed (a failed run's leftovers are duplicates).
    rows: Counter[tuple[str, int]] = Counter()
    rows_by_manifest: Counter[str] = Counter()
    # Read through the table's current snapshot (a Parquet glob would also see replaced files).
    strays: set[str] = set()
    for row in LocalDataset.open(run.opts.output_dir).rows(("_source_file", "_source_line", "_manifest_id")):
        if row["_manifest_id"] not in succeeded:
            strays.add(row["_manifest_id"])
        rows[(row["_source_file"], row["_source_line"])] += 1
        rows_by_manifest[row["_manifest_id"]] += 1
    violations.extend(f"table rows of manifest {m}, which did not succeed" for m in sorted(strays))
    violations.extend(_engine_violations(run, plan, state.manifest_items, rows_by_manifest))
    quarantined: Counter[tuple[str, int]] = Counter()
    for part in sorted(run.opts.quarantine.rglob("*.jsonl")):
        manifest = next((p.split("=", 1)[1] for p in part.parts if p.startswith("manifest=")), "?")
        if manifest not in succeeded:
            violations.append(f"quarantine file of manifest {manifest}, which did not succeed: {part.name}")
        for line in part.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                if not rec.get("reason"):
                    violations.append(f"quarantine record without a reason: {rec.get('source_file')}")
                quarantined[(rec["source_file"], int(rec["line_number"]))] += 1
    for uri, source in sorted(run.uploaded.items()):
        want = expected_outcome(source.path, uri in poison_files, uri in killer_files)
        got_rows = {ln for (u, ln) in rows if u == uri}
        got_bad = {ln for (u, ln) in quarantined if u == uri}
        if got_rows != want.valid:
            violations.append(
                f"{uri}: rows for lines {sorted(got_rows ^ want.valid)} differ from the valid lines of the input"
            )
        if got_bad != want.bad:
            violations.append(f"{uri}: quarantine for lines {sorted(got_bad ^ want.bad)} differs from the bad lines")
    for what, counter in (("row", rows), ("quarantine record", quarantined)):
        twice = [k for k, n in counter.items() if n > 1]
        if twice:
            violations.append(f"{len(twice)} line(s) written as a {what} more than once, e.g. {twice[0]}")
        strangers = [k for k in counter if k[0] not in run.uploaded]
        if strangers:
            violations.append(f"{what}s of files never uploaded: {strangers[:3]}")

    # DLQs empty, or holding exactly what the scenario put there on purpose.
    sqs = boto3.client("sqs")
    ingest = _queue_depth(sqs, outputs["IngestDlqUrl"])
    if ingest != poison_messages:
        violations.append(f"ingest DLQ holds {ingest} message(s), {poison_messages} poison input(s) sent")
    starts = plan.injected[START_FAILURE] if plan else 0
    events = _queue_depth(sqs, outputs["EventsDlqUrl"])
    if events != starts:
        violations.append(f"events DLQ holds {events} message(s), {starts} start failure(s) injected")
    return violations


def lambda_errors(run: LocalPipeline) -> list[str]:
    """The error names the state machine's Lambda tasks failed with, over every execution of the
    run (the converter's fallbacks among them: Sandbox.Timedout, Runtime.ExitError, ...)."""
    sfn = boto3.client("stepfunctions")
    names = []
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=run.state_machine_arn):
        for execution in page["executions"]:
            pages = sfn.get_paginator("get_execution_history").paginate(executionArn=execution["executionArn"])
            for history in pages:
                for event in history["events"]:
                    details = event.get("taskFailedEventDetails")
                    if details and details.get("resourceType") == "lambda":
                        names.append(str(details.get("error")))
    return sorted(names)


def _engine_violations(
    run: LocalPipeline, plan: FaultPlan | None, manifests: list[dict[str, Any]], table_rows: Counter[str]
) -> list[str]:
    """Each succeeded manifest's run summary names its engine (the one Finalize recorded; a summary
    staged before the commit counts when Compensate rolled a committed run forward), and its rows
    are the manifest's rows in the table, exactly (a Glue fallback or a retry after a committed attempt replaced them).
    Forced glue converts everything on Glue; with auto (the scenarios' manifests are all under
    LAMBDA_MAX_BYTES) a manifest reaches Glue only through a Lambda run that failed."""
    engine = run.opts.engine
    output_path = boto3.client("glue").get_job(JobName=run.outputs["GlueJobName"])["Job"]["DefaultArguments"][
        "--OUTPUT_PATH"
    ]
    s3 = boto3.client("s3")
    violations = []
    on_glue = 0
    for item in manifests:
        if item.get("status") != keys.MANIFEST_SUCCEEDED:
            continue
        mid = str(item["manifest_id"])
        summary = paths.read_json(paths.run_summary_path(output_path, mid), s3)
        if summary is None:
            violations.append(f"manifest {mid} succeeded without a run summary")
            continue
        ran = summary.get("engine")
        if ran not in ("lambda", "glue"):
            violations.append(f"manifest {mid}: run summary names no engine ({ran!r})")
        if item.get("engine") != ran:
            violations.append(f"manifest {mid}: Finalize recorded engine {item.get('engine')!r}, its summary {ran!r}")
        on_glue += ran == "glue"
        if engine == "glue" and ran != "glue":
            violations.append(f"manifest {mid} converted on {ran!r} with the engine forced to glue")
        rows = int((summary.get("totals") or {}).get("rows", -1))
        if rows != table_rows.get(mid, 0):
            violations.append(f"manifest {mid}: its run summary has {rows} rows, the table {table_rows.get(mid, 0)}")
    if engine == "auto" and plan is not None and on_glue > plan.converter_fallbacks:
        violations.append(
            f"{on_glue} manifest(s) converted on Glue with the auto engine, "
            f"only {plan.converter_fallbacks} Lambda run(s) failed"
        )
    return violations
