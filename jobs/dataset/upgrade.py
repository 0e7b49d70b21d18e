"""A dataset's nights written in an earlier schema version, and bringing them to this one.

Version 2 gave `reconciled` the column `asked_on`; version 3 gave `timeline` fixed columns
and the run log its `current` column. A glob over nights of two versions is read by the
first file's columns (DuckDB, pandas) or refused (polars), so a run does not mix them:
`member-recon migrate ROOT` rewrites each older night, one partition at a time:

* `reconciled`: `asked_on` set to the night's own date (when version 1 asked every answer);
* `timeline`: the fixed columns, in their order, null where the night had none;
* `runs`: `current` marks, for each night, the last finished run (the one that published).
"""

from __future__ import annotations

import datetime as dt
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batch import UsageError
from batch.outputs import WORK, OutputSet, TableWriter, partition_dir, run_log_path, table_dir
from jobs.dataset.outputs import (
    DICTIONARY_COLUMNS,
    SCHEMA_METADATA,
    SCHEMA_VERSION,
    runs_schema,
    timeline_schema,
)

_VERSION_KEY = b"member_recon.schema_version"


def version_of(schema: Any) -> int:
    """The dataset schema version a file's Arrow schema says it follows (1 before it said)."""
    return int((schema.metadata or {}).get(_VERSION_KEY, b"1"))


def nights_of(root: Path, table: str) -> list[tuple[dt.date, Path]]:
    """A table's Parquet nights, oldest first."""
    return [
        (dt.date.fromisoformat(night.parent.name.removeprefix("run_date=")), night)
        for night in sorted(table_dir(root, table).glob(f"run_date=*/{table}.parquet"))
    ]


def nights_behind(root: Path) -> list[tuple[dt.date, Path]]:
    """The `reconciled` nights written in an earlier schema version, oldest first."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    now = int(SCHEMA_VERSION)
    return [(d, p) for d, p in nights_of(root, "reconciled") if version_of(pq.read_schema(p)) < now]


def check_schema(root: Path) -> None:
    """A root holding older nights is upgraded first, never mixed with this version's."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    behind = nights_behind(root)
    if behind:
        first, last = behind[0][0], behind[-1][0]
        versions = sorted({str(version_of(pq.read_schema(path))) for _, path in behind})
        raise UsageError(
            f"{root} holds {len(behind)} nights ({first} to {last}) in dataset schema "
            f"{' and '.join(versions)}, not {SCHEMA_VERSION}; upgrade them first",
            setting="migrate",
        )


def upgrade(root: Path) -> list[str]:
    """Rewrite every older night in this schema version; what was rewritten."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    done = []
    for day, night in nights_behind(root):
        table, added = pq.read_table(night), ""
        if "asked_on" not in table.column_names:
            added = f"asked_on = {day}, "
            at = table.column_names.index("checked_at") + 1
            dates = pa.array([day] * table.num_rows, pa.date32())
            table = table.add_column(at, pa.field("asked_on", pa.date32()), dates)
        rewrite(root, "reconciled", day, with_version(table))
        done.append(f"reconciled/{night.parent.name}: {added}schema {SCHEMA_VERSION}")
    fixed = timeline_schema()
    for day, night in nights_of(root, "timeline"):
        found = pq.read_schema(night)
        if version_of(found) < int(SCHEMA_VERSION) or found.names != fixed.names:
            rewrite(root, "timeline", day, conform(pq.read_table(night), fixed))
            done.append(f"timeline/{night.parent.name}: the fixed columns")
    if _mark_current(root):
        done.append("runs/runs.parquet: `current` marks each night's last finished run")
    return done


def conform(table: Any, schema: Any) -> Any:
    """`table` with exactly `schema`'s columns in its order: a column it lacks is null."""
    import pyarrow as pa  # noqa: PLC0415

    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(len(table), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def with_version(table: Any) -> Any:
    """`table` with this schema version in its metadata (the rest of its metadata kept)."""
    encoded = {key.encode(): value.encode() for key, value in SCHEMA_METADATA.items()}
    return table.replace_schema_metadata({**(table.schema.metadata or {}), **encoded})


def rewrite(root: Path, name: str, day: dt.date, table: Any) -> None:
    """Replace one night of a table by `table`, written aside and renamed over it."""
    final = partition_dir(root, name, day) / f"{name}.parquet"
    mode = stat.S_IMODE(final.stat().st_mode)
    with OutputSet(root / WORK, place=_to(final), mode=mode) as outputs:
        with TableWriter(
            outputs.aside(final.name), table.schema, "parquet", DICTIONARY_COLUMNS
        ) as writer:
            writer.write_table(table)
        outputs.publish()


def _mark_current(root: Path) -> bool:
    """Give a run log without `current` the column: each night's last `done` row is current."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    path = run_log_path(root)
    if not path.is_file() or "current" in pq.read_schema(path).names:
        return False
    schema = runs_schema()
    logged = pq.read_table(path)
    rows = logged.to_pylist()
    last_done = {row["run_date"]: i for i, row in enumerate(rows) if row.get("state") == "done"}
    marks = pa.array([last_done.get(row["run_date"]) == i for i, row in enumerate(rows)])
    table = conform(logged.append_column("current", marks), schema)
    mode = stat.S_IMODE(path.stat().st_mode)
    with OutputSet(root / WORK, place=_to(path), mode=mode) as outputs:
        pq.write_table(table, outputs.aside(path.name))
        outputs.publish()
    return True


def _to(final: Path) -> Callable[[str], Path]:
    return lambda _: final
