"""``ndjson-parquet smoke``: see ndjson_parquet/smoke.py. It runs with the deployer's credentials
(it uploads inputs), so it lives outside the commands the static IAM map scans."""

from __future__ import annotations

import argparse

from ndjson_parquet.smoke import HELP, add_arguments


def main(args: argparse.Namespace) -> int:
    from ndjson_parquet.smoke import main as smoke

    return smoke(args)


__all__ = ["HELP", "add_arguments", "main"]
