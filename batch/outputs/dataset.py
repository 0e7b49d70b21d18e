"""A dataset root: one folder per table, partitioned by night, and a run log written last.

    ROOT/<table>/run_date=2026-11-24/<table>.<ext>   one file per table and night
    ROOT/runs/runs.parquet                            the run log: one row per run, appended;
                                                      `current` marks each night's publisher
    ROOT/.work/2026-11-24/                            the night's progress store and files aside

Each table folder holds only that table's files, as Spark, Hive, Trino and DuckDB's hive
partitioning expect. A table's night is one file, renamed over the previous one, so a reader
sees the old night or the new one, never half. Files are written aside under `.work` with
names that end in `.partial-PID`: no `ROOT/**/*.parquet` glob (DuckDB and polars descend
into hidden folders) ever finds a copy or a half-written file.

The layout before this one (`ROOT/run_date=D/*`, `ROOT/runs.parquet`, `ROOT/_work/`) is
moved into this one by `migrate`; a run refuses a root still in it.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from batch.errors import UsageError
from batch.outputs.writer import OutputSet, dir_mode, make_dirs
from batch.store import check_folder, check_tree

WORK = ".work"
RUN_LOG = "runs"
_OLD_WORK = "_work"


def table_dir(root: Path, table: str) -> Path:
    return root / table


def partition_dir(root: Path, table: str, run_date: dt.date) -> Path:
    return root / table / f"run_date={run_date.isoformat()}"


def night_file(root: Path, name: str, run_date: dt.date) -> Path:
    """Where a night's file goes: `NAME.ext` is the night of the table `NAME`."""
    return partition_dir(root, name.split(".", 1)[0], run_date) / name


def work_dir(root: Path, run_date: dt.date) -> Path:
    return root / WORK / run_date.isoformat()


def run_log_path(root: Path) -> Path:
    return root / RUN_LOG / f"{RUN_LOG}.parquet"


def placer(root: Path, run_date: dt.date, mode: int) -> Callable[[str], Path]:
    """For `OutputSet`: each file of the night into its table's partition, folders made to match."""

    def place(name: str) -> Path:
        final = night_file(root, name, run_date)
        make_dirs(final.parent, dir_mode(mode), chmod_from=root)
        return final

    return place


def earlier_nights(root: Path, table: str, before: dt.date) -> list[tuple[dt.date, Path]]:
    """A table's partitions dated before `before`, newest first."""
    found = []
    for path in table_dir(root, table).glob("run_date=*"):
        try:
            day = dt.date.fromisoformat(path.name.removeprefix("run_date="))
        except ValueError:
            continue
        if path.is_symlink():
            raise UsageError(f"{path} is a link; a dataset's nights are never read through one")
        if day < before and path.is_dir():
            found.append((day, path))
    return sorted(found, reverse=True)


def is_old_layout(root: Path) -> bool:
    """Anything the old layout leaves, a half-done migration's `_work` copies included."""
    return (
        (root / "runs.parquet").is_file()
        or (root / "_work").is_dir()
        or any(path.is_dir() for path in root.glob("run_date=*"))
    )


def check_layout(root: Path) -> None:
    """A root written in the layout before this one is moved first, never mixed with it."""
    if is_old_layout(root):
        raise UsageError(
            f"{root} holds a dataset in the earlier layout (ROOT/run_date=…/); "
            "move it into one folder per table first",
            setting="migrate",
        )


def prepare_folders(out_dir: Path, root: Path | None, day: dt.date | None, mode: int) -> None:
    """The run's folder (and ROOT's), checked before any chmod could hide who controls them."""
    if out_dir.exists():
        check_folder(out_dir)
    if root is not None:
        if root.exists():
            check_folder(root)
        check_layout(root)
        if day is not None:
            check_root(root, day)
        prepare_root(root, mode)
        check_tree(root, out_dir)  # ROOT/.work/D: no link, nobody else's
        make_dirs(out_dir, 0o700)
    else:
        make_dirs(out_dir, dir_mode(mode), chmod_from=out_dir)
    check_folder(out_dir)


def check_root(root: Path, run_date: dt.date) -> None:
    """Before anything is asked: ROOT's folders and the night's partitions are no links and
    nobody else's (a planted `reconciled/run_date=D` link would take the night elsewhere)."""
    for child in sorted(root.iterdir()) if root.is_dir() else []:
        if child.is_symlink() or child.is_dir():
            check_folder(child)
            partition = child / f"run_date={run_date.isoformat()}"
            if os.path.lexists(partition):
                check_folder(partition)


def prepare_root(root: Path, mode: int) -> None:
    """ROOT with the folders' mode; its work folder owner-only (progress holds raw keys)."""
    make_dirs(root, dir_mode(mode), chmod_from=root)
    make_dirs(root / WORK, 0o700, chmod_from=root / WORK)


def append_run(
    root: Path,
    row: dict[str, Any],
    schema: Any,
    mode: int = 0o600,
    *,
    current: bool = False,
    key: str = "run_id",
) -> None:
    """Append one row to the run log, rewritten aside and renamed.

    With a `current` column in the schema, the row says whether its run published the
    night now in place; a `current` row takes the mark from every earlier row of its
    `run_date`, so that each night has at most one current run. A row with the same `key`
    (one run, told again: how its after-publish work ended) replaces the earlier one,
    never doubles it, and keeps its mark.
    """
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    path = run_log_path(root)
    make_dirs(path.parent, dir_mode(mode), chmod_from=root)
    marked = "current" in schema.names
    table = pa.Table.from_pylist([{**row, "current": current} if marked else row], schema=schema)
    if path.exists():
        logged = pq.read_table(path)
        for column in schema:  # a column added since the log began reads as null before
            if column.name not in logged.column_names:
                logged = logged.append_column(column, pa.nulls(len(logged), column.type))
        logged = logged.select(schema.names).cast(schema)
        if row.get(key) is not None:
            same = pc.fill_null(pc.equal(logged[key], row[key]), fill_value=False)
            if marked:
                current = current or bool(pc.any(pc.and_(same, logged["current"])).as_py())
                table = table.set_column(
                    schema.get_field_index("current"),
                    schema.field("current"),
                    pa.array([current], pa.bool_()),
                )
            logged = logged.filter(pc.invert(same))
        if marked and current:
            same_night = pc.equal(logged.column("run_date"), pa.scalar(row["run_date"]))
            no = pa.scalar(False)  # noqa: FBT003
            kept = pc.and_not(
                pc.fill_null(logged.column("current"), no), pc.fill_null(same_night, no)
            )
            at = schema.get_field_index("current")
            logged = logged.set_column(at, schema.field("current"), kept)
        table = pa.concat_tables([logged, table])
    with OutputSet(root / WORK, place=lambda _: path, mode=mode) as outputs:
        pq.write_table(table, outputs.aside(path.name))
        outputs.publish()


def migrate_layout(root: Path) -> list[str]:
    """Move a root from the earlier layout into this one; return what was moved.

    Safe to run again after an interruption: every step is a rename of what is still left.
    """
    done: list[str] = []
    old_log = root / "runs.parquet"
    if old_log.is_file():
        run_log_path(root).parent.mkdir(exist_ok=True)
        old_log.rename(run_log_path(root))
        done.append(f"runs.parquet -> {RUN_LOG}/runs.parquet")
    for night in sorted(root.glob("run_date=*")):
        day = dt.date.fromisoformat(night.name.removeprefix("run_date="))
        for file in sorted(night.iterdir()):
            if file.name.startswith("."):
                continue
            final = night_file(root, file.name, day)
            final.parent.mkdir(parents=True, exist_ok=True)
            _copy_mode(night, final.parent)
            _copy_mode(root, final.parent.parent)
            file.rename(final)
            done.append(f"{night.name}/{file.name} -> {final.relative_to(root)}")
        shutil.rmtree(night)
    old_work = root / _OLD_WORK
    for folder in sorted(old_work.glob("run_date=*")):
        target = work_dir(root, dt.date.fromisoformat(folder.name.removeprefix("run_date=")))
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        for file in folder.iterdir():
            if file.is_file() and not file.name.endswith(".parquet"):  # copies of the nights'
                file.rename(target / file.name)
        shutil.rmtree(folder)
        done.append(f"{_OLD_WORK}/{folder.name} -> {target.relative_to(root)}")
    if old_work.is_dir():
        shutil.rmtree(old_work)  # staging leftovers only
    return done


def _copy_mode(source: Path, target: Path) -> None:
    target.chmod(source.stat().st_mode & 0o777)
