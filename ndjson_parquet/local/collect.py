"""After a local run: copy the dataset out of the local S3, and check it against the input.

The checks are independent of the pipeline's own bookkeeping where they can be: lines are
counted again from the input files, rows are counted in the Parquet files themselves, and
quarantine records in the quarantine files. Each mismatch is a named problem in the report.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from chalicelib import keys
from ndjson_parquet.local.dataset import DATASET_MARKER, DatasetError, LocalDataset
from ndjson_parquet.local.inputs import count_lines

if TYPE_CHECKING:
    from ndjson_parquet.local.runtime import LocalPipeline


class OutputDirError(RuntimeError):
    """The output directory holds something that is not a dataset of ours: never wipe it."""


def split_s3(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def check_output_dir(path: Path) -> None:
    """Refuse, before anything runs, an output folder that holds something not written by us."""
    if path.exists() and not path.is_dir():
        raise OutputDirError(f"{path} exists and is not a directory")
    if path.exists() and any(path.iterdir()) and not (path / DATASET_MARKER).exists():
        raise OutputDirError(
            f"{path} is not empty and was not written by `ndjson-parquet run`; choose an empty or new directory"
        )


def prepare_output_dir(path: Path) -> None:
    """Empty ``path`` for a new run's dataset, refusing to wipe a folder that is not ours.

    A local run is a whole dataset: stale manifest folders of an earlier run with different
    batching would otherwise sit next to the new ones and duplicate rows."""
    check_output_dir(path)
    if path.exists() and any(path.iterdir()):
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / DATASET_MARKER).write_text(json.dumps({"written_by": "ndjson-parquet run"}) + "\n", encoding="utf-8")


def download_prefix(s3: Any, uri: str, target: Path, skip: tuple[str, ...] = ("_staging/",)) -> int:
    bucket, prefix = split_s3(uri)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            rel = obj["Key"][len(prefix) :].lstrip("/")
            if not rel or rel.startswith(skip):
                continue
            dest = target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, obj["Key"], str(dest))
            count += 1
    return count


def _table_rows_by_manifest(out_dir: Path, report: Any) -> dict[str, int]:
    """Rows per manifest in the table's current snapshot; a source line held twice is a problem."""
    try:
        con = LocalDataset.open(out_dir).connect()
    except DatasetError:
        return {}  # no manifest committed (every file quarantined, or nothing converted)
    doubled = con.sql(
        "select count(*) from (select _source_file, _source_line from dataset group by all having count(*) > 1)"
    ).fetchone()[0]
    if doubled:
        report.problems.append(f"{doubled} source line(s) appear more than once in the table")
    report.table_rows = con.sql("select count(*) from dataset").fetchone()[0]
    return dict(con.sql("select _manifest_id, count(*) from dataset group by 1").fetchall())


def quarantine_records(folder: Path) -> int:
    total = 0
    for p in sorted(folder.rglob("*.jsonl")):
        with p.open("rb") as fh:
            total += sum(1 for line in fh if line.strip())
    return total


def collect_results(run: LocalPipeline, outputs: dict[str, str]) -> None:
    from ndjson_parquet.local.runtime import read_state

    report = run.report
    s3 = boto3.client("s3")
    state = read_state(boto3.client("dynamodb"), outputs["TableName"])
    by_uri = {f"s3://{item['bucket']}/{item['key']}": item for item in state.file_items}

    succeeded = [m for m in state.manifest_items if m.get("status") == keys.MANIFEST_SUCCEEDED]
    report.manifests = len(succeeded)
    report.manifests_failed = sum(1 for m in state.manifest_items if m.get("status") == keys.MANIFEST_FAILED)

    out_dir, q_dir = run.opts.output_dir, run.opts.quarantine
    # Both folders were prepared when the run started: the table has lived in out_dir since.
    download_prefix(s3, outputs["OutputPath"], out_dir)
    download_prefix(s3, outputs["QuarantinePath"], q_dir)

    table_rows = _table_rows_by_manifest(out_dir, report)
    seen: dict[str, str] = {}
    set_aside: set[str] = set()
    for manifest in sorted(succeeded, key=lambda m: m["manifest_id"]):
        mid = manifest["manifest_id"]
        summary_path = out_dir / "_runs" / f"{mid}.json"
        if not summary_path.exists():
            report.problems.append(f"manifest {mid} succeeded but has no run summary")
            continue
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
        engine = str(summary.get("engine") or "glue")  # summaries written before engines were two: Glue's
        report.engines[engine] = report.engines.get(engine, 0) + 1
        for entry in summary["files"]:
            uri = entry["uri"]
            if uri in seen:
                report.problems.append(f"{uri} converted by two manifests: {seen[uri]} and {mid}")
            seen[uri] = mid
            for k in ("lines", "rows", "quarantined", "blank"):
                setattr(report, k, getattr(report, k) + int(entry[k]))
            source = run.uploaded.get(uri)
            if entry.get("set_aside"):  # one unit, one quarantine record: lines = 1 by definition
                set_aside.add(uri)
            elif source is not None:
                independent = count_lines(source.path)
                if independent is not None and independent != int(entry["lines"]):
                    report.problems.append(f"{uri}: job counted {entry['lines']} lines, the input has {independent}")
        date = summary["date_prefix"]
        rows_in_table = table_rows.pop(mid, 0)
        if rows_in_table != int(summary["totals"]["rows"]):
            report.problems.append(
                f"manifest {mid}: {rows_in_table} rows in the table, summary says {summary['totals']['rows']}"
            )
        q_on_disk = quarantine_records(q_dir / f"dt={date}" / f"manifest={mid}")
        q_summary = int(summary["totals"]["quarantined"])
        if q_on_disk != q_summary:
            report.problems.append(f"manifest {mid}: {q_on_disk} quarantine records on disk, summary says {q_summary}")

    for mid, n in sorted(table_rows.items()):
        report.problems.append(f"the table holds {n} rows of manifest {mid}, which did not succeed")

    for uri, source in sorted(run.uploaded.items()):
        item = by_uri.get(uri)
        if item is None:
            report.problems.append(f"{uri} was uploaded but never tracked")
            continue
        status = item.get("status")
        if status == keys.SKIPPED:
            report.files_skipped += 1
            continue
        report.files += 1
        report.bytes += source.size
        if uri in set_aside and status == keys.QUARANTINED:
            report.files_set_aside += 1  # set aside whole by the job (glue/isolation.py), reason in the quarantine
        elif status == keys.HELD:
            report.problems.append(
                f"{uri} is held: the table's schema mode refused the fields it adds "
                "(`ndjson-parquet status` names them; `ndjson-parquet release` after changing the mode)"
            )
        elif status != keys.CONVERTED:
            report.problems.append(f"{uri} ended {status}, not converted")
        elif uri not in seen:
            report.problems.append(f"{uri} is marked converted but no succeeded manifest's summary lists it")
