"""Strict NDJSON line splitting and parsing: decides what is a row, what is quarantined, what is blank.

Spark's JSON reader is lenient (single quotes, trailing garbage, NaN), so quarantine is decided
here by a strict RFC 8259 parse: orjson when installed (it rejects NaN/Infinity, lone surrogates
and invalid UTF-8 by itself), else the standard library with hooks that add the same checks.

Line numbers are 1-based physical lines split on LF; a trailing CR (CRLF files) is dropped, a UTF-8
BOM at the start of the file is skipped, and a final line without newline still counts. A line of
only whitespace is ``blank`` (counted, never an error). Reasons are ``<code>: <detail>`` with codes
``invalid_json``, ``invalid_utf8``, ``not_an_object`` and (later, in conversion) ``schema_mismatch``.
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


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _std_loads(line: bytes) -> object:
    text = line.decode("utf-8")  # UnicodeDecodeError -> invalid_utf8 in the caller
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


def loads_strict(line: bytes, use_orjson: bool = _ORJSON) -> dict:
    """Parse one line strictly into a dict, or raise BadLine with a stable reason code."""
    try:
        value = orjson.loads(line) if use_orjson else _std_loads(line)
    except UnicodeDecodeError as exc:
        raise BadLine(f"invalid_utf8: {exc.reason} at byte {exc.start}") from None
    except ValueError as exc:  # orjson.JSONDecodeError and json.JSONDecodeError are ValueErrors
        if not _is_valid_utf8(line):
            raise BadLine("invalid_utf8: line is not valid UTF-8") from None
        raise BadLine(f"invalid_json: {exc}") from None
    if type(value) is not dict:
        raise BadLine(f"not_an_object: {_json_type(value)}")
    return value


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


def split_lines(data: bytes) -> list[bytes]:
    """Physical lines: BOM skipped, LF split, CR of CRLF dropped, no phantom line after a final LF."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    if not data:
        return []
    parts = data.split(b"\n")
    if parts[-1] == b"":
        parts.pop()
    if b"\r" in data:
        parts = [p[:-1] if p.endswith(b"\r") else p for p in parts]
    return parts


def parse_lines(data: bytes, use_orjson: bool = _ORJSON) -> ParsedFile:
    """Classify every line. Only validity is decided here; types are checked during conversion."""
    out = ParsedFile()
    parts = split_lines(data)
    out.lines = len(parts)
    valid, numbers, bad = out.valid, out.valid_line_numbers, out.quarantined
    loads = orjson.loads if use_orjson else None
    for number, line in enumerate(parts, 1):
        if loads is not None:
            # Fast path inlined: most lines are plain objects; anything else takes the full check.
            try:
                if type(loads(line)) is dict:
                    valid.append(line)
                    numbers.append(number)
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
    return out
