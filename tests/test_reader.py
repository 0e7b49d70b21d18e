"""Reading text inputs as offices export them: encodings, delimiters, title rows, bad bytes."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch.contract import Column
from batch.errors import InputError
from batch.inputs.reader import InputFile, Layout, RawRow
from batch.inputs.sniff import delimiter_from, looks_like_data
from jobs.settings import LEGACY_ENCODINGS
from tests.conftest import customers, write_csv

NEEDED = [Column("ci", "ci_column"), Column("kor_name", "name_column")]
ROWS = [(ci, name) for ci, name in customers(50)]


def open_input(path: Path, **options: object) -> InputFile:
    """An input as the KOSCOM job opens it: CP949 (and EUC-KR) read when not UTF-8."""
    return InputFile.open(path, legacy=LEGACY_ENCODINGS, **options)  # type: ignore[arg-type]


def rows_of(source: InputFile, chunk: int = 7, skip: int = 0) -> list[RawRow]:
    layout = source.layout(NEEDED)
    return [r for part in source.iter_chunks(layout, chunk, skip_rows=skip) for r in part]


def read_all(source: InputFile, chunk: int = 7, skip: int = 0) -> list[tuple[int, str, str]]:
    return [
        (r.row, r.values["ci"] or "", r.values["kor_name"] or "")
        for r in rows_of(source, chunk, skip)
    ]


def numbered(rows: list[tuple[str, str]], first: int = 2) -> list[tuple[int, str, str]]:
    return [(first + i, ci, name) for i, (ci, name) in enumerate(rows)]


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [
        ("utf-8", "UTF-8"),
        ("utf-8-sig", "UTF-8"),
        ("cp949", "CP949"),
        ("euc-kr", "CP949"),
        ("utf-16", "UTF-16"),  # a BOM, then little-endian: Excel's "Unicode text"
        ("utf-16-be-bom", "UTF-16"),
    ],
)
def test_each_encoding_is_detected_and_read(tmp_path: Path, encoding: str, detected: str) -> None:
    path = tmp_path / "in.csv"
    if encoding == "utf-16-be-bom":
        path.write_bytes(b"\xfe\xff" + write_csv(path, ROWS).read_text().encode("utf-16-be"))
    else:
        write_csv(path, ROWS, encoding=encoding)
    source = open_input(path)
    layout = source.layout(NEEDED)
    assert layout.describe()["encoding"] == detected
    assert layout.columns == ["ci", "kor_name"]  # no BOM left on the first column name
    assert read_all(source) == numbered(ROWS)


@pytest.mark.parametrize(
    ("given", "bom"),
    [("utf-8", True), ("UTF8", True), ("euc-kr", False), ("ks_c_5601-1987", False)],
)
def test_an_encoding_given_reads_what_its_superset_reads(
    tmp_path: Path, given: str, bom: bool
) -> None:
    # --encoding utf-8 on a file with a BOM; --encoding euc-kr on 똠, which only CP949 has.
    rows = [(ROWS[0][0], "김똠방"), (ROWS[1][0], "햏뷁")]
    path = write_csv(tmp_path / "in.csv", rows, encoding="utf-8-sig" if bom else "cp949")
    source = open_input(path, encoding=given)
    assert source.layout(NEEDED).columns == ["ci", "kor_name"]
    assert read_all(source) == numbered(rows)


DELIMITED = [
    # (what the file holds, its delimiter, the header's row)
    ("ci,kor_name\n{a},가나\n{b},다라\n", ",", 1),
    ("ci;kor_name\n{a};가나\n{b};다라\n", ";", 1),
    ("ci\tkor_name\n{a}\t가나\n{b}\t다라\n", "\t", 1),
    ("ci|kor_name\n{a}|가나\n{b}|다라\n", "|", 1),
    ("no;ci;kor_name;memo\n1;{a};가나;x, y\n2;{b};다라;\n", ";", 1),  # commas in values
    ("회원 목록 (11월, 대외비);;\n;;\nci;kor_name;no\n{a};가나;1\n{b};다라;2\n", ";", 3),
    ("\ufeff회원 목록\n\nci,kor_name\n{a},가나\n{b},다라\n", ",", 3),
    ("추출일: 2026-11-24\t\n\t\nci\tkor_name\n{a}\t가나\n{b}\t다라\n", "\t", 3),
    ('"제목, 쉼표 포함"|\n|\nkor_name|ci\n가나|{a}\n다라|{b}\n', "|", 3),
]


@pytest.mark.parametrize(("text", "delimiter", "header_row"), DELIMITED)
def test_the_delimiter_and_the_header_row_are_found(
    tmp_path: Path, text: str, delimiter: str, header_row: int
) -> None:
    a, b = ROWS[0][0], ROWS[1][0]
    path = tmp_path / "in.csv"
    path.write_text(text.format(a=a, b=b), encoding="utf-8")
    source = open_input(path)
    layout = source.layout(NEEDED)
    assert (layout.delimiter, layout.header_row) == (delimiter, header_row)
    # Rows above the header are neither data nor rejects; data rows keep the sheet's numbers.
    assert read_all(source) == [(header_row + 1, a, "가나"), (header_row + 2, b, "다라")]


def test_delimiter_and_header_row_can_be_given(tmp_path: Path) -> None:
    a = ROWS[0][0]
    path = tmp_path / "in.txt"
    path.write_text(f"ci;kor_name\nx;y\nci|kor_name\n{a}|가나\n", encoding="utf-8")
    source = open_input(path, delimiter=delimiter_from("|"), header_row=3)
    assert source.layout(NEEDED).header_row == 3
    assert read_all(source) == [(4, a, "가나")]
    assert delimiter_from("tab") == delimiter_from("\\t") == "\t"
    with pytest.raises(ValueError, match="not one character"):
        delimiter_from(";;")


def test_row_numbers_are_those_a_spreadsheet_shows(tmp_path: Path) -> None:
    a, b, c = (r[0] for r in ROWS[:3])
    path = tmp_path / "in.csv"
    text = f'ci,kor_name,memo\n{a},가나,"two\nlines"\n\n,,\n;;\n{b},다라,\n  ,  ,  \n{c},마바,x\n'
    path.write_text(text, encoding="utf-8")
    rows = rows_of(open_input(path))
    # Excel shows the quoted line break inside row 2; rows 3-5 and 7 are empty or
    # delimiters and blanks only: not rows of data (";;" is one field here, not empty).
    assert [(r.row, r.problem) for r in rows] == [
        (2, None),
        (5, "has 1 fields where the header has 3"),
        (6, None),
        (8, None),
    ]
    assert rows[0].values["memo"] == "two\nlines"
    assert rows[2].values["memo"] is None  # an empty field is null, as an empty cell


def test_rows_with_the_wrong_field_count_are_reported_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(f"ci,kor_name\n{ROWS[0][0]},a,extra\n\n{ROWS[1][0]},b\n", encoding="utf-8")
    rows = rows_of(open_input(path), 10)
    assert [(r.row, r.problem) for r in rows] == [
        (2, "has 3 fields where the header has 2"),
        (4, None),  # the blank line is not a row, but it is counted
    ]


def test_an_oversized_field_rejects_its_row_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    huge = "x" * 1_500_000
    path.write_text(f"ci,kor_name\n{ROWS[0][0]},{huge}\n{ROWS[1][0]},가나\n", encoding="utf-8")
    rows = rows_of(open_input(path))
    assert [(r.row, r.problem) for r in rows] == [
        (2, "is longer than 1,048,576 characters"),
        (3, None),
    ]


def test_a_huge_header_line_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text("ci,kor_name," + "가" * 30_000_000 + "\n", encoding="utf-8")  # 90 MB
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match="longer than 1,048,576 characters"):
            open_input(path).layout(NEEDED)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20


def test_a_byte_the_encoding_cannot_read_rejects_only_its_row(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    good = f"ci,kor_name\n{ROWS[0][0]},가나\n".encode("cp949")
    bad = f"{ROWS[1][0]},".encode() + b"\xff\xfe\n"
    path.write_bytes(good + bad + f"{ROWS[2][0]},다라\n".encode("cp949"))
    rows = rows_of(open_input(path, encoding="cp949"))
    assert [(r.row, r.problem) for r in rows] == [(2, None), (3, "is not valid CP949"), (4, None)]
    assert rows[1].values["ci"] == ROWS[1][0]  # what could be read is kept for rejects.csv


def test_a_header_the_encoding_cannot_read_asks_for_the_encoding(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", ROWS, header=("고객CI", "성명"), encoding="cp949")
    source = open_input(path, encoding="utf-8")
    with pytest.raises(InputError, match=r"in.csv: row 1 is not valid UTF-8") as caught:
        source.layout([Column("고객CI", "ci_column")])
    assert caught.value.setting == "encoding_given"  # it was given: not "pass --encoding"


def test_cp949_only_characters_are_read(tmp_path: Path) -> None:
    # '똠' is in CP949 but not in EUC-KR's KS X 1001 set: Excel writes it.
    rows = [(ROWS[0][0], "김똠방")]
    path = write_csv(tmp_path / "in.csv", rows, encoding="cp949")
    assert read_all(open_input(path))[0][2] == "김똠방"


def test_gzip_text_is_read(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv.gz", ROWS, encoding="cp949")
    source = open_input(path)
    assert (source.compressed, source.encoding) == (True, "cp949")
    assert len(read_all(source)) == 50


def test_parquet_is_read_in_batches(tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    table = pa.table(
        {"ci": [c for c, _ in ROWS], "kor_name": [n for _, n in ROWS], "no": range(50)}
    )
    pq.write_table(table, path, row_group_size=10)
    source = open_input(path)
    got = list(source.iter_chunks(source.layout(NEEDED), 8))
    assert [len(c) for c in got] == [8, 8, 8, 8, 8, 8, 2]
    assert (got[0][0].row, got[0][0].values["no"]) == (1, "0")  # no header row in Parquet


def test_skip_rows_resumes_where_ingest_stopped(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", ROWS)
    assert read_all(open_input(path), skip=46) == numbered(ROWS)[45:]


def test_undetectable_encoding_asks_for_encoding(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"ci,kor_name\n" + bytes(range(128, 256)) * 50 + b",x\n")
    with pytest.raises(InputError, match="neither UTF-8 nor CP949") as caught:
        open_input(path)
    assert caught.value.setting == "encoding"  # the CLI turns it into "pass --encoding"


@pytest.mark.parametrize(
    ("text", "message", "setting"),
    [
        ("", "input in.csv is empty (0 bytes): it has no header row", None),
        ("\n\n", "input in.csv is empty: it has no header row", None),
        (
            "고객번호;CI;성명\n1;{a};가나\n",
            "has no column 'ci' (row 1, the closest to a header, has '고객번호', 'CI', '성명')",
            "ci_column",
        ),
        (
            "ci;성명\n{a};가나\n",
            "has no column 'kor_name' (row 1, the closest to a header, has 'ci', '성명')",
            "name_column",
        ),
        (
            "{a},가나,C000001\n{b},다라,C000002\n",
            (
                "has no column 'ci' in its first 20 rows, and the first row looks like data: "
                "is the header missing?"
            ),
            "ci_column",
        ),
    ],
)
def test_a_missing_header_says_what_it_found_and_never_prints_data(
    tmp_path: Path, text: str, message: str, setting: str | None
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(text.format(a=ROWS[0][0], b=ROWS[1][0]), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        open_input(path).layout(NEEDED)
    assert message in str(caught.value)
    assert caught.value.setting == setting
    for ci, name in ROWS[:2]:
        assert ci[:8] not in str(caught.value)
        assert name not in str(caught.value)
    assert "가나" not in str(caught.value)
    assert "C000001" not in str(caught.value)


@pytest.mark.parametrize(
    ("row", "data"),
    [
        (["ci", "kor_name", "고객번호"], False),
        (["CustomerRegistrationNumber", "성명"], False),  # a long name is still a name
        (["회원 목록 (2026-11-24 추출, 대외비)"], False),
        ([ROWS[0][0], ROWS[0][1]], True),  # a CI
        (["홍길동", "C000123"], True),  # a customer number
        (["홍길동", "0012345"], True),
        (["홍길동", "1960-01-01"], True),
    ],
)
def test_a_row_that_looks_like_data(row: list[str], data: bool) -> None:
    assert looks_like_data(row) is data


def test_broken_gzip_and_parquet_are_input_errors(tmp_path: Path) -> None:
    gz = tmp_path / "in.csv.gz"
    gz.write_bytes(gzip.compress(b"ci,kor_name\n")[:-6])
    with pytest.raises(InputError):
        open_input(gz)
    pqf = tmp_path / "in.parquet"
    pqf.write_bytes(b"not parquet")
    with pytest.raises(InputError, match="not a readable Parquet"):
        InputFile.open(pqf).layout(NEEDED)
    xls = tmp_path / "in.xls"
    xls.write_bytes(b"not a workbook")
    with pytest.raises(InputError, match=r"not a readable \.xls file"):
        InputFile.open(xls).layout(NEEDED)


@pytest.mark.parametrize("name", ["in.doc", "missing.csv"])
def test_unknown_kind_or_missing_file(tmp_path: Path, name: str) -> None:
    if name.endswith(".doc"):
        (tmp_path / name).write_text("x")
    with pytest.raises(InputError):
        InputFile.open(tmp_path / name)


def test_fingerprint_and_snapshot_follow_the_content(tmp_path: Path) -> None:
    a = InputFile.open(write_csv(tmp_path / "a.csv", ROWS))
    b = InputFile.open(write_csv(tmp_path / "b.csv", ROWS[:-1]))
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == InputFile.open(tmp_path / "a.csv").fingerprint()
    assert a.unchanged()
    with (tmp_path / "a.csv").open("a", encoding="utf-8") as more:
        more.write("x,y\n")
    assert not a.unchanged()


def test_layout_describes_how_the_file_was_read(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(f"제목\n\nci;kor_name\n{ROWS[0][0]};가나\n", encoding="cp949")
    layout = open_input(path).layout(NEEDED)
    assert isinstance(layout, Layout)
    assert layout.describe() == {
        "encoding": "CP949",
        "delimiter": "semicolon",
        "header_row": 3,
        "sheet": None,
        "columns": ["ci", "kor_name"],
    }
    assert layout.samples == [{"ci": ROWS[0][0], "kor_name": "가나"}]
