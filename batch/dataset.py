"""A dataset root of dated Hive-style partitions, swapped in whole, with a log of runs.

    ROOT/run_date=2026-11-24/...      one partition per run date (what readers glob)
    ROOT/runs.parquet                 one row per run, appended
    ROOT/_work/run_date=2026-11-24/   the run's progress store and staged outputs

Readers skip `_work` (it starts with an underscore, as Spark and Hive expect, and
holds no file at the level `ROOT/*/file.parquet` globs).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

from batch.writer import OutputSet, fsync_path

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def partition_dir(root: Path, run_date: dt.date) -> Path:
    return root / f"run_date={run_date.isoformat()}"


def work_dir(root: Path, run_date: dt.date) -> Path:
    return root / "_work" / f"run_date={run_date.isoformat()}"


def earlier_partitions(root: Path, before: dt.date) -> list[tuple[dt.date, Path]]:
    """Published partitions dated before `before`, newest first."""
    found = []
    for path in root.glob("run_date=*"):
        try:
            day = dt.date.fromisoformat(path.name.removeprefix("run_date="))
        except ValueError:
            continue
        if day < before and path.is_dir():
            found.append((day, path))
    return sorted(found, reverse=True)


def publish_partition(staged: Path, final: Path) -> None:
    """Put `staged` in place of `final` in one step: readers see the old partition or the new."""
    if final.exists():
        _exchange(staged, final)
        shutil.rmtree(staged)  # now the old partition
    else:
        staged.rename(final)
    fsync_path(final.parent)


def stage_copy(files: list[Path], staging: Path) -> None:
    """Hard-link (or copy) published files into a fresh staging folder."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True, mode=0o700)
    for path in files:
        try:
            os.link(path, staging / path.name)
        except OSError:
            shutil.copy2(path, staging / path.name)


def append_run(root: Path, row: dict[str, Any], schema: Any) -> None:
    """Append one row to ROOT/runs.parquet, rewritten aside and renamed."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    path = root / "runs.parquet"
    table = pa.Table.from_pylist([row], schema=schema)
    if path.exists():
        table = pa.concat_tables([pq.read_table(path).cast(schema), table])
    with OutputSet(root) as outputs:
        pq.write_table(table, outputs.aside(path.name))
        outputs.publish()


def _exchange(a: Path, b: Path) -> None:
    """renameat2(RENAME_EXCHANGE): swap two paths atomically (Linux 3.15+, glibc 2.28+)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is not None:
        result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
        if result == 0:
            return
    # No atomic swap here: two renames, with a window of microseconds without a partition.
    aside = b.with_name(f"{b.name}.old-{os.getpid()}")
    b.rename(aside)
    a.rename(b)
    aside.rename(a)
