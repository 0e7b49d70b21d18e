"""Messages in the user's words: their column names, what they passed, plain plurals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from jobs.sandbox.server import Fault
from tests.conftest import customers, job, write_csv


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("header", "flags", "suggested"),
    [
        (("CI", "성명"), (), "did you mean --ci-column CI --name-column 성명?"),
        (("ci", "이름"), (), "did you mean --name-column 이름?"),
        (("Ci", "고객명"), (), "did you mean --ci-column Ci --name-column 고객명?"),
        (("ci", "NAME"), (), "did you mean --name-column NAME?"),
        (("CI", "KOR_NAME"), ("--name-column", "KOR_NAME"), "did you mean --ci-column CI?"),
    ],
)
def test_a_missing_column_suggests_the_header_it_likely_is(
    sandbox, tmp_path: Path, header: tuple[str, str], flags: tuple[str, ...], suggested: str
) -> None:
    path = write_csv(tmp_path / "in.csv", customers(3), header=header)
    result = job(sandbox, path, tmp_path / "out", *flags)
    assert result.exit_code == 2
    assert last_line(result.stderr).endswith(suggested), result.stderr
    assert sandbox.sandbox.stats.requests == 0


def test_reject_reasons_name_the_users_columns(sandbox, tmp_path: Path) -> None:
    people = customers(4)
    rows = [*people, ("short", "홍길동"), (people[1][0], ""), (people[0][0], "다른이름")]
    path = write_csv(tmp_path / "in.csv", rows, header=("CI", "성명"))
    result = job(sandbox, path, tmp_path / "out", "--ci-column", "CI", "--name-column", "성명")
    assert result.exit_code == 0, result.stderr
    rejects = result.rejects()
    assert list(rejects["reason"]) == [
        "CI has 5 characters, not 88",
        "성명 is empty",
        "duplicate CI: first seen on row 2",
    ]


def test_a_wrong_encoding_that_was_given_is_not_told_to_pass_one(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(3), encoding="cp949")
    path.write_bytes(path.read_bytes().replace(b"kor_name", "kor_name,지점".encode("cp949")))
    result = job(sandbox, path, tmp_path / "out", "--encoding", "utf-8")
    assert result.exit_code == 2
    line = last_line(result.stderr)
    assert "pass --encoding" not in line
    assert "is not valid UTF-8, the encoding given (it looks like CP949)" in line
    assert line.endswith("name the file's encoding with --encoding, or leave it out to detect it")


def test_a_real_run_says_how_it_read_the_input(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(3))
    result = job(sandbox, path, tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    read = [line for line in lines if line.startswith("read as: ")]
    assert read == [
        "read as: encoding UTF-8, comma-delimited, header on row 1; columns: ci, kor_name"
    ]


def test_a_finished_night_run_again_says_it_had_finished_when_and_that_nothing_was_asked(
    sandbox, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "in.csv", customers(5))
    first = job(sandbox, path, tmp_path / "out")
    assert first.exit_code == 0, first.stderr
    asked = sandbox.sandbox.stats.requests
    again = job(sandbox, path, tmp_path / "out", TZ="Asia/Seoul")
    assert again.exit_code == 0
    assert sandbox.sandbox.stats.requests == asked
    said = again.stdout.splitlines()[0]
    run_id = first.summary()["run_id"]
    assert re.fullmatch(
        rf"already finished: run {run_id} reconciled in\.csv here at "
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ \(exit 0\); nothing was asked now\. "
        r"Its summary and outputs follow; pass --fresh to run it again\.",
        said,
    ), said
    assert "already finished" not in first.stdout


def test_one_attempt_is_said_in_the_singular(sandbox, tmp_path: Path) -> None:
    people = customers(3)
    sandbox.sandbox.configure(
        faults=(Fault("http503", 1.0, api="register/search", cis=frozenset([people[0][0]])),)
    )
    path = write_csv(tmp_path / "in.csv", people)
    result = job(sandbox, path, tmp_path / "out", "--attempts", "1", "--max-error-rate", "1")
    assert result.exit_code == 0, result.stderr
    (reason,) = result.summary()["errors_by_reason"]
    assert reason.endswith("after 1 attempt"), reason
