"""`--format xlsx` as an analyst opens it: a list per next action, every customer, rejects."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from batch.outputs.workbook import MAX_TITLE, sheet_title, text_width
from tests.conftest import customers, job, write_csv

SHEETS = [
    "요약 (summary)",
    "포탈 가입 안내 (portal_signup)",
    "계좌 연결 안내 (link_account)",
    "전체 고객 (reconciled)",
    "계좌 (accounts)",
    "제외 행 (rejects)",
]
FORBIDDEN = set("[]:*?/\\")


@pytest.fixture
def book(sandbox, tmp_path: Path) -> tuple[openpyxl.Workbook, dict, list]:
    people = customers(40)
    rows = [(ci, name, f"{n:06d}") for n, (ci, name) in enumerate(people)]
    rows += [("short", "홍길동", "999999"), (people[3][0], "다른이름", "999998")]
    path = write_csv(tmp_path / "in.csv", rows, header=("ci", "kor_name", "고객번호"))
    result = job(sandbox, path, tmp_path / "x", "--format", "xlsx", "--keep-columns", "고객번호")
    assert result.exit_code == 0, result.stderr
    return openpyxl.load_workbook(tmp_path / "x" / "reconciled.xlsx"), result.summary(), rows


def test_each_action_has_its_own_list_with_the_kept_columns_beside_the_customer(book) -> None:
    workbook, summary, rows = book
    assert workbook.sheetnames == SHEETS
    assert all(len(t) <= MAX_TITLE and not FORBIDDEN & set(t) for t in workbook.sheetnames)
    counts = {title: workbook[title].max_row - 1 for title in SHEETS[1:]}
    assert counts == {
        "포탈 가입 안내 (portal_signup)": summary["non_member"],
        "계좌 연결 안내 (link_account)": summary["no_linked_account"],
        "전체 고객 (reconciled)": summary["customers"],
        "계좌 (accounts)": summary["accounts"],
        "제외 행 (rejects)": summary["rejected"],
    }
    number_of = {ci: number for ci, _, number in reversed(rows)}  # the first row wins
    for title, action in (
        ("포탈 가입 안내 (portal_signup)", "portal_signup"),
        ("계좌 연결 안내 (link_account)", "link_account"),
        ("전체 고객 (reconciled)", None),
        ("계좌 (accounts)", None),
    ):
        sheet = workbook[title]
        header = [c.value for c in sheet[1]]
        assert header[:3] == ["ci", "kor_name", "고객번호"], title
        for row in sheet.iter_rows(min_row=2, values_only=True):
            assert row[2] == number_of[row[0]]  # the customer's own number, as text
            if action:
                assert row[header.index("next_action")] == action
    rejects = workbook["제외 행 (rejects)"]
    assert [c.value for c in rejects[1]] == ["row", "reason", "ci", "kor_name", "고객번호"]
    found = [r[:2] for r in rejects.iter_rows(min_row=2, values_only=True)]
    assert found == [(42, "ci has 5 characters, not 88"), (43, "duplicate ci: first seen on row 5")]


def test_the_summary_sheet_gives_the_summary_counts(book) -> None:
    workbook, summary, _ = book
    lines = dict(workbook["요약 (summary)"].iter_rows(values_only=True))
    assert lines["rows read · 읽은 행"] == summary["rows"]
    assert lines["rejected rows · 제외 행"] == summary["rejected"]
    assert lines["customers · 고객"] == summary["customers"]
    assert lines["non_member · 포탈 비회원 → portal_signup"] == summary["non_member"]
    assert lines["포탈 가입 안내 (portal_signup)"] == summary["non_member"]
    assert lines["제외 행 (rejects)"] == summary["rejected"]


def test_columns_are_as_wide_as_their_values_and_the_sheet_prints_one_page_wide(book) -> None:
    workbook, _, rows = book
    sheet = workbook["전체 고객 (reconciled)"]
    header = [c.value for c in sheet[1]]
    width = {name: sheet.column_dimensions[chr(65 + i)].width for i, name in enumerate(header)}
    assert width["ci"] >= 88  # a whole CI shows
    assert width["kor_name"] >= max(text_width(name) for _, name, _ in rows)
    assert width["고객번호"] >= text_width("고객번호")
    for title in workbook.sheetnames[1:]:
        each = workbook[title]
        assert each.freeze_panes == "A2"
        assert each.auto_filter.ref == f"A1:{chr(64 + each.max_column)}{each.max_row}"
        assert each.page_setup.orientation == "landscape"
        assert each.sheet_properties.pageSetUpPr.fitToPage
        assert each.page_setup.fitToHeight == 0  # as many pages long as it takes
    booleans = [sheet.cell(2, header.index(n) + 1) for n in ("is_non_member", "no_linked_account")]
    assert all(c.data_type == "b" for c in booleans)
    assert all(c.number_format == '"TRUE";"TRUE";"FALSE"' for c in booleans)  # LibreOffice too


def test_sheet_names_are_cut_to_31_characters_without_forbidden_ones() -> None:
    assert sheet_title("계좌 연결 안내 (link_account)") == "계좌 연결 안내 (link_account)"
    assert sheet_title("a/b:c*d?[e]\\f") == "a_b_c_d__e__f"
    assert len(sheet_title("x" * 40)) == MAX_TITLE
    assert sheet_title("'quoted'") == "quoted"
