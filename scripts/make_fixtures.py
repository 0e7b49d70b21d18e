"""Regenerate tests/fixtures/: one member sheet as LibreOffice saves it in every input format.

    .venv/bin/python scripts/make_fixtures.py   (needs: apt-get install -y libreoffice-calc-nogui)

The sheet (tests/fixture_rows.py: synthetic CIs only) is built with openpyxl, then opened
and saved by LibreOffice headless, as an office would export it:

    customers.xlsx                 Excel 2007-365, title rows above the header, number formats
    customers.xls                  Excel 97-2003
    customers.ods                  OpenDocument
    customers_cp949_semicolon.csv  "Text CSV", Korean (Windows-949), ';' between fields
    customers_utf16_tab.txt        "Unicode text": UTF-16 with a BOM, tab between fields
    second_sheet.xlsx              a notes sheet first, the customers on the second
    formatted_numbers.xlsx / .csv  numbers with thousands separators, percent, currency, and
                                   the sheet's "Text CSV" export of them (cells as shown)

The tests read the committed files and never need LibreOffice. Re-running rewrites them
(LibreOffice stamps a save time inside, so the bytes change; the cells do not).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import openpyxl

from tests.fixture_rows import (
    FIXTURES,
    FORMATS,
    FORMATTED,
    HEADER,
    TITLE,
    formatted_people,
    sheet_rows,
)

# LibreOffice's text filter: field separator, text delimiter, character set (its numbering:
# 62 is Windows-949, 65535 is UTF-16), first line. Cells are written as shown.
TEXT_FILTER = "Text - txt - csv (StarCalc)"
SAVES = {
    "customers.xlsx": "xlsx:Calc MS Excel 2007 XML",
    "customers.xls": "xls:MS Excel 97",
    "customers.ods": "ods:calc8",
    "customers_cp949_semicolon.csv": f"csv:{TEXT_FILTER}:59,34,62,1",
    "customers_utf16_tab.txt": f"txt:{TEXT_FILTER}:9,34,65535,1",
}


def build(path: Path, *, notes_first: bool = False) -> None:
    """The source sheet: title, blank row, header on row 3, customers, bad rows."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    if notes_first:
        sheet.title = "안내"
        sheet["A1"] = "고객 목록은 다음 시트에 있습니다."
        sheet = book.create_sheet("고객")
    else:
        sheet.title = "고객"
        book.create_sheet("안내")["A1"] = "참고용 시트"
    sheet["A1"] = TITLE
    sheet.append([])
    sheet.append(list(HEADER))
    for number, values in sheet_rows():
        for column, name in enumerate(HEADER, start=1):
            cell = sheet.cell(number, column, values[name])
            if name == "customer_no":
                cell.number_format = "00000000"
            elif name == "joined":
                cell.number_format = "YYYY-MM-DD"
    book.save(path)


def build_formatted(path: Path) -> None:
    """Customers with numbers shown in formats people use: 6,084,796, 12.5%, ₩1,234."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["ci", "kor_name", *FORMATS])
    for (ci, name), (numbers, _) in zip(formatted_people(), FORMATTED, strict=True):
        sheet.append([ci, name, *numbers])
        for cell, fmt in zip(sheet[sheet.max_row][2:], FORMATS.values(), strict=True):
            cell.number_format = fmt
    book.save(path)


def save_as(source: Path, target: Path, how: str, profile: Path) -> None:
    """Open `source` in LibreOffice and save it as `target` with the filter `how`."""
    soffice = shutil.which("soffice") or "soffice"
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(  # noqa: S603  (our own arguments)
            [
                soffice,
                f"-env:UserInstallation={profile.as_uri()}",  # never another user's profile
                "--headless",
                "--convert-to",
                how,
                "--outdir",
                out,
                str(source),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        (saved,) = Path(out).iterdir()
        shutil.move(saved, target)


def main() -> None:
    if shutil.which("soffice") is None:
        sys.exit("LibreOffice is missing: apt-get install -y libreoffice-calc-nogui")
    folder = ROOT / FIXTURES
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        source, notes = Path(work) / "customers.xlsx", Path(work) / "second_sheet.xlsx"
        build(source)
        build(notes, notes_first=True)
        profile = Path(work) / "profile"
        for name, how in SAVES.items():
            save_as(source, folder / name, how, profile)
            print(f"wrote {FIXTURES}/{name}")
        save_as(notes, folder / "second_sheet.xlsx", SAVES["customers.xlsx"], profile)
        print(f"wrote {FIXTURES}/second_sheet.xlsx")
        numbers = Path(work) / "formatted_numbers.xlsx"
        build_formatted(numbers)
        for name, how in (
            ("formatted_numbers.xlsx", SAVES["customers.xlsx"]),
            ("formatted_numbers.csv", f"csv:{TEXT_FILTER}:44,34,76,1"),  # UTF-8, as shown
        ):
            save_as(numbers, folder / name, how, profile)
            print(f"wrote {FIXTURES}/{name}")


if __name__ == "__main__":
    main()
