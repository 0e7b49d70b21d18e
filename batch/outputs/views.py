"""The workbook's sheets (`--format xlsx`): the job's views of its tables, the rejects, a summary.

The summary sheet comes first but is filled last, once every count is known: XlsxWriter
streams each sheet to its own temporary file, so sheets may be written in any order.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Mapping, Sequence
from typing import Any

from batch.contract import REJECTS_VIEW, SUMMARY_VIEW, Job, Table, View
from batch.outputs.workbook import Sheet, WorkbookWriter, text_width
from batch.store import ProgressStore

Row = dict[str, Any]


def default_views(tables: Sequence[Table]) -> list[View]:
    """One sheet per table, then the rejects: what a job that names no views gets."""
    return [*(View(table.name, table.name) for table in tables), View("rejects", REJECTS_VIEW)]


class Sheets:
    """Writes each item's rows into every view they belong to; counts each table's rows."""

    def __init__(
        self, book: WorkbookWriter, job: Job, tables: Sequence[Table], store: ProgressStore
    ) -> None:
        import pyarrow as pa  # noqa: PLC0415  (lazy: keeps --help fast)

        self.book = book
        self._first = tables[0].name
        schemas = {table.name: table.schema for table in tables}
        columns: list[str] = json.loads(store.get_meta("columns") or "[]")
        self._reject_header = list(job.reject_values(dict.fromkeys(columns)).keys())
        rejects = pa.schema(
            [("row", pa.int64()), ("reason", pa.string())]
            + [(name, pa.string()) for name in self._reject_header]
        )
        self.written: collections.Counter[str] = collections.Counter()
        self._summary: tuple[View, Any] | None = None
        self._rejects: tuple[View, Sheet] | None = None
        self._views: list[tuple[View, Sheet, list[Row]]] = []
        for view in list(job.views()) or default_views(tables):
            if view.table == SUMMARY_VIEW:
                self._summary = (view, book.add_worksheet(view.title))
            elif view.table == REJECTS_VIEW:
                self._rejects = (view, book.sheet(view.title, rejects))
            else:
                own, first = schemas[view.table], schemas[self._first]
                fields = [own.field(n) if n in own.names else first.field(n) for n in view.columns]
                schema = pa.schema(fields) if fields else own
                self._views.append((view, book.sheet(view.title, schema), []))

    def add(self, rows: Mapping[str, Sequence[Row]]) -> None:
        """One item's rows by table; a row of another table borrows the item's first row."""
        first_rows = rows.get(self._first) or ()
        first = first_rows[0] if first_rows else {}
        for view, _, buffer in self._views:
            for row in rows.get(view.table, ()):
                if view.where is None or row.get(view.where[0]) in view.where[1]:
                    buffer.append({**first, **row})

    def flush(self) -> None:
        for view, sheet, buffer in self._views:
            sheet.write(buffer)
            if view.where is None:
                self.written[view.table] += len(buffer)
            buffer.clear()

    def write_rejects(self, store: ProgressStore) -> None:
        if self._rejects is None:
            return
        header, sheet = self._reject_header, self._rejects[1]
        for batch in store.iter_rejects():
            sheet.write(
                [
                    {"row": r.row, "reason": r.reason} | {c: r.raw.get(c) for c in header}
                    for r in batch
                ]
            )

    def write_summary(self, counts: Mapping[str, int]) -> None:
        """The summary sheet: the job's counts in its words, then each sheet's rows."""
        if self._summary is None:
            return
        view, sheet = self._summary
        book = self.book
        lines: list[tuple[str, int | str | None]] = [("", "count · 건수")]
        lines += [(label, counts.get(key, 0)) for key, label in view.labels]
        lines += [("", None), ("sheet · 시트", "rows · 행")]
        lines += [(v.title, s.rows) for v, s, _ in self._views]
        if self._rejects is not None:
            lines.append((self._rejects[0].title, self._rejects[1].rows))
        for number, (label, value) in enumerate(lines):
            heading = isinstance(value, str)
            sheet.write_string(number, 0, label, book.header if heading else None)
            if isinstance(value, int):
                sheet.write_number(number, 1, value, book.thousands)
            elif value is not None:
                sheet.write_string(number, 1, value, book.header)
        sheet.set_column(0, 0, max(text_width(label) for label, _ in lines) + 2)
        sheet.set_column(1, 1, 14)
        sheet.set_landscape()
        sheet.fit_to_pages(1, 0)

    def close(self) -> None:
        for _, sheet, _ in self._views:
            sheet.close()
        if self._rejects is not None:
            self._rejects[1].close()
