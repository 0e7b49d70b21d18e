"""Reading inputs: encodings told apart without being told, gzip, Parquet, bad files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch.errors import InputError
from batch.reader import InputFile
from jobs.koscom import LEGACY_ENCODINGS
from tests.conftest import customers, write_csv


def open_input(path: Path) -> InputFile:
    """An input as the KOSCOM job opens it: CP949 (and EUC-KR) read when not UTF-8."""
    return InputFile.open(path, legacy=LEGACY_ENCODINGS)


ROWS = [(ci, name) for ci, name in customers(50)]


def read_all(source: InputFile, chunk: int = 7, skip: int = 0) -> list[tuple[int, str, str]]:
    return [
        (r.row, r.values["ci"] or "", r.values["kor_name"] or "")
        for part in source.iter_chunks(chunk, skip_rows=skip)
        for r in part
    ]


@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("utf-8", "utf-8-sig"), ("utf-8-sig", "utf-8-sig"), ("cp949", "cp949"), ("euc-kr", "cp949")],
)
def test_each_encoding_is_detected_and_read(tmp_path: Path, encoding: str, detected: str) -> None:
    path = write_csv(tmp_path / "in.csv", ROWS, encoding=encoding)
    source = open_input(path)
    assert source.encoding == detected
    assert source.columns() == ["ci", "kor_name"]  # no BOM left on the first column name
    assert read_all(source) == [(i + 1, ci, name) for i, (ci, name) in enumerate(ROWS)]


def test_cp949_only_characters_are_read(tmp_path: Path) -> None:
    # '똠' is in CP949 but not in EUC-KR's KS X 1001 set: Excel writes it.
    rows = [(ROWS[0][0], "김똠방")]
    path = write_csv(tmp_path / "in.csv", rows, encoding="cp949")
    assert read_all(open_input(path))[0][2] == "김똠방"


def test_gzip_csv_is_read(tmp_path: Path) -> None:
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
    got = list(source.iter_chunks(8))
    assert [len(c) for c in got] == [8, 8, 8, 8, 8, 8, 2]
    assert got[0][0].values["no"] == "0"


def test_skip_rows_resumes_where_ingest_stopped(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", ROWS)
    assert read_all(open_input(path), skip=45) == [
        (i + 1, ci, n) for i, (ci, n) in enumerate(ROWS) if i >= 45
    ]


def test_rows_with_the_wrong_field_count_are_reported_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text(f"ci,kor_name\n{ROWS[0][0]},a,extra\n\n{ROWS[1][0]},b\n", encoding="utf-8")
    rows = [r for c in open_input(path).iter_chunks(10) for r in c]
    assert [(r.row, r.problem) for r in rows] == [
        (1, "has 3 fields where the header has 2"),
        (2, None),  # the blank line is not a row
    ]


def test_undetectable_encoding_asks_for_encoding(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b"ci,kor_name\n" + bytes(range(128, 256)) * 50 + b",x\n")
    with pytest.raises(InputError, match="neither UTF-8 nor CP949") as caught:
        open_input(path)
    assert caught.value.setting == "encoding"  # the CLI turns it into "pass --encoding"


def test_broken_gzip_and_parquet_are_input_errors(tmp_path: Path) -> None:
    gz = tmp_path / "in.csv.gz"
    gz.write_bytes(gzip.compress(b"ci,kor_name\n")[:-6])
    with pytest.raises(InputError):
        open_input(gz)
    pqf = tmp_path / "in.parquet"
    pqf.write_bytes(b"not parquet")
    with pytest.raises(InputError, match="not a readable Parquet"):
        list(InputFile.open(pqf).iter_chunks(10))


@pytest.mark.parametrize("name", ["in.xls", "missing.csv"])
def test_unknown_kind_or_missing_file(tmp_path: Path, name: str) -> None:
    if name.endswith(".xls"):
        (tmp_path / name).write_text("x")
    with pytest.raises(InputError):
        InputFile.open(tmp_path / name)


def test_fingerprint_changes_with_content(tmp_path: Path) -> None:
    a = InputFile.open(write_csv(tmp_path / "a.csv", ROWS))
    b = InputFile.open(write_csv(tmp_path / "b.csv", ROWS[:-1]))
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == InputFile.open(tmp_path / "a.csv").fingerprint()
