"""``ndjson-parquet release``: files held by a schema-change refusal back to pending, so they are
batched again. Run it after allowing the change (the table's schema mode, e.g. the job argument
``--SCHEMA_MODE``, or the table's schema); released under the same policy, they are held again.
Every move is conditional (chalicelib/workflow/release.py): a second release changes nothing."""

from __future__ import annotations

import argparse
import json

HELP = "Move files held by a schema-change refusal (--manifest ID or --all) back to pending."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--manifest", help="release the files this manifest held")
    which.add_argument("--all", action="store_true", help="release every held manifest")
    parser.add_argument("--json", action="store_true", help="print what each release did as JSON")


def _line(r: object) -> str:
    from chalicelib.workflow.release import Released

    assert isinstance(r, Released)
    if r.refused:
        return f"{r.manifest_id}: not released: {r.refused}"
    if not (r.files or r.manifest_released):
        return f"{r.manifest_id}: nothing held (manifest {r.status}): nothing to release"
    done = "manifest released (failed)" if r.manifest_released else f"manifest {r.status}"
    return f"{r.manifest_id}: {r.files} held files back to pending; {done}"


def main(args: argparse.Namespace) -> int:
    from chalicelib.settings import get_settings
    from chalicelib.workflow.release import release_all, release_manifest
    from chalicelib.workflow.tasks import store

    s = get_settings()
    table = store(s)
    results = release_all(table, s.shard_count) if args.all else [release_manifest(table, args.manifest, s.shard_count)]
    files = sum(r.files for r in results)
    if args.json:
        print(json.dumps({"released_files": files, "manifests": [r.as_dict() for r in results]}))
    else:
        for r in results:
            print(_line(r))
        print(f"released={files} files from {sum(1 for r in results if r.files)} manifests")
    # A named manifest that cannot be released (missing, still live) is an error; nothing left to
    # release is not (a second release is a no-op).
    return 1 if any(r.refused for r in results) else 0
