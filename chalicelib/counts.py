"""Per-file line counts: one entry of the Glue run summary's ``files``. The Glue job fills them
(glue/convert.py) and writes them (glue/job.py); finalize reads them back and checks them
(chalicelib/workflow/summary.py).

Standard library only, like chalicelib/manifest.py: it is imported inside Spark tasks too (the
Glue zip ships chalicelib/, glue/shipping.py), where only the job's own dependencies exist.

A file the job set aside whole (glue/isolation.py) counts as one unit: ``lines = 1, rows = 0,
quarantined = 1`` (its one quarantine record), ``blank = 0``, and ``set_aside`` holds the reason."""

from __future__ import annotations

from dataclasses import dataclass

COUNTS = ("lines", "rows", "quarantined", "blank")


@dataclass
class FileCounts:
    uri: str
    lines: int = 0
    rows: int = 0
    quarantined: int = 0
    blank: int = 0
    bytes: int = 0
    set_aside: str | None = None  # the reason when the job set the file aside whole

    def reconciles(self) -> bool:
        """Invariant 4: every line is a row, a quarantined line or a blank one, exactly once."""
        return self.lines == self.rows + self.quarantined + self.blank

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in COUNTS}
