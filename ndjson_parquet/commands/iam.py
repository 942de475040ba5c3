"""``ndjson-parquet iam``: the static least-privilege check, the operator's policy, the role table."""

from __future__ import annotations

import argparse
import json

HELP = "Check every role's policy against the static call map; print the operator policy or the role table."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="iam_command", required=True)
    c = sub.add_parser("check", help="evaluate each role's policy against its calls; list missing and unused grants")
    c.add_argument("--stage", action="append", help="stage (repeatable; default: dev and prod)")
    o = sub.add_parser("operator-policy", help="print the IAM policy the operator CLI needs (JSON)")
    o.add_argument("--stage", default="dev")
    t = sub.add_parser("table", help="print each role's actions and why (Markdown)")
    t.add_argument("--stage", default="dev")


def main(args: argparse.Namespace) -> int:
    if args.iam_command == "check":
        from ndjson_parquet.iam.check import DEFAULT_STAGES, check, render
        from ndjson_parquet.iam.scan import unmapped_sites

        reports = check(args.stage or DEFAULT_STAGES)
        print(render(reports))
        unmapped = unmapped_sites()
        for line in unmapped:
            print(f"FAIL unmapped call: {line}")
        ok = all(r.ok for r in reports) and not unmapped
        print("iam-check: " + ("ok" if ok else "FAILED"))
        return 0 if ok else 1
    if args.iam_command == "operator-policy":
        from ndjson_parquet.iam.policies import operator_policy

        print(json.dumps(operator_policy(args.stage), indent=2))
        return 0
    from ndjson_parquet.iam.table import role_table

    print(role_table(args.stage))
    return 0
