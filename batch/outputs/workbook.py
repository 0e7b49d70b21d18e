"""Tables as one .xlsx workbook for people: a sheet per table, typed cells (XlsxWriter).

* strings are text cells, always: an identifier such as `00003` keeps its zeros;
* dates are date cells; timestamps are shown in a named zone (`2026-11-24 02:13:05 KST` in Seoul);
* booleans are TRUE/FALSE cells (with a format that shows them so in LibreOffice too);
* the header row is frozen, filters are on, every column is as wide as its widest value
  (a wide character counts twice, up to MAX_WIDTH), and a sheet prints landscape, one page
  wide, the header on every page; the sheet is streamed in constant memory.

Sheet names are cut to Excel's 31 characters and lose the characters it forbids
(`sheet_title`).

A sheet holds at most 1,048,575 rows under its header (Excel's limit); more go on to a
sheet named `table (2)`, and so on.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

MAX_ROWS = 1_048_575  # under the header
MAX_TITLE = 31  # Excel's limit on a sheet's name
MAX_WIDTH = 100  # characters: an 88-character CI fits, a stray paragraph does not
_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_WIDTHS = {"date": 10, "bool": 5, "timestamp": 24}


def sheet_title(name: str) -> str:
    """A name Excel accepts: none of []:*?/\\, no leading or trailing quote, 31 characters."""
    return _FORBIDDEN.sub("_", name).strip("'")[:MAX_TITLE].strip() or "sheet"


def text_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: a wide (Korean, CJK) character takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


class WorkbookWriter:
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
        # A boolean cell is TRUE/FALSE in Excel; LibreOffice shows it as 1/0 without this.
        self.boolean = self.book.add_format({"num_format": '"TRUE";"TRUE";"FALSE"'})
        self.thousands = self.book.add_format({"num_format": "#,##0"})
        self.titles: set[str] = set()
        self._stamps: dict[str, Any] = {}

    def sheet(self, name: str, schema: Any) -> Sheet:
        return Sheet(self, name, schema)

    def add_worksheet(self, name: str) -> Any:
        """A new sheet under a name Excel accepts and no other sheet has (case aside)."""
        title, number = sheet_title(name), 1
        while title.lower() in self.titles:
            number += 1
            suffix = f" ({number})"
            title = sheet_title(name)[: MAX_TITLE - len(suffix)] + suffix
        self.titles.add(title.lower())
        return self.book.add_worksheet(title)

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

    def __init__(self, book: WorkbookWriter, name: str, schema: Any) -> None:
        self._book, self._name, self.schema = book, name, schema
        self._kinds = [_kind(field.type) for field in schema]
        self.rows = 0
        self._sheets = 0
        self._sheet: Any = None
        self._row = 0
        self._widths: list[int] = []
        self._open_sheet()

    def _open_sheet(self) -> None:
        self._close_sheet()
        self._sheets += 1
        sheet = self._book.add_worksheet(self._name)  # a continuation gets " (2)"
        self._widths = []
        for col, (field, kind) in enumerate(zip(self.schema, self._kinds, strict=True)):
            # The header's filter button takes about two characters of its own.
            self._widths.append(max(text_width(field.name) + 3, _WIDTHS.get(kind, 0)))
            sheet.write_string(0, col, field.name, self._book.header)
        sheet.freeze_panes(1, 0)
        sheet.set_landscape()
        sheet.fit_to_pages(1, 0)  # one page wide, as many long as it takes
        sheet.repeat_rows(0)
        self._sheet, self._row = sheet, 0

    def _close_sheet(self) -> None:
        if self._sheet is not None:
            for col, width in enumerate(self._widths):
                self._sheet.set_column(col, col, min(width, MAX_WIDTH) + 1)
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
        if kind in ("string", "other"):
            text = str(value)
            self._widths[col] = max(self._widths[col], text_width(text))
            sheet.write_string(row, col, text)
        elif kind == "bool":
            sheet.write_boolean(row, col, bool(value), book.boolean)
        elif kind == "number":
            self._widths[col] = max(self._widths[col], len(f"{value:,}"))
            sheet.write_number(row, col, value)
        elif kind == "date":
            sheet.write_datetime(row, col, dt.datetime.combine(value, dt.time()), book.date)
        elif kind == "timestamp":
            local = value.astimezone(book.zone) if value.tzinfo else value
            stamp = book.stamp_format(local.tzname() or "")  # naive: no zone to name
            sheet.write_datetime(row, col, local.replace(tzinfo=None), stamp)

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
