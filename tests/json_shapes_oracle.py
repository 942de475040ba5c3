"""An independent reference implementation of docs/json-shapes.md, for tests only.

It never imports glue/: lines are parsed with Python's json (hooks keep every number literal and
every duplicate key), types and values are derived from the contract's tables, and the job's output
(read back from Parquet) is compared with what this module expects. Types are small tuples:
``("null",)``, ``("bool",)``, ``("int",)``, ``("dec",)``, ``("double",)``, ``("string",)``,
``("struct", {name: type})``, ``("list", type)``.
"""

from __future__ import annotations

import gzip
import json
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pyarrow as pa

MAX_DEPTH = 512  # levels of objects/arrays in a valid line
COLUMN_LEVELS = 32  # levels of objects/arrays a column holds; a container below them is JSON text
INT64 = (-(2**63), 2**63 - 1)
EXACT = 2**53
RESERVED = {"_source_file", "_source_line", "_manifest_id", "_rescued_data"}
PROVENANCE = ("_source_file", "_source_line", "_manifest_id")
NULL, BOOL, INT, DEC, DOUBLE, STRING = ("null",), ("bool",), ("int",), ("dec",), ("double",), ("string",)


class Num(str):
    """A number literal as written."""

    is_int: bool


def _num(text: str, is_int: bool) -> Num:
    n = Num(text)
    n.is_int = is_int
    return n


class Obj(list):
    """An object as its (key, value) pairs in source order, duplicates kept."""


def _reject(name: str) -> Any:
    raise ValueError(name)


def loads_pairs(text: str) -> Any:
    return json.loads(
        text,
        parse_int=lambda s: _num(s, True),
        parse_float=lambda s: _num(s, False),
        parse_constant=_reject,
        object_pairs_hook=Obj,
    )


def _depth(line: bytes) -> int:
    """Deepest nesting of objects/arrays in the raw bytes, brackets inside strings ignored (UTF-8
    never puts an ASCII byte inside a multi-byte character, so bytes are enough)."""
    depth = best = 0
    in_str = esc = False
    for ch in line.decode("latin-1"):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth -= 1
    return best


def _has_surrogate(v: Any) -> bool:
    if isinstance(v, str) and not isinstance(v, Num):
        return any(0xD800 <= ord(c) <= 0xDFFF for c in v)
    if isinstance(v, Obj):
        return any(_has_surrogate(k) or _has_surrogate(x) for k, x in v)
    if isinstance(v, list):
        return any(_has_surrogate(x) for x in v)
    return False


def classify(line: bytes) -> tuple[str, Any]:
    """("blank"|"row"|<reason code>, parsed object or None). More than MAX_DEPTH levels is
    ``too_deep`` whatever else is wrong with the line (the depth is decided before parsing)."""
    if not line.strip(b" \t\r\n"):
        return "blank", None
    depth = _depth(line)
    if depth > MAX_DEPTH:
        return "too_deep", None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8", None
    old = sys.getrecursionlimit()
    if depth > 100:
        sys.setrecursionlimit(max(old, 10 * len(text) + 20000))
    try:
        value = loads_pairs(text)
        if _has_surrogate(value):
            return "invalid_json", None
    except (ValueError, RecursionError):
        return "invalid_json", None
    finally:
        sys.setrecursionlimit(old)
    if not isinstance(value, Obj):
        return "not_an_object", None
    return "row", value


def split_lines(data: bytes) -> list[bytes]:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data:
        return []
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    return [p[:-1] if p.endswith(b"\r") else p for p in parts]


def name_ok(name: str, top: bool) -> bool:
    if name == "" or len(name) > 255 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return False
    return not (top and name.lower() in RESERVED)


def _esc(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


@dataclass
class Expected:
    """What a manifest must become: per-file counts, per-line verdicts, the schema and every row."""

    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    verdicts: dict[tuple[str, int], str] = field(default_factory=dict)  # (uri, line) -> code or "row"
    schema: tuple = ("struct", {})
    rows: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    rescued: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)


def _winners(obj: Obj, top: bool, casing: dict[str, str]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """(column name -> value) and [(key, value)] rescued, in source order, for one object."""
    last = {k: i for i, (k, _) in enumerate(obj)}
    keep: dict[str, Any] = {}
    lost: list[tuple[str, Any]] = []
    for i, (k, v) in enumerate(obj):
        if not name_ok(k, top):
            lost.append((k, v))
            continue
        first = casing.setdefault(k.lower(), k)
        if first != k or last[k] != i:
            lost.append((k, v))
        else:
            keep[k] = v
    return keep, lost


class Oracle:
    def __init__(self) -> None:
        self.casing: dict[tuple, dict[str, str]] = {}

    def _cas(self, path: tuple) -> dict[str, str]:
        return self.casing.setdefault(path, {})

    def infer(self, v: Any, path: tuple, top: bool = False) -> tuple:
        if v is None:
            return NULL
        if v is True or v is False:
            return BOOL
        if isinstance(v, Num):
            if v.is_int:
                n = int(v)
                if INT64[0] <= n <= INT64[1]:
                    return INT
                return DEC if len(v.lstrip("-")) <= 38 else STRING
            return DOUBLE if abs(float(v)) != float("inf") else STRING
        if isinstance(v, str):
            return STRING
        if len(path) > COLUMN_LEVELS:  # the column's value is level 1 (path of one key)
            return STRING
        if isinstance(v, Obj):
            keep, _ = _winners(v, top, self._cas(path))
            return ("struct", {k: self.infer(x, (*path, k)) for k, x in keep.items()})
        t: tuple = NULL
        for x in v:
            t = unify(t, self.infer(x, (*path, "*")))
        return ("list", t)


def unify(a: tuple, b: tuple) -> tuple:
    if a == NULL:
        return b
    if b == NULL or (a == b and a[0] != "struct" and a[0] != "list"):
        return a
    kinds = {a[0], b[0]}
    if kinds == {"int", "dec"}:
        return DEC
    if kinds == {"int", "double"}:
        return DOUBLE
    if a[0] == b[0] == "struct":
        out = dict(a[1])
        for k, t in b[1].items():
            out[k] = unify(out[k], t) if k in out else t
        return ("struct", out)
    if a[0] == b[0] == "list":
        return ("list", unify(a[1], b[1]))
    return STRING


def finalize(t: tuple) -> tuple:
    if t == NULL:
        return STRING
    if t[0] == "struct":
        if not t[1]:
            return STRING
        return ("struct", {k: finalize(x) for k, x in sorted(t[1].items())})
    if t[0] == "list":
        return ("list", finalize(t[1]))
    return t


@dataclass(frozen=True)
class JsonText:
    """A value the column stores as its compact JSON text (compared by meaning)."""

    value: Any


def project(v: Any, t: tuple, ptr: str, oracle: Oracle, path: tuple, rescued: list, top: bool = False) -> Any:
    if v is None:
        return None
    kind = t[0]
    if kind == "string":
        return v if isinstance(v, str) and not isinstance(v, Num) else JsonText(v)
    if kind == "bool":
        return v
    if kind == "int":
        return int(v)
    if kind == "dec":
        return Decimal(int(v))
    if kind == "double":
        if v.is_int and abs(int(v)) > EXACT:
            rescued.append((ptr, v))
            return None
        return float(v)
    if kind == "struct":
        keep, lost = _winners(v, top, oracle._cas(path))
        rescued.extend((f"{ptr}/{_esc(k)}", x) for k, x in lost)
        return {f: project(keep.get(f), ft, f"{ptr}/{_esc(f)}", oracle, (*path, f), rescued) for f, ft in t[1].items()}
    return [project(x, t[1], f"{ptr}/{i}", oracle, (*path, "*"), rescued) for i, x in enumerate(v)]


def expect(files: list[tuple[str, bytes]]) -> Expected:
    """The contract's outcome for one manifest (files in manifest order)."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, 20000))  # 512 levels are valid: walk them without RecursionError
    try:
        return _expect(files)
    finally:
        sys.setrecursionlimit(old)


def _expect(files: list[tuple[str, bytes]]) -> Expected:
    out = Expected()
    oracle = Oracle()
    valid: list[tuple[tuple[str, int], Obj]] = []
    for uri, raw in files:
        if uri.endswith(".gz"):
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError) as exc:
                raise AssertionError(f"test data {uri} does not gunzip: {exc}") from None
        c = {"lines": 0, "blank": 0, "rows": 0, "quarantined": 0}
        for number, line in enumerate(split_lines(raw), 1):
            verdict, value = classify(line)
            c["lines"] += 1
            out.verdicts[(uri, number)] = verdict
            if verdict == "blank":
                c["blank"] += 1
            elif verdict == "row":
                c["rows"] += 1
                valid.append(((uri, number), value))
            else:
                c["quarantined"] += 1
        out.counts[uri] = c
    merged: tuple = ("struct", {})
    for _, obj in valid:
        merged = unify(merged, oracle.infer(obj, (), top=True))
    top = finalize(merged) if merged[1] else ("struct", {})
    out.schema = top if top[0] == "struct" else ("struct", {})
    for key, obj in valid:
        rescued: list[tuple[str, Any]] = []
        out.rows[key] = project(obj, out.schema, "", oracle, (), rescued, top=True)
        named: dict[str, Any] = {}
        for ptr, v in rescued:
            name = ptr if ptr else "/"
            n = 1
            while name in named:
                n += 1
                name = f"{ptr or '/'}#{n}"
            named[name] = v
        out.rescued[key] = named
    return out


# ---- comparison ------------------------------------------------------------------------------


def norm_json(v: Any) -> Any:
    """A parsed-with-hooks JSON value in comparable form: number literals as their text (``1.0`` is
    not ``1``, ``1e400`` and big integers exact), objects as pair lists in source order (null
    members and duplicate keys included): JSON text and rescued values are the source's, exactly."""
    if isinstance(v, Num):
        return ("number", str(v))
    if isinstance(v, Obj):
        return [(k, norm_json(x)) for k, x in v]
    if isinstance(v, list):
        return [norm_json(x) for x in v]
    return v


def diff_value(exp: Any, act: Any, where: str) -> str | None:
    if isinstance(exp, JsonText):
        if not isinstance(act, str):
            return f"{where}: expected JSON text of {exp.value!r}, got {act!r}"
        try:
            parsed = loads_pairs(act)
        except ValueError:
            return f"{where}: expected JSON text of {exp.value!r}, got non-JSON {act!r}"
        if norm_json(parsed) != norm_json(exp.value):
            return f"{where}: JSON text {act!r} does not mean {json.dumps(exp.value)}"
        return None
    if isinstance(exp, dict):
        if not isinstance(act, dict) or set(act) != set(exp):
            return f"{where}: expected struct {sorted(exp)}, got {act!r}"
        for k in exp:
            d = diff_value(exp[k], act[k], f"{where}/{k}")
            if d:
                return d
        return None
    if isinstance(exp, list):
        if not isinstance(act, list) or len(act) != len(exp):
            return f"{where}: expected list of {len(exp)}, got {act!r}"
        for i, (e, a) in enumerate(zip(exp, act, strict=True)):
            d = diff_value(e, a, f"{where}/{i}")
            if d:
                return d
        return None
    if type(exp) is not type(act) and not (exp is None and act is None):
        return f"{where}: expected {exp!r} ({type(exp).__name__}), got {act!r} ({type(act).__name__})"
    if exp != act:
        return f"{where}: expected {exp!r}, got {act!r}"
    return None


def norm_rescued(d: dict[str, Any]) -> dict[str, Any]:
    return {k: norm_json(v) for k, v in d.items() if v is not None}


def parse_rescued(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    obj = loads_pairs(text)
    assert isinstance(obj, Obj), text
    return dict(obj)


def arrow_type(t: tuple) -> str:
    """The oracle type as a canonical string, comparable with canonical(pyarrow type)."""
    names = {"bool": "bool", "int": "int64", "dec": "decimal(38,0)", "double": "double", "string": "string"}
    if t[0] == "struct":
        return "struct<" + ",".join(f"{k}:{arrow_type(v)}" for k, v in t[1].items()) + ">"
    if t[0] == "list":
        return f"list<{arrow_type(t[1])}>"
    return names[t[0]]


def canonical(t: pa.DataType) -> str:
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{f.name}:{canonical(f.type)}" for f in t) + ">"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{canonical(t.value_type)}>"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_boolean(t):
        return "bool"
    return str(t)


def check(exp: Expected, table: pa.Table, quarantine: list[dict] | None = None) -> list[str]:
    """Every difference between the expectation and the job's rows (and quarantine records)."""
    problems: list[str] = []
    data = [f for f in table.schema if f.name not in PROVENANCE and f.name != "_rescued_data"]
    want = exp.schema[1]
    got_schema = "struct<" + ",".join(f"{f.name}:{canonical(f.type)}" for f in data) + ">"
    if got_schema != arrow_type(("struct", dict(sorted(want.items())))):
        problems.append(f"schema: expected {arrow_type(('struct', dict(sorted(want.items()))))}, got {got_schema}")
    rows = table.to_pylist()
    seen: set[tuple[str, int]] = set()
    for row in rows:
        key = (row["_source_file"], row["_source_line"])
        if key in seen:
            problems.append(f"{key}: two rows")
        seen.add(key)
        if key not in exp.rows:
            problems.append(f"{key}: row for a line whose verdict is {exp.verdicts.get(key)}")
            continue
        if not problems or len(problems) < 20:
            for name, value in exp.rows[key].items():
                if name not in row:
                    continue  # reported by the schema check
                d = diff_value(value, row[name], f"{key[0]}:{key[1]} /{name}")
                if d:
                    problems.append(d)
            got_r = norm_rescued(parse_rescued(row.get("_rescued_data")))
            want_r = norm_rescued(exp.rescued[key])
            if got_r != want_r:
                problems.append(f"{key[0]}:{key[1]} _rescued_data: expected {want_r}, got {got_r}")
    missing = set(exp.rows) - seen
    if missing:
        problems.append(f"{len(missing)} valid line(s) have no row, e.g. {sorted(missing)[:3]}")
    if quarantine is not None:
        got_q = {(q["source_file"], q["line_number"]): q["reason"].split(":")[0] for q in quarantine}
        want_q = {k: v for k, v in exp.verdicts.items() if v not in ("row", "blank")}
        if got_q != want_q:
            extra = {k: v for k, v in got_q.items() if want_q.get(k) != v}
            lack = {k: v for k, v in want_q.items() if got_q.get(k) != v}
            problems.append(f"quarantine: unexpected {list(extra.items())[:5]}, expected {list(lack.items())[:5]}")
    return [p if len(p) <= 400 else p[:400] + " ..." for p in problems]
