"""The dataset's finished nights: those the run log marks as published by a current run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from batch.outputs import earlier_nights, night_file, run_log_path

Night = tuple[Path, Path, dt.date]  # its reconciled and accounts files, and its date


def published_dates(root: Path) -> set[dt.date]:
    """The run dates whose current run finished (`state = done`), from the run log.

    A log older than `current` (before `migrate`) counts every `done` row.
    """
    import pyarrow.parquet as pq  # noqa: PLC0415

    path = run_log_path(root)
    if not path.is_file():
        return set()
    names = pq.read_schema(path).names
    columns = ["run_date", "state", *(["current"] if "current" in names else [])]
    return {
        row["run_date"]
        for row in pq.read_table(path, columns=columns).to_pylist()
        if row["state"] == "done" and row.get("current", True) is not False
    }


def finished_nights(root: Path, before: dt.date) -> Iterator[Night]:
    """Nights before `before` whose current run finished and whose files are there, newest first."""
    dates = published_dates(root)
    for day, _ in earlier_nights(root, "reconciled", before):
        files = (
            night_file(root, "reconciled.parquet", day),
            night_file(root, "accounts.parquet", day),
        )
        if day in dates and all(f.exists() for f in files):
            yield files[0], files[1], day


def previous_run(root: Path, run_date: dt.date) -> Night | None:
    """The latest earlier night of a finished run, to compare this one with."""
    return next(finished_nights(root, run_date), None)
