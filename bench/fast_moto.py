"""moto's server for the load run, with two of its hot spots made cheap (``python -m bench.fast_moto``).

At load-run sizes two moto internals cost far more than anything the control plane does, so
files/s would measure moto, not the pipeline:

- SQS ``ReceiveMessage`` recomputes every queue attribute (three scans of the whole queue) for
  each message it returns, only to read ``MessageRetentionPeriod``.
- DynamoDB ``Query``/``Scan`` sort the *whole table* on every call (``Table.all_items``), so a
  seal's handful of bounded Queries gets slower with every file ever tracked.

Both patches keep moto's results identical: the retention period is read from the queue
directly; Query skips the table-wide sort (it sorts its candidates by the full index and table
key itself), and Scan's sorted item list is cached until an item is added or removed (updates
mutate items in place and never change their keys). Anything they got wrong would show up as a
missed file in the load run's exactly-once check. The tests and ``make run`` use stock moto.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from moto.core.utils import unix_time_millis
from moto.dynamodb.models.table import Table
from moto.sqs.models import SQSBackend


def _retention_from_queue(self: SQSBackend, queue_name: str, message: Any) -> bool:
    queue = self.get_queue(queue_name)
    retain_until_ms = int(queue.message_retention_period) * 1000 + int(message.sent_timestamp)
    return retain_until_ms > unix_time_millis()


_stock_all_items = Table.all_items
_stock_query = Table.query
_stock_put_item = Table.put_item
_stock_delete_item = Table.delete_item
_in_query = threading.local()


def _all_items(self: Table) -> list[Any]:
    if getattr(_in_query, "active", False):
        # Query sorts its own candidates by the full (index and table) key, so it does not
        # need the table order: skip the sort of every item.
        if self.range_key_attr:
            return [item for by_range in self.items.values() for item in by_range.values()]
        return list(self.items.values())
    cached = getattr(self, "_load_sorted_items", None)
    if cached is None:  # Scan pages by table order: keep it, cached until a key comes or goes
        cached = _stock_all_items(self)
        self._load_sorted_items = cached  # type: ignore[attr-defined]
    return list(cached)  # callers may reorder their list; the cache stays sorted


def _query(self: Table, *args: Any, **kwargs: Any) -> Any:
    _in_query.active = True
    try:
        return _stock_query(self, *args, **kwargs)
    finally:
        _in_query.active = False


def _put_item(self: Table, *args: Any, **kwargs: Any) -> Any:
    self._load_sorted_items = None  # type: ignore[attr-defined]  # a new key may join the order
    return _stock_put_item(self, *args, **kwargs)


def _delete_item(self: Table, *args: Any, **kwargs: Any) -> Any:
    self._load_sorted_items = None  # type: ignore[attr-defined]
    return _stock_delete_item(self, *args, **kwargs)


_STOCK = {
    (SQSBackend, "is_message_valid_based_on_retention_period"): SQSBackend.is_message_valid_based_on_retention_period,
    (Table, "all_items"): _stock_all_items,
    (Table, "query"): _stock_query,
    (Table, "put_item"): _stock_put_item,
    (Table, "delete_item"): _stock_delete_item,
}
_PATCHED = {
    (SQSBackend, "is_message_valid_based_on_retention_period"): _retention_from_queue,
    (Table, "all_items"): _all_items,
    (Table, "query"): _query,
    (Table, "put_item"): _put_item,
    (Table, "delete_item"): _delete_item,
}


def patch() -> None:
    for (owner, name), function in _PATCHED.items():
        setattr(owner, name, function)


def unpatch() -> None:
    for (owner, name), function in _STOCK.items():
        setattr(owner, name, function)


def serve() -> None:
    """moto_server's command line, patched. Named ``serve``, not ``main``: ``make bench`` runs
    every bench module's ``main()``, and this one never returns."""
    from moto.server import main as moto_main

    patch()
    moto_main(sys.argv[1:])


if __name__ == "__main__":
    serve()
