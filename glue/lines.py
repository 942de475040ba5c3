"""Strict NDJSON line splitting and parsing: decides what is a row, what is quarantined, what is blank.

Spark's JSON reader is lenient (single quotes, trailing garbage, NaN), so quarantine is decided
here by a strict RFC 8259 parse: orjson when installed (it rejects NaN/Infinity, lone surrogates
and invalid UTF-8 by itself), else the standard library with hooks that add the same checks.

Line numbers are 1-based physical lines split on LF; a trailing CR (CRLF files) is dropped, a UTF-8
BOM at the start of the file is skipped, and a final line without newline still counts. A line of
only whitespace is ``blank`` (counted, never an error). Reasons are ``<code>: <detail>`` with codes
``invalid_json``, ``invalid_utf8``, ``not_an_object`` and ``too_deep``. What each valid shape becomes
is docs/json-shapes.md (a valid object is always a row, with an explicit schema too).

Two parsers, one verdict: orjson decides fast; where it is not exact or not the arbiter (a number
beyond a double's range, which orjson refuses; integers beyond 64 bits, which it rounds) the
standard library decides, and ``loads_exact`` gives the values the slow path converts and every
JSON text or rescued value is rebuilt from: integers exact, number literals a double cannot hold
kept as text (``NumberText``), other literals with their text (``FloatText``, ``IntText``),
duplicate keys recorded in source order.
Nesting deeper than MAX_DEPTH is ``too_deep`` on both (orjson stops at 1024, the standard library
at Python's recursion limit: neither is the contract).
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from dataclasses import dataclass, field

try:  # orjson is ~3x faster and strict by construction; the stdlib path gives the same codes.
    import orjson

    _ORJSON = True
except ImportError:  # pragma: no cover - exercised by test_lines via the stdlib parser directly
    _ORJSON = False

BOM = b"\xef\xbb\xbf"
# Raw text kept in a quarantine record; longer lines are cut (and flagged) so one runaway line
# cannot make a quarantine file unreadable. 64 KiB keeps every realistic event whole.
RAW_MAX_BYTES = 64 * 1024
_WHITESPACE = b" \t\r\n"
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Objects/arrays nested deeper than this are ``too_deep`` on every parser (docs/json-shapes.md).
MAX_DEPTH = 512
# An integer literal of 16+ digits may exceed 2**53 (a double rounds it; orjson rounds beyond 64
# bits): such lines are re-read exactly. Digits after '.', 'e' or a sign of an exponent are not one.
_LONG_INT = re.compile(rb"(?<![0-9.eE+\-])-?[0-9]{16,}(?![0-9.eE])")
EXACT_INT_MAX = 2**53
# The same test over a whole file in RE2 (Arrow's regex engine, linear and ~100x faster than
# Python's ``re`` here): most files have no 16-digit integer and skip the per-line check.
_LONG_INT_RE2 = r"(^|[^0-9.eE+\-])-?[0-9]{16,}($|[^0-9.eE])"


def may_hold_long_int(data: bytes) -> bool:
    import pyarrow as pa
    import pyarrow.compute as pc

    return bool(pc.match_substring_regex(pa.array([data], pa.large_binary()), _LONG_INT_RE2)[0].as_py())


class NumberText(str):
    """A number literal that no double holds (``1e400``): kept as its exact text."""


class FloatText(float):
    """A number literal with a fraction or exponent: its nearest double (what a column holds) and
    its ``text`` as written (what JSON text and ``_rescued_data`` hold: ``1.50`` stays ``1.50``)."""

    __slots__ = ("text",)

    def __new__(cls, text: str) -> FloatText:
        self = super().__new__(cls, text)
        self.text = text
        return self


class IntText(int):
    """An integer literal whose text is not its value's canonical text (``-0``): kept as written."""

    def __new__(cls, text: str) -> IntText:
        self = super().__new__(cls, text)
        self.text = text
        return self


class JsonObject(dict):
    """A parsed object; ``duplicates`` holds (key, value) of earlier occurrences of a repeated key,
    in source order (the last occurrence is the dict's value, as in every mainstream parser, at the
    key's FIRST position, as orjson's and json's dicts keep it: the first casing seen of a name is
    decided by where a key first appears), and ``pairs`` every (key, value) in source order when a
    key repeats (None otherwise): JSON text of the object is rebuilt from them, duplicates where
    they were."""

    __slots__ = ("duplicates", "pairs")

    def __init__(self, pairs: list[tuple[str, object]]) -> None:
        super().__init__()
        self.duplicates: list[tuple[str, object]] = []
        self.pairs: list[tuple[str, object]] | None = None
        for key, value in pairs:
            if key in self:
                self.duplicates.append((key, self[key]))
            self[key] = value
        if self.duplicates:
            self.pairs = pairs


class BadLine(ValueError):
    """A line that is not a JSON object; ``reason`` is ``<code>: <detail>``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class QuarantinedLine:
    line_number: int
    reason: str
    raw: str
    raw_truncated: bool


@dataclass
class ParsedFile:
    """Outcome of one file: valid object lines (bytes, no newline) and their line numbers."""

    lines: int = 0
    blank: int = 0
    valid: list[bytes] = field(default_factory=list)
    valid_line_numbers: list[int] = field(default_factory=list)
    quarantined: list[QuarantinedLine] = field(default_factory=list)
    # Some valid line holds a number only the exact reader keeps (see ``needs_exact``).
    exact: bool = False


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


_INFINITIES = (float("inf"), float("-inf"))


def _exact_float(text: str) -> FloatText | NumberText:
    value = FloatText(text)
    return value if value not in _INFINITIES else NumberText(text)


def _exact_int(text: str) -> int:
    return int(text) if text != "-0" else IntText(text)


def _std_loads(line: bytes, exact: bool = False) -> object:
    text = line.decode("utf-8")  # UnicodeDecodeError -> invalid_utf8 in the caller
    if exact:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_exact_float,
            parse_int=_exact_int,
            object_pairs_hook=JsonObject,
        )
    else:
        value = json.loads(text, parse_constant=_reject_constant)
    if "\\u" in text and _has_lone_surrogate(value):
        raise ValueError("lone surrogate in string escape")
    return value


def _has_lone_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return bool(_LONE_SURROGATE.search(value))
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def _json_type(value: object) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _is_valid_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def nesting_depth(line: bytes) -> int:
    """Deepest nesting of objects/arrays, brackets inside strings ignored (only called on lines
    with more than MAX_DEPTH brackets, so ordinary lines never pay for it)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in line:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _may_be_too_deep(line: bytes) -> bool:
    # More than MAX_DEPTH levels take more than MAX_DEPTH opening brackets (closed or not: an invalid
    # line that deep is too_deep too, as docs/json-shapes.md says): short lines skip counting.
    return len(line) > MAX_DEPTH and line.count(b"[") + line.count(b"{") > MAX_DEPTH


def _check_depth(line: bytes) -> None:
    if _may_be_too_deep(line):
        depth = nesting_depth(line)
        if depth > MAX_DEPTH:
            raise BadLine(f"too_deep: nesting of {depth} levels exceeds {MAX_DEPTH}")


def _bad(line: bytes, exc: ValueError) -> BadLine:
    if isinstance(exc, UnicodeDecodeError):
        return BadLine(f"invalid_utf8: {exc.reason} at byte {exc.start}")
    if not _is_valid_utf8(line):
        return BadLine("invalid_utf8: line is not valid UTF-8")
    return BadLine(f"invalid_json: {exc}")


def _object(value: object) -> dict:
    if not isinstance(value, dict):
        raise BadLine(f"not_an_object: {_json_type(value)}")
    return value


def loads_strict(line: bytes, use_orjson: bool = _ORJSON) -> dict:
    """Parse one line strictly into a dict, or raise BadLine with a stable reason code.

    The verdict is the same with or without orjson; values are exact except that integers beyond
    64 bits are read exactly on both, and a literal beyond a double's range is ``NumberText``."""
    _check_depth(line)  # before any parser recurses
    if use_orjson:
        try:
            value = orjson.loads(line)
            if _LONG_INT.search(line):  # orjson rounds integers beyond 64 bits: read them exactly
                value = _std_loads(line, exact=True)
            return _object(value)
        except BadLine:
            raise
        except ValueError as exc:
            # Without its traceback: that frame holds ``first``, and the cycle would keep this
            # frame and its callers' (the whole block of lines, its table) until a full collection.
            first = exc.with_traceback(None)
        # orjson refuses numbers beyond a double's range, which RFC 8259 allows: the standard
        # library is the arbiter for every line orjson refuses, so both parsers agree.
        try:
            return _object(_std_loads(line, exact=True))
        except BadLine:
            raise
        except ValueError:
            raise _bad(line, first) from None
    try:
        return _object(_std_loads(line, exact=True))
    except BadLine:
        raise
    except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise _bad(line, exc) from None


def loads_exact(line: bytes) -> JsonObject:
    """A valid line's object with exact numbers and its duplicate keys (the slow path's reader)."""
    _check_depth(line)
    try:
        return _object(_std_loads(line, exact=True))
    except BadLine:
        raise
    except ValueError as exc:
        raise _bad(line, exc) from None


def _has_inexact_number(value: object) -> bool:
    if isinstance(value, NumberText):
        return True
    if isinstance(value, int) and not isinstance(value, bool):
        return not -EXACT_INT_MAX <= value <= EXACT_INT_MAX
    if isinstance(value, dict):
        return any(_has_inexact_number(v) for v in value.values()) or any(
            _has_inexact_number(v) for _, v in getattr(value, "duplicates", ())
        )
    if isinstance(value, list):
        return any(_has_inexact_number(v) for v in value)
    return False


def needs_exact(line: bytes) -> bool:
    """True when a valid line holds a number that Arrow's reader or orjson would not keep exactly
    (an integer beyond 2**53, a literal beyond a double's range): its file takes the slow path."""
    if not _LONG_INT.search(line) and b"e" not in line and b"E" not in line:
        return False
    try:
        return _has_inexact_number(_std_loads(line, exact=True))
    except (ValueError, RecursionError):
        return False


def raw_text(line: bytes) -> tuple[str, bool]:
    """The line as text for a quarantine record, cut at RAW_MAX_BYTES; invalid bytes become \\xNN."""
    cut = len(line) > RAW_MAX_BYTES
    return line[:RAW_MAX_BYTES].decode("utf-8", errors="backslashreplace"), cut


def quarantine(line_number: int, reason: str, line: bytes) -> QuarantinedLine:
    raw, cut = raw_text(line)
    return QuarantinedLine(line_number=line_number, reason=reason, raw=raw, raw_truncated=cut)


def decompress(data: bytes, name: str) -> bytes:
    """Gunzip ``.gz`` objects (several concatenated members are fine); others pass through."""
    if not name.lower().endswith(".gz"):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{name}: not a valid gzip stream ({exc})") from None


def split_lines(data: bytes, bom: bool = True) -> list[bytes]:
    """Physical lines: BOM skipped (``bom``: the data starts the file), LF split, CR of CRLF dropped,
    no phantom line after a final LF."""
    if bom and data.startswith(BOM):
        data = data[len(BOM) :]
    if not data:
        return []
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    if b"\r" in data:
        parts = [p[:-1] if p.endswith(b"\r") else p for p in parts]
    return parts


def classify_line(line: bytes, number: int, out: ParsedFile, long_ints: bool = True) -> bool:
    """One line through ``parse_lines``'s verdict (the parser chosen by ``_ORJSON`` at call time):
    appended to ``out``'s valid lines, blank count or quarantine; True when it is a valid row.
    ``long_ints``: its text may hold a 16-digit integer (False only when its block holds none)."""
    if _ORJSON:
        try:
            if type(orjson.loads(line)) is dict and not _may_be_too_deep(line):
                out.valid.append(line)
                out.valid_line_numbers.append(number)
                if long_ints and not out.exact and _LONG_INT.search(line):
                    out.exact = needs_exact(line)
                return True
        except ValueError:
            pass
    if not line.strip(_WHITESPACE):
        out.blank += 1
        return False
    try:
        loads_strict(line, use_orjson=_ORJSON)
    except BadLine as exc:
        out.quarantined.append(quarantine(number, exc.reason, line))
        return False
    out.valid.append(line)
    out.valid_line_numbers.append(number)
    if not out.exact:
        out.exact = needs_exact(line)
    return True


def parse_lines(data: bytes, use_orjson: bool = _ORJSON, first_line: int = 1, bom: bool = True) -> ParsedFile:
    """Classify every line. Only validity is decided here; types are checked during conversion.

    ``data`` is a whole file, or one block of whole lines of it (glue/blocks.py): ``first_line`` is
    the number of its first line and ``bom`` says whether it starts the file."""
    out = ParsedFile()
    parts = split_lines(data, bom)
    out.lines = len(parts)
    valid, numbers, bad = out.valid, out.valid_line_numbers, out.quarantined
    loads = orjson.loads if use_orjson else None
    long_ints = bool(parts) and may_hold_long_int(data)
    for number, line in enumerate(parts, first_line):
        if loads is not None:
            # Fast path inlined: most lines are plain objects; anything else takes the full check.
            try:
                if type(loads(line)) is dict and not _may_be_too_deep(line):
                    valid.append(line)
                    numbers.append(number)
                    if long_ints and not out.exact and _LONG_INT.search(line):
                        out.exact = needs_exact(line)
                    continue
            except ValueError:
                pass
        if not line.strip(_WHITESPACE):
            out.blank += 1
            continue
        try:
            loads_strict(line, use_orjson=use_orjson)
        except BadLine as exc:
            bad.append(quarantine(number, exc.reason, line))
            continue
        valid.append(line)
        numbers.append(number)
        if not out.exact:
            out.exact = needs_exact(line)
    return out
