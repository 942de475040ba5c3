"""The closing table and its JSON twin: what a local run did and whether it reconciles."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class RunReport:
    files: int = 0
    files_skipped: int = 0
    files_set_aside: int = 0  # files the job set aside whole (one quarantine record each)
    bytes: int = 0
    lines: int = 0
    rows: int = 0
    # Rows in the table's current snapshot, counted there (not from the run summaries).
    table_rows: int = 0
    quarantined: int = 0
    blank: int = 0
    manifests: int = 0
    manifests_failed: int = 0
    # Succeeded manifests by the engine that converted them (the run summaries' ``engine``).
    engines: dict[str, int] = field(default_factory=lambda: {"lambda": 0, "glue": 0})
    # Did the run start a SparkSession (a JVM)? Only a manifest sent to Glue starts one.
    spark_started: bool = False
    elapsed_seconds: float = 0.0
    output: str = ""
    quarantine: str = ""
    problems: list[str] = field(default_factory=list)
    unsupported_resources: list[str] = field(default_factory=list)

    @property
    def mb_per_second(self) -> float:
        return (self.bytes / 1e6) / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def reconciled(self) -> bool:
        return (
            not self.problems
            and self.lines == self.rows + self.quarantined + self.blank
            and self.table_rows == self.rows
        )

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["mb_per_second"] = round(self.mb_per_second, 3)
        out["elapsed_seconds"] = round(self.elapsed_seconds, 3)
        out["reconciled"] = self.reconciled
        return out

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    def render_table(self) -> str:
        rows = [
            (
                "files",
                f"{self.files:,}"
                + (f" (+{self.files_skipped} skipped)" if self.files_skipped else "")
                + (f" ({self.files_set_aside} set aside)" if self.files_set_aside else ""),
            ),
            ("bytes", f"{self.bytes:,}"),
            ("lines", f"{self.lines:,}"),
            ("rows", f"{self.rows:,}"),
            ("rows in table", f"{self.table_rows:,}"),
            ("quarantined", f"{self.quarantined:,}"),
            ("blank", f"{self.blank:,}"),
            (
                "manifests",
                f"{self.manifests:,}" + (f" ({self.manifests_failed} failed)" if self.manifests_failed else ""),
            ),
            (
                "engines",
                ", ".join(f"{name} {n:,}" for name, n in self.engines.items())
                + ("" if self.spark_started else " (no JVM)"),
            ),
            ("elapsed", f"{self.elapsed_seconds:.1f} s"),
            ("MB/s", f"{self.mb_per_second:.2f}"),
            ("reconciled", "yes" if self.reconciled else "NO"),
        ]
        width = max(len(k) for k, _ in rows)
        vwidth = max(len(v) for _, v in rows)
        line = f"+-{'-' * width}-+-{'-' * vwidth}-+"
        body = [line] + [f"| {k.ljust(width)} | {v.rjust(vwidth)} |" for k, v in rows] + [line]
        for problem in self.problems:
            body.append(f"problem: {problem}")
        return "\n".join(body)
