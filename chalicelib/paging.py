"""Bounded pages of a DynamoDB Query or Scan, through boto3's paginator: one page (at most
``page_size`` items read) in memory at a time (docs/invariants.md #3).

Callers pass ``client.get_paginator("query")`` themselves, so the operation each module calls
stays visible where it is called (the IAM call map's scan reads it there)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def raw_pages(paginator: Any, page_size: int, **request: Any) -> Iterator[list[dict[str, Any]]]:
    """The items of each page, still in DynamoDB JSON; ``page_size`` is the request's Limit."""
    for page in paginator.paginate(**request, PaginationConfig={"PageSize": page_size}):
        yield page.get("Items", [])
