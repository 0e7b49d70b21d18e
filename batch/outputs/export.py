"""Writing the job's tables and the rejects from the store, in input order, and counting."""

from __future__ import annotations

import collections
import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from batch.contract import Job
from batch.outputs.views import Sheets
from batch.outputs.workbook import WorkbookWriter
from batch.outputs.writer import OutputSet, TableWriter, defuse_cell
from batch.store import ProgressStore

REJECT_COLUMNS = ("row", "reason")
FORMATS = ("parquet", "csv", "xlsx")


@dataclass(slots=True)
class Exported:
    """What the export wrote and counted."""

    paths: dict[str, Path] = field(default_factory=dict)  # table -> its file, still aside
    written: dict[str, int] = field(default_factory=dict)  # table -> rows
    counters: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    answered: int = 0


def export_tables(
    store: ProgressStore,
    job: Job,
    outputs: OutputSet,
    file_format: str,
    zone: str = "UTC",
) -> Exported:
    """Every table, one row group per store batch; items without an answer give no rows.

    As xlsx, the job's views of its tables are the sheets of one workbook named after the
    first table (batch.outputs.views), with the rejects and a summary.
    """
    tables = job.tables()
    exported = Exported()
    writers: dict[str, TableWriter] = {}
    sheets = None
    try:
        if file_format == "xlsx":
            book = WorkbookWriter(outputs.aside(f"{tables[0].name}.xlsx"), zone)
            exported.paths = {table.name: book.path for table in tables}
            sheets = Sheets(book, job, tables, store)
        else:
            for table in tables:
                path = outputs.aside(f"{table.name}.{file_format}")
                exported.paths[table.name] = path
                writers[table.name] = TableWriter(path, table.schema, file_format, table.dictionary)
        for batch in store.iter_items():
            rows: dict[str, list[dict[str, Any]]] = {table.name: [] for table in tables}
            for stored in batch:
                if stored.result is None:
                    continue
                exported.answered += 1
                # Judged when it was given; a carried or older answer not judged yet is judged now.
                verdict = stored.verdict or job.judge(stored.result)
                exported.counters.update(verdict.counters)
                if verdict.failure:
                    exported.failures[verdict.failure] += 1
                item_rows = job.rows(stored.key, stored.payload, stored.result)
                if sheets is not None:
                    sheets.add(item_rows)
                for name, table_rows in item_rows.items():
                    rows[name].extend(table_rows)
            if sheets is not None:
                sheets.flush()
            for name, writer in writers.items():
                writer.write(rows[name])
        if sheets is not None:
            sheets.write_rejects(store)
            counts = store.counts()
            rows_read = int(store.get_meta("rows_total") or 0)
            sheets.write_summary(
                {"rows": rows_read, "rejected": counts["rejected"], "items": counts["items"]}
                | dict(exported.counters)
            )
    finally:
        for writer in writers.values():
            writer.close()
        if sheets is not None:
            sheets.close()
            sheets.book.close()
    if sheets is not None:
        exported.written = {table.name: sheets.written[table.name] for table in tables}
    else:
        exported.written = {name: writer.rows for name, writer in writers.items()}
    return exported


def write_rejects(path: Path, store: ProgressStore, job: Job) -> None:
    """Rejected rows with their values as stored (as the job let them show), UTF-8 with a BOM."""
    columns: list[str] = json.loads(store.get_meta("columns") or "[]")
    header = list(job.reject_values(dict.fromkeys(columns)).keys())  # names only
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*REJECT_COLUMNS, *header])
        for batch in store.iter_rejects():
            writer.writerows(
                [r.row, defuse_cell(r.reason), *(defuse_cell(r.raw.get(c) or "") for c in header)]
                for r in batch
            )


def remove_stale(out_dir: Path, job: Job, published: tuple[Path, ...]) -> None:
    """A run in another format leaves none of the last format's table files behind."""
    for table in job.tables():
        for ext in FORMATS:
            path = out_dir / f"{table.name}.{ext}"
            if path not in published:
                path.unlink(missing_ok=True)
