"""What the local run will upload: every file under --input, checked before anything starts."""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path


class InputError(RuntimeError):
    """The input directory cannot be used as given (one clear line for the user)."""


@dataclass(frozen=True)
class InputFile:
    path: Path
    key: str
    size: int
    trackable: bool  # suffix accepted by the tracker


def scan_input(root: Path, prefix: str, suffixes: tuple[str, ...]) -> list[InputFile]:
    """List files under ``root`` with their S3 keys (relative paths under ``prefix``).

    Fails on a missing/empty directory or an unreadable file, naming it, before any upload:
    a run that silently left a file out would report a clean reconciliation that is not."""
    if not root.exists():
        raise InputError(f"input directory {root} does not exist")
    if not root.is_dir():
        raise InputError(f"input {root} is not a directory")
    files: list[InputFile] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if name.startswith("."):
                continue  # editor/OS droppings (.DS_Store); never data
            try:
                # open, not os.access: root passes access checks, and a dangling symlink or a
                # permission problem must stop the run here, naming the file.
                with path.open("rb") as fh:
                    fh.read(1)
                size = path.stat().st_size
            except OSError as exc:
                raise InputError(f"input file {path} is not readable: {exc.strerror or exc}") from None
            key = f"{prefix.strip('/')}/{rel}" if prefix.strip("/") else rel
            files.append(InputFile(path=path, key=key, size=size, trackable=rel.lower().endswith(suffixes)))
    if not files:
        raise InputError(f"input directory {root} holds no files")
    if not any(f.trackable for f in files):
        raise InputError(f"input directory {root} holds no file ending in {', '.join(suffixes)}")
    return files


def count_lines(path: Path) -> int | None:
    """Lines the way the job counts them: LF-separated, a final line without newline counts,
    an empty file has none. None when a .gz cannot be decompressed (the job reports it)."""
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                data = fh.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error):
        return None
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
