"""Analysts' files through the real CLI: office exports, bad nights, what a dry run shows."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from tests.change_rules import expected_changes
from tests.conftest import ROOT, customers, job, run_cli, write_csv
from tests.fixture_rows import FIXTURES, FORMATS, FORMATTED, PEOPLE, REJECTS, sheet_rows, shown
from tests.test_dataset import dataset_run, feed
from tests.test_end_to_end import check_truth

EXPORTS = [
    "customers.xlsx",
    "customers.xls",
    "customers.ods",
    "customers_cp949_semicolon.csv",
    "customers_utf16_tab.txt",
]
CIS = [str(p["ci"]) for p in PEOPLE]


def fixture(name: str) -> Path:
    return ROOT / FIXTURES / name


@pytest.mark.parametrize("name", EXPORTS)
def test_each_office_export_is_reconciled_exactly_with_no_options(
    sandbox, tmp_path: Path, name: str
) -> None:
    result = job(sandbox, fixture(name), tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    check_truth(result, CIS)
    assert list(result.reconciled()["kor_name"]) == [p["kor_name"] for p in PEOPLE]
    rejects = result.rejects()
    assert list(zip(rejects["row"].astype(int), rejects["reason"], strict=True)) == REJECTS
    summary = result.summary()
    assert (summary["rows"], summary["customers"], summary["rejected"]) == (15, 12, 3)


def test_kept_values_are_those_the_sheet_shows_in_xlsx_and_in_its_exports(
    sandbox, tmp_path: Path
) -> None:
    kept = ["customer_no", "branch", "joined", "vip", "memo"]
    frames = {}
    for name in ("customers.xlsx", "customers_cp949_semicolon.csv", "customers_utf16_tab.txt"):
        result = job(sandbox, fixture(name), tmp_path / name, "--keep-columns", ",".join(kept))
        assert result.exit_code == 0, result.stderr
        frames[name] = result.reconciled()[kept]
    want = [[shown(values[c], c) for c in kept] for _, values in sheet_rows()[:12]]
    for frame in frames.values():
        got = [[None if pd.isna(v) else v for v in row] for row in frame.itertuples(index=False)]
        assert got == want  # 00000001, 0002, 1960-01-01, TRUE, and null for an empty cell


def test_every_row_rejected_is_exit_2_publishes_nothing_and_frees_the_folder(
    sandbox, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    path = fixture("customers_cp949_semicolon.csv")
    wrong = job(sandbox, path, out, "--ci-column", "customer_no")  # the customer number as CI
    assert wrong.exit_code == 2
    message = wrong.stderr.strip().splitlines()[-1]
    assert message == (
        "member-recon: input customers_cp949_semicolon.csv has nothing to check: 15 rows "
        "read, every one rejected (15 × customer_no has 8 characters, not 88); header on row 3: "
        "'customer_no', 'ci', 'kor_name', 'branch', 'joined', 'vip', 'memo'"
    )
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # no summary, rejects or store
    assert sandbox.sandbox.stats.requests == 0
    fixed = job(sandbox, path, out)  # the corrected command, in the same folder, no --fresh
    assert fixed.exit_code == 0, fixed.stderr
    check_truth(fixed, CIS)


def test_formatted_numbers_arrive_as_the_sheet_shows_them_from_xlsx_and_its_csv(
    sandbox, tmp_path: Path
) -> None:
    kept = ",".join(FORMATS)
    want = [list(shown_values) for _, shown_values in FORMATTED]
    for name in ("formatted_numbers.xlsx", "formatted_numbers.csv"):  # LibreOffice saved both
        result = job(sandbox, fixture(name), tmp_path / name, "--keep-columns", kept)
        assert result.exit_code == 0, result.stderr
        got = result.reconciled()[list(FORMATS)].to_numpy().tolist()
        assert got == want, name  # 6,084,796 · ₩1,234,567 · 12.5% · 50,000원


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "input in.csv is empty (0 bytes): it has no header row"),
        ("ci,kor_name\n", "input in.csv has no rows under its header (header on row 1: 'ci',"),
        ("ci,kor_name\n,\n,,,\n", "input in.csv has no rows under its header"),
    ],
)
def test_an_empty_or_header_only_file_is_exit_2(
    sandbox, tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    result = job(sandbox, path, tmp_path / "out")
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (tmp_path / "out" / "summary.json").exists()


@pytest.mark.parametrize(
    ("args", "message", "hint"),
    [
        (["--keep-columns", "지점"], "has no column '지점'", "see --keep-columns"),
        (["--ci-column", "CI"], "has no column 'CI'", "did you mean --ci-column ci?"),
        (["--header-row", "1"], "has no column 'ci' (row 1, the closest", "see --ci-column"),
        (["--header-row", "2"], "has no header: row 2 is empty", "pass --header-row N"),
    ],
)
def test_a_wrong_column_option_leaves_the_folder_for_the_corrected_command(
    sandbox, tmp_path: Path, args: list[str], message: str, hint: str
) -> None:
    out = tmp_path / "out"
    path = fixture("customers.xlsx")
    wrong = job(sandbox, path, out, *args)
    assert wrong.exit_code == 2
    assert message in wrong.stderr
    assert hint in wrong.stderr.strip().splitlines()[-1]
    fixed = job(sandbox, path, out)
    assert fixed.exit_code == 0, fixed.stderr  # never "holds progress of another run"


def test_data_on_the_second_sheet_is_pointed_at(sandbox, tmp_path: Path) -> None:
    path = fixture("second_sheet.xlsx")
    result = job(sandbox, path, tmp_path / "a")
    assert result.exit_code == 2
    assert "sheet '고객' has them; pass --sheet NAME" in result.stderr
    chosen = job(sandbox, path, tmp_path / "b", "--sheet", "고객")
    assert chosen.exit_code == 0, chosen.stderr
    check_truth(chosen, CIS)


def test_a_headerless_file_is_refused_without_printing_its_values(sandbox, tmp_path: Path) -> None:
    people = customers(3)
    path = tmp_path / "in.csv"
    path.write_text(
        "".join(f"{ci},{name},C{n:06d}\n" for n, (ci, name) in enumerate(people)),
        encoding="utf-8",
    )
    result = job(sandbox, path, tmp_path / "out")
    assert result.exit_code == 2
    assert "the first row looks like data: is the header missing?" in result.stderr
    for ci, name in people:
        assert ci[:8] not in result.stderr
        assert name not in result.stderr
    assert "C000000" not in result.stderr


def test_control_characters_in_a_name_and_nul_in_a_kept_column_are_rejected(
    sandbox, tmp_path: Path
) -> None:
    people = customers(5)
    rows = [
        [people[0][0], "홍길동", "1"],
        [people[1][0], "홍\x1b길동", "2"],
        [people[2][0], "이\n순신", "3"],
        [people[3][0], "김\x00철수", "4"],
        [people[4][0], "박영희", "5\x00"],
    ]
    path = write_csv(tmp_path / "in.csv", rows, header=("ci", "kor_name", "no"))
    result = job(sandbox, path, tmp_path / "out", "--keep-columns", "no")
    assert result.exit_code == 0, result.stderr
    assert list(result.reconciled()["ci"]) == [people[0][0]]
    assert list(result.rejects()["reason"]) == [
        "kor_name has a control character (U+001B)",
        "kor_name has a control character (U+000A)",
        "kor_name has a control character (U+0000)",
        "no has a NUL character",
    ]
    assert list(result.rejects()["row"].astype(int)) == [3, 4, 5, 6]  # row 4 holds two lines


def test_dry_run_shows_how_the_file_was_read_before_any_quota_is_spent(
    sandbox, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run_cli(
        [
            "run",
            str(fixture("customers_cp949_semicolon.csv")),
            "--dry-run",
            "--com-id",
            "F0995",
            "--srv-id",
            "297",
            "--out",
            str(out),
            "--keep-columns",
            "customer_no",
        ],
        {"KOSCOM_API_KEY": ""},
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "read as: encoding CP949, semicolon-delimited, header on row 3"
    assert lines[1] == "  columns: customer_no, ci, kor_name, branch, joined, vip, memo"
    first = PEOPLE[0]
    assert lines[2] == (
        f"  sample:  customer_no=00******  ci={str(first['ci'])[:4]}…(88)  "
        f"kor_name={str(first['kor_name'])[0]}**"
    )
    assert "  rejected: 1 x ci is empty" in lines
    assert "  rejected: 1 x duplicate ci" in lines
    for ci in CIS:
        assert ci not in result.stdout
    read = json.loads((out / "summary.json").read_text(encoding="utf-8"))["input_read"]
    assert read["encoding"] == "CP949"
    assert (read["delimiter"], read["header_row"], read["sheet"]) == ("semicolon", 3, None)
    assert read["rejects_by_reason"] == {
        "ci has 87 characters, not 88": 1,
        "ci is empty": 1,
        "duplicate ci": 1,
    }
    assert len(read["samples"]) == 3
    assert sandbox.sandbox.stats.requests == 0


def test_an_all_rejected_night_leaves_the_dataset_and_the_change_feed_alone(
    sandbox, tmp_path: Path
) -> None:
    root = tmp_path / "ds"
    people = customers(30, salt="nights")
    first = dataset_run(sandbox, write_csv(tmp_path / "n1.csv", people[:20]), root, "2026-11-01")
    assert first.exit_code == 0, first.stderr
    numbers = [(f"C{n:06d}", name) for n, (_, name) in enumerate(people[:20])]
    bad = dataset_run(sandbox, write_csv(tmp_path / "n2.csv", numbers), root, "2026-11-02")
    assert bad.exit_code == 2
    assert "has nothing to check: 20 rows read, every one rejected" in bad.stderr
    assert not list(root.glob("*/run_date=2026-11-02"))
    assert len(pd.read_parquet(root / "runs" / "runs.parquet")) == 1  # no run-log row for it
    third = dataset_run(sandbox, write_csv(tmp_path / "n3.csv", people[5:25]), root, "2026-11-03")
    assert third.exit_code == 0, third.stderr
    changes = feed(root, "2026-11-03")
    # Compared with the last good night:
    assert changes == expected_changes(root, ["2026-11-01"], "2026-11-03")
    events = [event for _, event, _ in changes]
    assert (events.count("gone_from_input"), events.count("new_customer")) == (5, 5)
