"""Tables as one .xlsx workbook for people: a sheet per table, typed cells (XlsxWriter).

* strings are text cells, always: an identifier such as `00003` keeps its zeros;
* dates are date cells; timestamps are shown in a named zone (`2026-11-24 02:13:05 KST` in Seoul);
* the header row is frozen and filters are on; the sheet is streamed in constant memory.

A sheet holds at most 1,048,575 rows under its header (Excel's limit); more go on to a
sheet named `table (2)`, and so on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

MAX_ROWS = 1_048_575  # under the header
_WIDTHS = {"string": 18, "date32[day]": 12, "bool": 10}


class Workbook:
    """One .xlsx file; `sheet(name, schema)` gives a writer with TableWriter's interface."""

    def __init__(self, path: Path, zone: str = "UTC") -> None:
        import xlsxwriter  # noqa: PLC0415  (lazy: only xlsx outputs need it)

        self.path = path
        self.zone = ZoneInfo(zone)
        self.book: Any = xlsxwriter.Workbook(
            str(path),
            {"constant_memory": True, "tmpdir": str(path.parent), "strings_to_numbers": False},
        )
        self.header = self.book.add_format({"bold": True, "bg_color": "#EEF1F5", "bottom": 1})
        self.date = self.book.add_format({"num_format": "yyyy-mm-dd"})
        self._stamps: dict[str, Any] = {}

    def sheet(self, name: str, schema: Any) -> Sheet:
        return Sheet(self, name, schema)

    def stamp_format(self, zone_name: str) -> Any:
        """A timestamp format that names its zone, e.g. `yyyy-mm-dd hh:mm:ss "CET"`."""
        if zone_name not in self._stamps:
            number = "yyyy-mm-dd hh:mm:ss" + (f' "{zone_name}"' if zone_name else "")
            self._stamps[zone_name] = self.book.add_format({"num_format": number})
        return self._stamps[zone_name]

    def close(self) -> None:
        self.book.close()


class Sheet:
    """Writes rows of one table into its sheet (and continuation sheets past Excel's limit)."""

    def __init__(self, book: Workbook, name: str, schema: Any) -> None:
        self._book, self._name, self.schema = book, name, schema
        self._kinds = [_kind(field.type) for field in schema]
        self.rows = 0
        self._sheets = 0
        self._sheet: Any = None
        self._row = 0
        self._open_sheet()

    def _open_sheet(self) -> None:
        self._close_sheet()
        self._sheets += 1
        title = self._name if self._sheets == 1 else f"{self._name} ({self._sheets})"
        sheet = self._book.book.add_worksheet(title[:31])
        for col, (field, kind) in enumerate(zip(self.schema, self._kinds, strict=True)):
            width = 22 if kind == "timestamp" else _WIDTHS.get(str(field.type), 14)
            sheet.set_column(col, col, max(width, len(field.name) + 4))
            sheet.write_string(0, col, field.name, self._book.header)
        sheet.freeze_panes(1, 0)
        self._sheet, self._row = sheet, 0

    def _close_sheet(self) -> None:
        if self._sheet is not None:
            self._sheet.autofilter(0, 0, max(self._row, 1), len(self._kinds) - 1)

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        names = self.schema.names
        for row in rows:
            if self._row >= MAX_ROWS:
                self._open_sheet()
            self._row += 1
            for col, (name, kind) in enumerate(zip(names, self._kinds, strict=True)):
                self._cell(self._row, col, kind, row.get(name))
        self.rows += len(rows)

    def write_table(self, table: Any) -> None:
        self.write(table.cast(self.schema).to_pylist())

    def _cell(self, row: int, col: int, kind: str, value: Any) -> None:
        sheet, book = self._sheet, self._book
        if value is None:
            return
        if kind == "string":
            sheet.write_string(row, col, str(value))
        elif kind == "bool":
            sheet.write_boolean(row, col, bool(value))
        elif kind == "number":
            sheet.write_number(row, col, value)
        elif kind == "date":
            sheet.write_datetime(row, col, dt.datetime.combine(value, dt.time()), book.date)
        elif kind == "timestamp":
            local = value.astimezone(book.zone) if value.tzinfo else value
            stamp = book.stamp_format(local.tzname() or "")  # naive: no zone to name
            sheet.write_datetime(row, col, local.replace(tzinfo=None), stamp)
        else:
            sheet.write_string(row, col, str(value))

    def close(self) -> None:
        self._close_sheet()


def _kind(arrow_type: Any) -> str:
    text = str(arrow_type)
    if text in ("string", "large_string"):
        return "string"
    if text == "bool":
        return "bool"
    if text.startswith(("int", "uint", "double", "float")):
        return "number"
    if text.startswith("date"):
        return "date"
    if text.startswith("timestamp"):
        return "timestamp"
    return "other"
