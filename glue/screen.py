"""The fast path's line screen: which lines must be judged one by one by the strict parser, and which
may be judged by Arrow's C++ JSON reader for the whole block at once (it parses them anyway).

The strict verdict (glue/lines.py) is the contract; Arrow's reader (RapidJSON) is lenient in a few
known ways, measured on pyarrow 17 (tests/unit/test_screen.py holds each case and runs JSONTestSuite
through both). A line is left to Arrow ("unverified") only when none of them can apply:

- it starts with ``{`` and ends with ``}`` (after the CR of CRLF is dropped): no blank line, no
  scalar or array (a top-level ``null`` first in a block crashes pyarrow 17), no leading or
  trailing whitespace or garbage, no truncation;
- its block is valid UTF-8 (Arrow does not check; a block that is not has every line checked here);
- it holds no ``NaN`` and no ``Inf`` (RapidJSON's NaN/Inf/Infinity flag: Arrow reads them as doubles);
- it holds no NUL byte (RapidJSON treats one as the end of its input);
- it holds no run of 16+ digits and no exponent of 3+ digits: the numbers only the exact reader
  keeps (integers beyond 2**53, literals beyond a double's range) are decided here, so ``exact``
  (glue/lines.py ParsedFile) is the same as the strict parse's;
- it has no more than MAX_DEPTH opening brackets when it is longer than MAX_DEPTH bytes (the
  depth rule, decided here: deep nesting also crashes Arrow's builders);
- no single quote follows ``{``, ``[``, ``:`` or ``,`` (a common bad line: left here, it would
  only cost Arrow a retry).

Everything else RapidJSON rejects as strictly as RFC 8259 (control characters in strings, lone
surrogates, number grammar, commas, literals, escapes). Two things it accepts are caught by the
row count (glue/convert.py checks it): two values on one line (``{} {}``, ``{}null{}``) make
more rows than lines, and no two lines that each start with ``{`` and end with ``}`` can form one
value (a raw LF in a string is an error, and ``}`` then ``{`` needs a comma between them).

So when Arrow reads every unverified line with exactly one row each, each was a valid object with
the verdict the strict parse gives; when it refuses the block, the line it names (``in row N``)
is judged strictly and the block is read again, and after MAX_RETRIES the remaining lines are all
judged strictly (then the block converts exactly as the strict-first core did).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from glue import lines
from glue.lines import BOM, EXACT_INT_MAX, MAX_DEPTH, ParsedFile, classify_line

_WORDS = (b"NaN", b"Inf", b"\x00")
_QUOTE_AFTER = frozenset(b"{[:,")
_SPACE = frozenset(b" \t\r")


@dataclass
class Screened:
    """A block's strict verdicts so far: ``parsed`` as glue/lines.py parse_lines gives it, except that
    the valid lines flagged in ``unverified`` (aligned with ``parsed.valid``, 1: not yet judged) wait
    for Arrow's reader to confirm them."""

    parsed: ParsedFile
    unverified: bytearray = field(default_factory=bytearray)

    def pending(self) -> int:
        return self.unverified.count(1)

    def judge(self, index: int) -> bool:
        """Judge valid line ``index`` strictly; a bad one moves to the quarantine. True: it was bad."""
        p = self.parsed
        line, number = p.valid.pop(index), p.valid_line_numbers.pop(index)
        del self.unverified[index]
        probe = ParsedFile()
        if classify_line(line, number, probe):
            p.valid.insert(index, line)
            p.valid_line_numbers.insert(index, number)
            self.unverified.insert(index, 0)
            p.exact = p.exact or probe.exact
            return False
        p.quarantined.extend(probe.quarantined)
        p.blank += probe.blank
        return True

    def judge_all(self) -> None:
        """Judge every line still unverified strictly (the block then holds the strict-first verdicts)."""
        if not self.pending():
            return
        p = self.parsed
        valid, numbers, flags = p.valid, p.valid_line_numbers, self.unverified
        p.valid, p.valid_line_numbers, self.unverified = [], [], bytearray()
        for line, number, flag in zip(valid, numbers, flags, strict=True):
            if flag:
                classify_line(line, number, p)
            else:
                p.valid.append(line)
                p.valid_line_numbers.append(number)
        self.unverified = bytearray(len(p.valid))
        p.quarantined.sort(key=lambda q: q.line_number)


def _is_utf8(data: bytes) -> bool:
    # Arrow's validator over the block in place (no copy, unlike bytes.decode).
    offsets = pa.array([0, len(data)], pa.int64()).buffers()[1]
    try:
        pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data)]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _hits(data: bytes) -> list[int]:
    """Byte offsets (unordered, maybe repeated) in ``data`` whose line must be judged strictly."""
    out: list[int] = []
    for word in _WORDS:
        i = data.find(word)
        while i >= 0:
            out.append(i)
            i = data.find(word, i + 1)
    i = data.find(b"'")
    while i >= 0:
        j = i - 1
        while j >= 0 and data[j] in _SPACE:
            j -= 1
        if j >= 0 and data[j] in _QUOTE_AFTER:
            out.append(i)
        i = data.find(b"'", i + 1)
    return out


def _line_indexes(data: bytes, offsets: list[int]) -> set[int]:
    found: set[int] = set()
    line = prev = 0
    for pos in sorted(set(offsets)):
        line += data.count(b"\n", prev, pos)
        prev = pos
        found.add(line)
    return found


def screen_lines(data: bytes, first_line: int = 1, bom: bool = True) -> Screened:
    """Split a block (glue/lines.py split_lines rules) and judge strictly every line the screen
    flags; the others are valid rows pending Arrow's confirmation."""
    if bom and data.startswith(BOM):
        data = data[len(BOM) :]
    parts = lines.split_lines(data, bom=False)
    out = ParsedFile(lines=len(parts))
    screened = Screened(out)
    if not parts:
        return screened
    suspects = _line_indexes(data, _hits(data))
    suspects.update([i for i, line in enumerate(parts) if line[:1] != b"{" or line[-1:] != b"}"])
    if max(map(len, parts)) > MAX_DEPTH:  # only a line that long can hold MAX_DEPTH brackets
        suspects.update([i for i, line in enumerate(parts) if len(line) > MAX_DEPTH and _many_brackets(line)])
    if not _is_utf8(data):
        suspects.update(i for i, line in enumerate(parts) if not _utf8_line(line))
    valid, numbers, flags = out.valid, out.valid_line_numbers, screened.unverified
    start = 0
    for i in sorted(suspects):
        if i > start:  # a run of lines the screen lets through
            valid.extend(parts[start:i])
            numbers.extend(range(first_line + start, first_line + i))
            flags.extend(b"\x01" * (i - start))
        if classify_line(parts[i], first_line + i, out):
            flags.append(0)
        start = i + 1
    if start < len(parts):
        valid.extend(parts[start:])
        numbers.extend(range(first_line + start, first_line + len(parts)))
        flags.extend(b"\x01" * (len(parts) - start))
    return screened


def _many_brackets(line: bytes) -> bool:
    return line.count(b"[") + line.count(b"{") > MAX_DEPTH


def _utf8_line(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def may_be_inexact(table: pa.Table) -> bool:
    """Whether Arrow's table may hold a number only the exact reader keeps (the strict parse's
    ``exact``): an integer beyond 2**53 (int64 and decimal columns hold it exactly, a double column
    holds it as a double of at least 2**53, rounded), or a literal beyond a double's range (inf;
    the screen keeps NaN/Infinity away, so no other number is inf). False: no line's ``exact``
    can be True. True: the block's lines are judged strictly (a double of 2**53 or more may be
    a float literal, which is exact as written)."""
    return any(_leaf_big(chunk) for column in table.columns for chunk in column.chunks)


def _leaf_big(arr: pa.Array) -> bool:
    t = arr.type
    if pa.types.is_struct(t):
        return any(_leaf_big(arr.field(i)) for i in range(t.num_fields))
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _leaf_big(arr.flatten())
    if arr.null_count == len(arr):
        return False
    if pa.types.is_floating(t):
        return pc.max(pc.abs(arr)).as_py() >= EXACT_INT_MAX  # nan/inf never pass the screen; inf is max
    if pa.types.is_integer(t) or pa.types.is_decimal(t):
        bounds = pc.min_max(arr)
        return bounds["min"].as_py() < -EXACT_INT_MAX or bounds["max"].as_py() > EXACT_INT_MAX
    return False
