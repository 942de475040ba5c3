"""Values that cannot be columns go to ``_rescued_data``, never away (docs/json-shapes.md).

``fit`` puts one parsed JSON value into its column type, and is the only place that decides what
does not fit: a case-variant or invalid key, an earlier duplicate key, an integer a double column
cannot hold exactly. Those go to a ``Rescued`` map of RFC 6901 JSON Pointer -> original value;
``Rescued.text()`` is the row's ``_rescued_data`` (compact JSON, numbers exactly as parsed).
The slow path and the conform step both call ``fit`` on values ``loads_exact`` read from the
source line (the conform step re-reads the line of a row Arrow already converted), so a shape
becomes the same thing on every path and JSON text is always the source's.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, date, datetime
from decimal import Context, Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from glue.lines import EXACT_INT_MAX, FloatText, IntText, NumberText

RESCUED = "_rescued_data"
SOURCE_FILE, SOURCE_LINE, MANIFEST_ID = "_source_file", "_source_line", "_manifest_id"
# The manifest's date as a real column of every table row: the table's partition (glue/table.py),
# whose value Iceberg takes from each data file's statistics.
INGEST_DATE = "_ingest_date"
PROVENANCE = (SOURCE_FILE, SOURCE_LINE, MANIFEST_ID, INGEST_DATE)
# Top-level names the job writes itself: a data key equal to one of them (ignoring case, as Spark
# and Athena compare names) is rescued, so no file ever has two columns Spark cannot tell apart.
RESERVED = frozenset(n.lower() for n in (*PROVENANCE, RESCUED))
# Glue Data Catalog column names are 1-255 characters on one line.
MAX_NAME_CHARS = 255
# Containers nested deeper than this inside a column are stored as JSON text.
MAX_COLUMN_DEPTH = 32
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A number written as a string, as a declared decimal column takes it (JSON's number grammar, plus
# a leading '+' and bare '.5'); Decimal() alone would also take '1_000', ' 1', 'NaN'.
_DECIMAL_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
# Room to quantize any decimal128 value (38 digits) exactly; a literal needing more is rescued.
_DECIMAL_CONTEXT = Context(prec=80)
# A valid line nests up to 512 levels (glue/lines.py MAX_DEPTH) and the recursive helpers here and in
# glue/schema.py take up to two frames a level: room for them, so depth is a rule, not a crash.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 4000))


def column_name_ok(name: str, top_level: bool) -> bool:
    """Whether a key can be a column name in Glue, Athena and Spark (else its value is rescued)."""
    if not name or len(name) > MAX_NAME_CHARS or _CONTROL.search(name):
        return False
    return not (top_level and name.lower() in RESERVED)


def pointer(parent: str, key: str | int) -> str:
    """RFC 6901: ``~`` -> ``~0``, ``/`` -> ``~1``; the empty key is ``/``."""
    return f"{parent}/{str(key).replace('~', '~0').replace('/', '~1')}"


def dumps(value: Any) -> str:
    """Compact JSON text of a value read by ``loads_exact``, as the source wrote it: number literals
    verbatim (``1.50``, ``1e400``, big integers), an object's keys in source order with its duplicate
    keys where they were, null members kept (the text is the value, nothing dropped)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, NumberText):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, FloatText | IntText):
        return value.text
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value)
    if isinstance(value, Decimal):
        return str(value) if value != value.to_integral_value() else str(int(value))
    if isinstance(value, dict):
        pairs = getattr(value, "pairs", None) or value.items()
        return "{" + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{dumps(v)}" for k, v in pairs) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


class Rescued:
    """One row's rescued values, in source order."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, where: str, value: Any) -> None:
        key, n = where, 1
        while key in self.values:  # a key repeated three times: later ones get #2, #3, ...
            n += 1
            key = f"{where}#{n}"
        self.values[key] = value

    def text(self) -> str | None:
        return dumps(self.values) if self.values else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integral(value: Any) -> int | None:
    if _is_int(value):
        return value
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return None


def _int_fits(n: int, t: pa.DataType) -> bool:
    if pa.types.is_unsigned_integer(t):
        return 0 <= n < 2**t.bit_width
    return -(2 ** (t.bit_width - 1)) <= n < 2 ** (t.bit_width - 1)


def _decimal(value: Any, t: pa.Decimal128Type, explicit: bool) -> Decimal | None:
    """``value`` as a decimal of ``t``'s precision and scale, exactly, or None. An integer fits when
    its digits do; in a declared column (``explicit``) so does a fraction (read from its literal,
    ``1.50``) or a number written as a string (``"12.5"``), as Arrow's reader takes them there."""
    if isinstance(value, bool):
        return None
    n = _integral(value)
    if n is not None:
        text = str(n)
    elif not explicit:
        return None
    elif isinstance(value, FloatText):
        text = value.text
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value):
        text = value
    else:
        return None
    d = Decimal(text)
    try:
        q = d.quantize(Decimal(1).scaleb(-t.scale), context=_DECIMAL_CONTEXT)
    except InvalidOperation:  # infinite, or more digits than any decimal column holds
        return None
    if q != d or (q and q.adjusted() >= t.precision - t.scale):
        return None  # digits below the scale, or more integer digits than precision - scale
    return q


def parse_timestamp(s: str) -> datetime:
    """An ISO 8601 string as an aware datetime; no offset means UTC (ValueError if not ISO)."""
    dt = datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith(("Z", "z")) else s)
    return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)


def _plain_str(value: Any) -> bool:
    return isinstance(value, str) and not isinstance(value, NumberText)


def fit(value: Any, t: pa.DataType, where: str, rescued: Rescued, explicit: bool = False) -> Any:
    """``value`` as Arrow stores it in a column of type ``t``; what does not fit is rescued.

    ``explicit``: ``t`` was declared (``--SCHEMA_PATH``): a string column holds only strings (any
    other value is rescued, not turned into JSON text), a decimal column also takes numbers written
    as strings, and a key the schema does not declare is rescued, null or not (``fit_object``)."""
    if value is None:
        return None
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        if _plain_str(value):
            return value
        if not explicit:
            return dumps(value)  # conflicting kinds: the value's JSON text (numbers exact)
    elif pa.types.is_boolean(t):
        if isinstance(value, bool):
            return value
    elif pa.types.is_integer(t):
        n = _integral(value)
        if n is not None and _int_fits(n, t):
            return n
    elif pa.types.is_decimal(t):
        d = _decimal(value, t, explicit)
        if d is not None:
            return d
    elif pa.types.is_floating(t):
        if isinstance(value, float):
            return value
        n = _integral(value)
        # A double holds every integer up to 2**53 exactly and rounds the others: those are rescued.
        if n is not None and -EXACT_INT_MAX <= n <= EXACT_INT_MAX:
            return float(n)
    elif pa.types.is_timestamp(t):
        if _plain_str(value):
            try:
                ts = parse_timestamp(value)
            except (ValueError, OverflowError):
                ts = None
            if ts is not None:
                return ts if t.tz else ts.replace(tzinfo=None)
    elif pa.types.is_date(t):
        if _plain_str(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
    elif pa.types.is_struct(t):
        if isinstance(value, dict):
            return fit_object(value, t, where, rescued, explicit)
    elif (pa.types.is_list(t) or pa.types.is_large_list(t)) and isinstance(value, list):
        return [fit(v, t.value_type, pointer(where, i), rescued, explicit) for i, v in enumerate(value)]
    rescued.add(where, value)
    return None


def fit_object(obj: dict, t: pa.StructType, where: str, rescued: Rescued, explicit: bool = False) -> dict:
    """Fields of ``t`` from ``obj``; keys that are not fields (another casing, an invalid name) and
    earlier duplicates are rescued under their own pointer. ``explicit`` (a declared schema): a key
    it does not declare (at any level, another casing, a reserved name) is rescued even when its
    value is null, since no column holds that null (as Databricks Auto Loader's rescued data
    column does with a user-provided schema); so are its earlier duplicates."""
    names = {t.field(i).name: t.field(i).type for i in range(t.num_fields)}
    for key, value in getattr(obj, "duplicates", ()):
        rescued.add(pointer(where, key), value)
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key in names:
            out[key] = fit(value, names[key], pointer(where, key), rescued, explicit)
        elif value is not None or explicit:  # inferred: a null under another name is the column's null
            rescued.add(pointer(where, key), value)
    return out


def fit_row(row: dict, schema: pa.Schema, explicit: bool = False) -> tuple[dict, str | None]:
    """One row's column values for ``schema`` (data fields only) and its ``_rescued_data``;
    ``explicit``: ``schema`` is the declared one (see ``fit``)."""
    rescued = Rescued()
    values = fit_object(row, pa.struct(list(schema)), "", rescued, explicit)
    return values, rescued.text()


def arrow_value(value: Any) -> Any:
    """A value read back from Arrow (``to_pylist``) as JSON: a struct's null fields are dropped,
    since Arrow cannot tell a null field from an absent one."""
    if isinstance(value, dict):
        return {k: arrow_value(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [arrow_value(v) for v in value]
    return value
