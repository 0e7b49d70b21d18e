"""Spreadsheet rows as their cells show them: .xlsx by openpyxl, .xls and .ods by calamine.

openpyxl reads .xlsx a row at a time (memory stays flat) and gives each cell its number
format; python-calamine is about 14 times faster but holds a whole sheet in memory and
gives values without formats (bench/sheets.py measures both). So .xlsx, the common case
and the one that can be a million rows, streams with openpyxl, once its parts are measured
(batch.inputs.bounds: no zip bomb gets loaded); .xls (65,536 rows at most) and .ods go
through calamine.

A cell becomes the text it shows, as far as the reader can know it:

* text as is; an empty cell is None;
* a date is an ISO date (`1960-01-01`), a date with a time `1960-01-01 13:45:00`;
* TRUE / FALSE for booleans, as Excel and LibreOffice show them and export them to CSV;
* a whole number without `.0`; from .xlsx, a number whose format is made of zeros
  keeps them (`00000000` shows 1 as `00000001`, `0.00` shows 3.5 as `3.50`), and one
  with thousands separators, percent or currency shows as the sheet shows it and its CSV
  export writes it (`6,084,796`, `12.5%`, `₩1,234`; batch.inputs.numfmt). Formats beyond
  those, and every number format in .xls and .ods (calamine does not expose them), give
  the plain number.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import re
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Self

from batch.errors import InputError
from batch.inputs import numfmt
from batch.inputs.bounds import check_xlsx

SHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
Row = list[str | None]
_ZEROS = re.compile(r"^(0+)(?:\.(0+))?$")


class WorkbookReader:
    """An open workbook: its sheets' names and their rows, numbered as a person sees them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.streams = path.suffix.lower() in (".xlsx", ".xlsm")
        self._book: Any = None
        if self.streams:
            check_xlsx(path)  # before openpyxl: a small file can unzip to gigabytes
        try:
            if self.streams:
                import openpyxl  # noqa: PLC0415  (lazy: only analysts' inputs need it)

                self._book = openpyxl.load_workbook(path, read_only=True, data_only=True)
                self.sheet_names: list[str] = list(self._book.sheetnames)
            else:
                import python_calamine  # noqa: PLC0415

                self._book = python_calamine.CalamineWorkbook.from_path(path)
                self.sheet_names = list(self._book.sheet_names)
        except Exception as exc:
            kind = path.suffix.lower().lstrip(".")
            raise InputError(f"input {path.name} is not a readable .{kind} file") from exc

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._book.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def sheet(self, name: str | None) -> str:
        """The sheet to read: `name`, or the first."""
        if name is None:
            if not self.sheet_names:
                raise InputError(f"input {self.path.name} has no sheet")
            return self.sheet_names[0]
        if name not in self.sheet_names:
            raise InputError(
                f"input {self.path.name} has no sheet {name!r} (it has "
                f"{', '.join(repr(s) for s in self.sheet_names[:10])})",
                setting="sheet",
            )
        return name

    def rows(self, sheet: str) -> Iterator[tuple[int, Row]]:
        """(row number, cells as displayed) for every row, empty rows included."""
        try:
            if self.streams:
                yield from _openpyxl_rows(self._book[sheet])
            else:
                yield from _calamine_rows(self._book.get_sheet_by_name(sheet))
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"input {self.path.name}: sheet {sheet!r} cannot be read") from exc


def _openpyxl_rows(worksheet: Any) -> Iterator[tuple[int, Row]]:
    from openpyxl.styles.numbers import is_datetime  # noqa: PLC0415

    worksheet.reset_dimensions()  # some writers record a wrong used range; read what is there
    number = 0
    for cells in worksheet.iter_rows():
        number += 1
        first = next((c for c in cells if getattr(c, "row", None)), None)
        if first is not None:
            number = first.row  # rows missing from the file were skipped
        row: Row = []
        for cell in cells:
            value, fmt = cell.value, cell.number_format
            if isinstance(value, dt.datetime):
                row.append(_datetime(value, is_datetime(fmt.lower()) if fmt else None))
            elif isinstance(value, int | float) and not isinstance(value, bool):
                row.append(_number(value, fmt))
            else:
                row.append(display(value))
        yield number, row


def _calamine_rows(sheet: Any) -> Iterator[tuple[int, Row]]:
    start = sheet.start
    offset = start[0] if start else 0
    for index, cells in enumerate(sheet.iter_rows()):
        yield offset + index + 1, [display(value) for value in cells]


def display(value: object) -> str | None:
    """A cell's value as text, without its number format."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return _datetime(value, None)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, int | float):
        return _number(value, None)
    return str(value)


def _datetime(value: dt.datetime, kind: str | None) -> str:
    """ISO: a date when the format shows only a date (or when no time is set)."""
    if kind == "date" or (kind is None and value.time() == dt.time()):
        return value.date().isoformat()
    if kind == "time":
        return value.time().isoformat(timespec="seconds")
    return value.isoformat(sep=" ", timespec="seconds")


def _number(value: float, fmt: str | None) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    zeros = _ZEROS.match(fmt or "")
    if zeros:
        whole, decimals = zeros.group(1), zeros.group(2) or ""
        exact = Decimal(repr(value)).quantize(Decimal(1).scaleb(-len(decimals)), ROUND_HALF_UP)
        sign, text = ("-", str(-exact)) if exact < 0 else ("", str(exact))
        head, _, tail = text.partition(".")
        return sign + head.zfill(len(whole)) + (f".{tail}" if decimals else "")
    formatted = numfmt.shown(value, fmt) if fmt and fmt != "General" else None
    if formatted is not None:
        return formatted
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    return f"{value:.15g}"  # the digits a spreadsheet keeps
