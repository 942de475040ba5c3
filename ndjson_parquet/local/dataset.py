"""The local run's dataset folder: an Iceberg table on pyiceberg's SQL catalog (sqlite), read back
through DuckDB.

``<OUT>/catalog.db`` is the catalog, ``<OUT>/table/`` the table's location (data/ and metadata/
only), ``<OUT>/_runs/`` the run summaries, and the marker file names the table and the quarantine
folder, so ``ndjson-parquet sql OUT`` and ``ndjson-parquet schema OUT`` need nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glue.table import TableConfig, load_table, open_catalog
from glue.table_schema import DEFAULT_MODE

DATASET_MARKER = "_ndjson_parquet_local_run.json"
LOCAL_NAMESPACE = "ndjson_parquet"
LOCAL_TABLE = "dataset"
QUARANTINE_COLUMNS = {
    "source_file": "VARCHAR",
    "line_number": "BIGINT",
    "reason": "VARCHAR",
    "raw": "VARCHAR",
    "raw_truncated": "BOOLEAN",
    "manifest_id": "VARCHAR",
}


class DatasetError(RuntimeError):
    """The folder is not a dataset written by ``ndjson-parquet run`` (or it holds no table yet)."""


def local_table_config(
    out_dir: Path, namespace: str = LOCAL_NAMESPACE, name: str = LOCAL_TABLE, mode: str = DEFAULT_MODE
) -> TableConfig:
    out = out_dir.resolve()
    return TableConfig("sql", namespace, name, str(out / "table"), f"sqlite:///{out / 'catalog.db'}", mode)


def table_from_job_arguments(out_dir: Path, arguments: dict[str, str]) -> TableConfig:
    """The deployed job's table (its ``--TABLE_NAMESPACE``, ``--TABLE_NAME`` and ``--SCHEMA_MODE``
    default arguments, from infra/pipeline.yaml) on the local SQL catalog under ``out_dir``: the
    same wiring as in AWS, with only the catalog and the location local."""
    return local_table_config(
        out_dir,
        arguments.get("--TABLE_NAMESPACE") or LOCAL_NAMESPACE,
        arguments.get("--TABLE_NAME") or LOCAL_TABLE,
        arguments.get("--SCHEMA_MODE") or DEFAULT_MODE,
    )


@dataclass(frozen=True)
class LocalDataset:
    out_dir: Path
    table: TableConfig
    quarantine_dir: Path | None

    def write_marker(self) -> None:
        marker = {
            "written_by": "ndjson-parquet run",
            "table": {"namespace": self.table.namespace, "name": self.table.name, "mode": self.table.mode},
            "quarantine": str(self.quarantine_dir.resolve()) if self.quarantine_dir else None,
        }
        (self.out_dir / DATASET_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")

    @classmethod
    def open(cls, out_dir: Path) -> LocalDataset:
        marker_path = out_dir / DATASET_MARKER
        if not marker_path.is_file():
            raise DatasetError(f"{out_dir} is not a dataset written by `ndjson-parquet run` (no {DATASET_MARKER})")
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
        table = marker.get("table") or {}
        config = local_table_config(
            out_dir,
            table.get("namespace", LOCAL_NAMESPACE),
            table.get("name", LOCAL_TABLE),
            table.get("mode", DEFAULT_MODE),
        )
        quarantine = marker.get("quarantine")
        return cls(out_dir, config, Path(quarantine) if quarantine else None)

    def load(self) -> Any:
        if not (self.out_dir / "catalog.db").exists():
            raise DatasetError(f"{self.out_dir} holds no table yet (no manifest was committed)")
        table = load_table(open_catalog(self.table), self.table)
        if table is None:
            raise DatasetError(f"{self.out_dir}: table {'.'.join(self.table.identifier)} does not exist yet")
        return table

    def rows(self, columns: tuple[str, ...] = ("*",)) -> list[dict[str, Any]]:
        """The current snapshot's rows (tests and small tables; empty when nothing was committed)."""
        try:
            table = self.load()
        except DatasetError:
            return []
        return table.scan(selected_fields=columns).to_arrow().to_pylist()

    def connect(self) -> Any:
        """A DuckDB connection with the table's current snapshot as ``dataset`` and the quarantine
        records as ``quarantine`` (pyiceberg hands DuckDB Arrow data: no extension download)."""
        import duckdb

        con = duckdb.connect()
        table = self.load()
        con.register("dataset", table.scan().to_arrow())
        files = sorted(self.quarantine_dir.rglob("*.jsonl")) if self.quarantine_dir else []
        files = [f for f in files if "_staging" not in f.parts]
        if files:
            columns = ", ".join(f"'{k}': '{v}'" for k, v in QUARANTINE_COLUMNS.items())
            listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
            con.execute(
                f"create view quarantine as select * from read_json([{listed}], format='newline_delimited', "
                f"columns={{{columns}}})"
            )
        else:
            columns = ", ".join(f"null::{v} as {k}" for k, v in QUARANTINE_COLUMNS.items())
            con.execute(f"create view quarantine as select {columns} where false")
        return con
