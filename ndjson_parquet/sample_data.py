"""Deterministic generator of realistic NDJSON event files (nested objects, arrays, optional
fields, unicode, timestamps) plus a controlled share of bad lines, for ``make run``, tests and
the benchmark. Same seed, same bytes: it uses its own ``random.Random`` and no wall clock."""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

_EVENTS = ("page_view", "click", "add_to_cart", "purchase", "signup", "search", "logout")
_COUNTRIES = ("DE", "FR", "US", "JP", "BR", "IN", "ZA", "SE", "CN", "EG")
_NAMES = ("Zoë", "José", "Łukasz", "Søren", "Ana", "Mikko", "Ayşe", "François", "李雷", "Дмитрий", "Nguyễn", "😀 emoji")
_PAGES = ("/", "/shop", "/shop/item", "/cart", "/checkout", "/help", "/search?q=caf%C3%A9")
# Bad lines a real producer emits: truncation, trailing garbage, single quotes, NaN, non-objects.
_BAD_LINES = (
    '{"event_id": "truncated", "user": {"id": 1',
    "{'event_id': 'single-quoted'}",
    '{"event_id": "trailing"} garbage',
    '{"event_id": "nan", "value": NaN}',
    '["an", "array", "not", "an", "object"]',
    '"just a string"',
    "not json at all",
)
_EPOCH = datetime(2024, 5, 1, tzinfo=UTC)


@dataclass(frozen=True)
class GeneratedFile:
    path: Path
    lines: int
    bad_lines: int
    blank_lines: int
    size: int


def make_event(rng: random.Random, seq: int) -> dict:
    """One event record; optional fields really are optional (absent, not null)."""
    ts = _EPOCH + timedelta(seconds=rng.randrange(0, 86400 * 30), microseconds=rng.randrange(0, 10**6))
    event: dict = {
        "event_id": f"evt-{seq:09d}-{rng.getrandbits(32):08x}",
        "event_type": rng.choice(_EVENTS),
        "ts": ts.isoformat().replace("+00:00", "Z"),
        "user": {
            "id": rng.randrange(1, 10**7),
            "name": rng.choice(_NAMES),
            "country": rng.choice(_COUNTRIES),
            "premium": rng.random() < 0.2,
        },
        "page": {"path": rng.choice(_PAGES), "load_ms": round(rng.uniform(20, 3000), 2)},
        "tags": [rng.choice(("a", "b", "beta", "ünïcode", "x-y")) for _ in range(rng.randrange(0, 4))],
        "value": round(rng.uniform(0, 500), 2),
    }
    if event["event_type"] in ("add_to_cart", "purchase"):
        event["items"] = [
            {
                "sku": f"SKU-{rng.randrange(1000, 9999)}",
                "qty": rng.randrange(1, 5),
                "price": round(rng.uniform(1, 200), 2),
            }
            for _ in range(rng.randrange(1, 5))
        ]
    if rng.random() < 0.3:
        event["referrer"] = rng.choice(("https://example.com/ä", "https://news.example.org", "email"))
    if rng.random() < 0.1:
        event["session"] = {"id": rng.getrandbits(48), "device": {"os": rng.choice(("ios", "android", "linux"))}}
    return event


def generate_file(
    path: Path, target_bytes: int, bad_rate: float, rng: random.Random, seq_start: int = 0, gz: bool = False
) -> GeneratedFile:
    lines: list[str] = []
    size = bad = blank = 0
    seq = seq_start
    while size < target_bytes:
        roll = rng.random()
        if roll < bad_rate:
            line = rng.choice(_BAD_LINES)
            bad += 1
        elif roll < bad_rate + 0.001:
            line = ""
            blank += 1
        else:
            line = json.dumps(make_event(rng, seq), ensure_ascii=False, separators=(",", ":"))
            seq += 1
        lines.append(line)
        size += len(line.encode("utf-8")) + 1
    data = ("\n".join(lines) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path.write_bytes(gzip.compress(data, compresslevel=6, mtime=0))
    else:
        path.write_bytes(data)
    return GeneratedFile(path=path, lines=len(lines), bad_lines=bad, blank_lines=blank, size=path.stat().st_size)


def generate(
    out_dir: Path, files: int, mb: float, bad_rate: float, seed: int, gzip_every: int = 0, prefix: str = "events"
) -> list[GeneratedFile]:
    """Write ``files`` NDJSON files of about ``mb`` MB each; every ``gzip_every``-th file is gzipped (0: none)."""
    if files < 1:
        raise ValueError("files must be >= 1")
    if mb <= 0:
        raise ValueError("mb must be > 0")
    if not 0 <= bad_rate < 1:
        raise ValueError("bad_rate must be in [0, 1)")
    rng = random.Random(seed)
    out: list[GeneratedFile] = []
    for i in range(files):
        gz = gzip_every > 0 and (i + 1) % gzip_every == 0
        name = f"{prefix}-{i:05d}.ndjson" + (".gz" if gz else "")
        out.append(generate_file(out_dir / name, int(mb * 1024 * 1024), bad_rate, rng, seq_start=i * 10**6, gz=gz))
    return out
