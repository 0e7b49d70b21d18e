"""A dataset's nights written in an earlier schema version, and bringing them to this one.

Schema version 2 gave `reconciled` the column `asked_on`. A glob over nights of both
versions is read by the first file's columns (DuckDB, pandas) or refused (polars), so a
run does not mix them: `member-recon migrate ROOT` rewrites each version 1 night with
`asked_on` set to the night's own date, which is when version 1 asked every answer.
"""

from __future__ import annotations

import datetime as dt
import stat
from collections.abc import Callable
from pathlib import Path

from batch.errors import UsageError
from batch.outputs.dataset import WORK, partition_dir, table_dir
from batch.outputs.writer import OutputSet, TableWriter
from jobs.dataset.outputs import DICTIONARY_COLUMNS, SCHEMA_METADATA, SCHEMA_VERSION

_VERSION_KEY = b"member_recon.schema_version"


def nights_behind(root: Path) -> list[tuple[dt.date, Path]]:
    """The `reconciled` nights written before `asked_on`, oldest first."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    found = []
    for night in sorted(table_dir(root, "reconciled").glob("run_date=*/reconciled.parquet")):
        metadata = pq.read_schema(night).metadata or {}
        if int(metadata.get(_VERSION_KEY, b"1")) < int(SCHEMA_VERSION):
            day = dt.date.fromisoformat(night.parent.name.removeprefix("run_date="))
            found.append((day, night))
    return found


def check_schema(root: Path) -> None:
    """A root holding version 1 nights is upgraded first, never mixed with version 2 ones."""
    behind = nights_behind(root)
    if behind:
        first, last = behind[0][0], behind[-1][0]
        raise UsageError(
            f"{root} holds {len(behind)} nights ({first} to {last}) in dataset schema 1, "
            "without asked_on; upgrade them first",
            setting="migrate",
        )


def upgrade(root: Path) -> list[str]:
    """Rewrite each version 1 night with `asked_on` (its own date); what was rewritten."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    done = []
    for day, night in nights_behind(root):
        table = pq.read_table(night)
        if "asked_on" not in table.column_names:
            at = table.column_names.index("checked_at") + 1
            dates = pa.array([day] * table.num_rows, pa.date32())
            table = table.add_column(at, pa.field("asked_on", pa.date32()), dates)
        metadata = {**(table.schema.metadata or {}), **_encoded(SCHEMA_METADATA)}
        table = table.replace_schema_metadata(metadata)
        mode = stat.S_IMODE(night.stat().st_mode)
        final = partition_dir(root, "reconciled", day) / night.name
        with OutputSet(root / WORK, place=_to(final), mode=mode) as outputs:
            with TableWriter(
                outputs.aside(night.name), table.schema, "parquet", DICTIONARY_COLUMNS
            ) as writer:
                writer.write_table(table)
            outputs.publish()
        done.append(f"reconciled/{night.parent.name}: asked_on = {day}, schema {SCHEMA_VERSION}")
    return done


def _to(final: Path) -> Callable[[str], Path]:
    return lambda _: final


def _encoded(metadata: dict[str, str]) -> dict[bytes, bytes]:
    return {key.encode(): value.encode() for key, value in metadata.items()}
