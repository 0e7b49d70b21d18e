"""Spreadsheets saved by LibreOffice (tests/fixtures, scripts/make_fixtures.py): cells as shown."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from batch.contract import Column
from batch.errors import InputError
from batch.inputs.reader import InputFile, RawRow
from batch.inputs.sheets import WorkbookReader, _datetime, _number, display
from jobs.settings import LEGACY_ENCODINGS
from tests.fixture_rows import FIXTURES, HEADER, HEADER_ROW, PEOPLE, REJECTS, sheet_rows, shown

ROOT = Path(__file__).resolve().parents[1]
NEEDED = [Column("ci", "ci_column"), Column("kor_name", "name_column")]
EXPORTS = [
    "customers.xlsx",
    "customers.xls",
    "customers.ods",
    "customers_cp949_semicolon.csv",
    "customers_utf16_tab.txt",
]


def read(name: str, **options: object) -> tuple[InputFile, list[RawRow]]:
    source = InputFile.open(ROOT / FIXTURES / name, legacy=LEGACY_ENCODINGS, **options)  # type: ignore[arg-type]
    layout = source.layout(NEEDED)
    return source, [r for chunk in source.iter_chunks(layout, 5) for r in chunk]


@pytest.mark.parametrize("name", EXPORTS)
def test_every_export_finds_the_header_under_the_title_and_numbers_rows_as_shown(
    name: str,
) -> None:
    source, rows = read(name)
    layout = source.layout(NEEDED)
    assert layout.header_row == HEADER_ROW
    assert layout.columns == list(HEADER)
    assert [r.row for r in rows] == [row for row, _ in sheet_rows()]  # the blank row skipped
    assert [r.values["ci"] for r in rows[:12]] == [p["ci"] for p in PEOPLE]
    assert [r.values["kor_name"] for r in rows[:12]] == [p["kor_name"] for p in PEOPLE]
    assert [r.row for r in rows[-3:]] == [row for row, _ in REJECTS]


@pytest.mark.parametrize("name", ["customers.xlsx", "customers_utf16_tab.txt"])
def test_an_xlsx_gives_the_values_its_csv_export_gives(name: str) -> None:
    _, rows = read(name)
    _, exported = read("customers_cp949_semicolon.csv")
    assert [r.values for r in rows] == [r.values for r in exported]
    want = [{c: shown(values[c], c) for c in HEADER} for _, values in sheet_rows()]
    assert [r.values for r in rows] == want  # 00000001, 1960-01-01, TRUE, null


@pytest.mark.parametrize(
    ("name", "differs"),
    [("customers.xls", {"customer_no"}), ("customers.ods", {"customer_no", "vip"})],
)
def test_xls_and_ods_differ_only_where_calamine_gives_no_number_format(
    name: str, differs: set[str]
) -> None:
    # The documented limit: calamine gives .xls/.ods numbers without their format, and
    # .ods booleans as 1/0. Text and dates are as shown.
    _, rows = read(name)
    _, exported = read("customers_cp949_semicolon.csv")
    changed = {
        column
        for got, want in zip(rows, exported, strict=True)
        for column in HEADER
        if got.values[column] != want.values[column]
    }
    assert changed == differs
    assert rows[0].values["customer_no"] == "1"
    assert rows[0].values["joined"] == "1960-01-01"


def test_a_sheet_without_the_columns_names_the_sheet_that_has_them() -> None:
    with pytest.raises(InputError) as caught:
        read("second_sheet.xlsx")
    message = str(caught.value)
    assert "sheet '안내', has no column 'ci'" in message
    assert message.endswith("sheet '고객' has them")
    assert caught.value.setting == "sheet"
    source, rows = read("second_sheet.xlsx", sheet="고객")
    assert source.layout(NEEDED).sheet == "고객"
    assert len(rows) == len(sheet_rows())
    with pytest.raises(InputError, match=r"has no sheet 'Sheet9' \(it has '안내', '고객'\)"):
        read("second_sheet.xlsx", sheet="Sheet9")


def test_rows_missing_from_an_xlsx_keep_their_numbers(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.cell(4, 2, "ci")  # nothing at all on rows 1-3, nor in column A
    sheet.cell(4, 3, "kor_name")
    sheet.cell(7, 2, PEOPLE[0]["ci"])
    sheet.cell(7, 3, "가나")
    book.save(tmp_path / "gaps.xlsx")
    source, rows = read_path(tmp_path / "gaps.xlsx")
    assert source.layout(NEEDED).header_row == 4
    assert [(r.row, r.values["kor_name"]) for r in rows] == [(7, "가나")]


def read_path(path: Path) -> tuple[InputFile, list[RawRow]]:
    source = InputFile.open(path)
    layout = source.layout(NEEDED)
    return source, [r for chunk in source.iter_chunks(layout, 5) for r in chunk]


@pytest.mark.parametrize(
    ("value", "fmt", "text"),
    [
        (1, "00000000", "00000001"),
        (1234.5, "00000000", "00001235"),  # rounded as a spreadsheet rounds
        (3.5, "0.00", "3.50"),
        (-7, "000", "-007"),
        (12.0, "General", "12"),
        (0.1 + 0.2, "General", "0.3"),
        (1234567, "#,##0", "1,234,567"),  # as the sheet shows it, and its CSV export
        (0.125, "0.0%", "12.5%"),
        (0.125, "0%", "13%"),
        (-12345, "[$₩-412]#,##0", "-₩12,345"),
        (50000, "#,##0\\원", "50,000원"),
        (-1234, "#,##0;[RED]\\-#,##0", "-1,234"),
        (1234.5, '#,##0.00" KRW"', "1,234.50 KRW"),
        (1.5, "# ?/?", "1.5"),  # a fraction: beyond the formats shown, the plain number
        (45000, "yyyy-mm-dd", "45000"),
        (2**53 + 1, None, "9007199254740993"),
    ],
)
def test_numbers_show_their_zero_formats(value: float, fmt: str | None, text: str) -> None:
    assert _number(value, fmt) == text


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        # A date format hides the time; spreadsheets keep no time zone.
        (dt.datetime(2024, 3, 5, 13, 45), "date", "2024-03-05"),  # noqa: DTZ001
        (dt.datetime(2024, 3, 5, 13, 45), "datetime", "2024-03-05 13:45:00"),  # noqa: DTZ001
        (dt.datetime(2024, 3, 5, 13, 45), "time", "13:45:00"),  # noqa: DTZ001
        (dt.datetime(2024, 3, 5), None, "2024-03-05"),  # noqa: DTZ001
        (dt.datetime(2024, 3, 5, 1, 2, 3), None, "2024-03-05 01:02:03"),  # noqa: DTZ001
    ],
)
def test_dates_are_iso(value: dt.datetime, kind: str | None, text: str) -> None:
    assert _datetime(value, kind) == text


def test_cells_without_a_format() -> None:
    assert [display(v) for v in (None, "", "x", True, False, dt.date(2001, 2, 3), 7.0)] == [
        None,
        None,
        "x",
        "TRUE",
        "FALSE",
        "2001-02-03",
        "7",
    ]


def test_workbook_lists_its_sheets() -> None:
    with WorkbookReader(ROOT / FIXTURES / "customers.ods") as book:
        assert book.sheet_names == ["고객", "안내"]
        assert book.sheet(None) == "고객"
