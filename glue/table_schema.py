"""The table's schema policy: what a manifest's inferred schema may change in the table's.

Pure Arrow, no catalog: ``evolve(table, manifest, mode)`` returns the schema the manifest's rows
are conformed to (glue/schema.py ``conform_table``: what does not fit goes to ``_rescued_data``
under its key, the row is kept) and the changes the commit applies to the table.

The modes follow Auto Loader's ``schemaEvolutionMode``:

- ``addNewColumns`` (default): a new field becomes a column, nested ones too; a column keeps its
  type, except where Iceberg can promote it (int -> long, float -> double, decimal precision
  widening). A value of another type (a double in a long column, a string in a struct) is rescued.
  JSON integers infer as long and Iceberg cannot promote long -> double: fractions arriving for a
  long column are rescued unless an explicit schema declared the column double.
- ``rescue``: the schema never changes once the table exists; new fields are rescued.
- ``failOnNewColumns``: a manifest that would change the schema raises ``SchemaChangeRefused``
  naming the fields, and commits nothing.

Names are matched as Spark, Athena and Glue match them, ignoring case: the table's casing wins
and a manifest's other casing of a column is rescued (docs/json-shapes.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from glue.rescue import PROVENANCE, RESCUED

MODES = ("addNewColumns", "rescue", "failOnNewColumns")
DEFAULT_MODE = "addNewColumns"


class SchemaChangeRefused(ValueError):
    """``failOnNewColumns``: the manifest brings fields the table does not have."""

    def __init__(self, changes: list[Change]) -> None:
        self.changes = changes
        named = ", ".join(c.describe() for c in changes)
        super().__init__(f"schema mode failOnNewColumns: the manifest would change the table's schema: {named}")


@dataclass(frozen=True)
class Change:
    """One schema change: ``kind`` is ``added`` or ``widened``; ``path`` dotted, lists as ``[]``."""

    kind: str
    path: str
    type: str

    def describe(self) -> str:
        return f"{self.kind} {self.path} {self.type}"


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"schema mode {mode!r} is not one of {', '.join(MODES)}")
    return mode


def _promoted(old: pa.DataType, new: pa.DataType) -> pa.DataType | None:
    """The type Iceberg lets ``old`` become so that ``new`` values fit, or None (keep ``old``)."""
    if pa.types.is_integer(old) and pa.types.is_integer(new) and new.bit_width > old.bit_width:
        return pa.int64()  # int -> long
    if pa.types.is_floating(old) and pa.types.is_floating(new) and new.bit_width > old.bit_width:
        return pa.float64()  # float -> double
    if (
        pa.types.is_decimal(old)
        and pa.types.is_decimal(new)
        and old.scale == new.scale
        and new.precision > old.precision
    ):
        return pa.decimal128(new.precision, old.scale)  # precision widens, scale never changes
    return None


def _merge(old: pa.DataType, new: pa.DataType, path: str, add: bool, changes: list[Change]) -> pa.DataType:
    if pa.types.is_struct(old) and pa.types.is_struct(new):
        fields = list(old)
        by_lower = {f.name.lower(): i for i, f in enumerate(fields)}
        for f in new:
            at = by_lower.get(f.name.lower())
            sub = f"{path}.{f.name}" if path else f.name
            if at is None:
                if add:
                    fields.append(pa.field(f.name, f.type))
                    by_lower[f.name.lower()] = len(fields) - 1
                    changes.append(Change("added", sub, str(f.type)))
                continue
            if fields[at].name != f.name:
                continue  # another casing of a column: its values are rescued, the table's name wins
            merged = _merge(fields[at].type, f.type, sub, add, changes)
            fields[at] = pa.field(fields[at].name, merged)
        return pa.struct(fields)
    if pa.types.is_list(old) and pa.types.is_list(new):
        return pa.list_(_merge(old.value_type, new.value_type, f"{path}[]", add, changes))
    if old == new:
        return old
    promoted = _promoted(old, new) if add else None
    if promoted is not None:
        changes.append(Change("widened", path, f"{old} -> {promoted}"))
        return promoted
    return old  # a column keeps its type; values that do not fit are rescued


def data_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f for f in schema if f.name not in PROVENANCE and f.name != RESCUED])


def evolve(table: pa.Schema | None, manifest: pa.Schema, mode: str = DEFAULT_MODE) -> tuple[pa.Schema, list[Change]]:
    """The data fields the manifest is conformed to, and what that changes in the table.

    ``table``: the table's data fields (None: no table yet, the manifest's schema creates it in
    every mode). Provenance and ``_rescued_data`` are not data fields: callers add them."""
    check_mode(mode)
    manifest = data_schema(manifest)
    if table is None:
        return manifest, [Change("added", f.name, str(f.type)) for f in manifest]
    table = data_schema(table)
    changes: list[Change] = []
    merged = _merge(pa.struct(list(table)), pa.struct(list(manifest)), "", mode != "rescue", changes)
    if mode == "failOnNewColumns" and changes:
        raise SchemaChangeRefused(changes)
    return pa.schema(list(merged)), changes


def _type_within(part: pa.DataType, table: pa.DataType) -> bool:
    if pa.types.is_struct(part) and pa.types.is_struct(table):
        fields = {f.name: f.type for f in table}
        return all(f.name in fields and _type_within(f.type, fields[f.name]) for f in part)
    if pa.types.is_list(part) and pa.types.is_list(table):
        return _type_within(part.value_type, table.value_type)
    return part == table


def fits_within(part: pa.Schema, table: pa.Schema) -> bool:
    """Whether a data file written with ``part`` reads correctly as the table ``table``: every
    column (nested fields too) is the table's, same name and type; missing ones read as null."""
    return _type_within(pa.struct(list(part)), pa.struct(list(table)))
