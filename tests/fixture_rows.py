"""What the spreadsheet fixtures hold (scripts/make_fixtures.py writes them from this).

One sheet, as a Korean office exports a member list: a title row, a blank row, the
header on row 3, synthetic customers (never a real CI), a blank row among them, and
three bad rows at the end. Customer numbers are numbers shown with the format
`00000000`; branches are text; join dates are dates shown as `YYYY-MM-DD`.
"""

from __future__ import annotations

import datetime as dt

from jobs.sandbox.server import synthetic_ci, synthetic_name

TITLE = "회원 목록 (2026-11-24 추출, 대외비)"  # a comma inside: a title row holds a delimiter
HEADER = ("customer_no", "ci", "kor_name", "branch", "joined", "vip", "memo")
HEADER_ROW = 3
BLANK_ROW = 10  # between the sixth and the seventh customer
FIXTURES = "tests/fixtures"


def customer(n: int) -> dict[str, object]:
    ci = synthetic_ci(n, "fixture")
    return {
        "customer_no": n + 1,
        "ci": ci,
        "kor_name": "김똠방" if n == 3 else synthetic_name(ci),  # 똠: CP949 has it, EUC-KR not
        "branch": f"{n % 3:04d}",
        "joined": dt.date(1960, 1, 1) + dt.timedelta(days=400 * n),
        "vip": n % 2 == 0,
        "memo": f"메모 {n}" if n % 4 == 0 else None,
    }


PEOPLE = [customer(n) for n in range(12)]


def sheet_rows() -> list[tuple[int, dict[str, object]]]:
    """(row number, values) of every data row, as the sheet numbers them."""
    rows: list[tuple[int, dict[str, object]]] = []
    number = HEADER_ROW
    for person in PEOPLE:
        number += 1
        if number == BLANK_ROW:
            number += 1
        rows.append((number, person))
    bad = [
        {**customer(20), "ci": ""},
        {**customer(21), "ci": str(customer(21)["ci"])[:87]},
        {**customer(22), "ci": PEOPLE[2]["ci"]},
    ]
    rows += [(number + 1 + i, values) for i, values in enumerate(bad)]
    return rows


def row_of(n: int) -> int:
    return next(row for row, values in sheet_rows() if values is PEOPLE[n])


REJECTS = [
    (row_of(11) + 1, "ci is empty"),
    (row_of(11) + 2, "ci has 87 characters, not 88"),
    (row_of(11) + 3, f"duplicate ci: first seen on row {row_of(2)}"),
]


def shown(value: object, column: str) -> str | None:
    """A value as the sheet displays it (and its CSV export writes it)."""
    if value is None or value == "":
        return None
    if column == "customer_no":
        return f"{value:08d}"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


# formatted_numbers.xlsx and its CSV export (formatted_numbers.csv), both saved by
# LibreOffice: numbers shown with thousands separators, percent, currency and a unit.
FORMATS = {
    "balance": "#,##0",
    "limit_krw": "[$₩-412]#,##0",
    "rate": "0.0%",
    "share": "0%",
    "fee": "#,##0.00",
    "debt": "#,##0;-#,##0",
    "deposit": '#,##0"원"',
}
FORMATTED = [  # the cells' numbers, then what the sheet shows (and its CSV export writes)
    (
        (6084796, 1234567, 0.125, 0.5, 1234.5, -1234, 50000),
        ("6,084,796", "₩1,234,567", "12.5%", "50%", "1,234.50", "-1,234", "50,000원"),
    ),
    ((0, 0, 0, 1, 0.005, -5, 1), ("0", "₩0", "0.0%", "100%", "0.01", "-5", "1원")),
    (
        (999, -12345, 1.5, 0.125, -0.5, 1234567, -7),
        ("999", "-₩12,345", "150.0%", "13%", "-0.50", "1,234,567", "-7원"),
    ),
]


def formatted_people() -> list[tuple[str, str]]:
    """The customers of formatted_numbers.xlsx: synthetic CIs and names."""
    return [(str(p["ci"]), str(p["kor_name"])) for p in PEOPLE[: len(FORMATTED)]]
