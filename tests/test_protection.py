"""Regulated data under attack and under faults: the attacks replayed as the review ran them."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs.sandbox.server import Fault
from tests.conftest import API_KEY, customers, job, run_cli, write_csv

KEY = "pseudonym-key-for-tests-0123456789abcdef"
NOBODY = 65534


def everything_under(folder: Path) -> bytes:
    """Every byte of every file below `folder`, hidden ones (the store, its log) included."""
    return b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_a_pseudonymized_night_leaves_no_raw_ci_or_key_in_any_file_or_stream(
    sandbox, tmp_path: Path
) -> None:
    people = customers(30)
    rows = [list(p) for p in people[:25]]
    rows.append(["", people[25][0], "홍길동"])  # a stray comma: the CI shifts into the name
    rows.append([people[26][0]])  # a missing field
    rows.append([people[27][0], "가나다라마바사아자차카"])  # an invalid name
    rows.append([people[0][0], "중복"])  # a duplicate
    path = write_csv(tmp_path / "in.csv", rows)
    hostile = Fault("echo", 1.0, api="consent/search", cis=frozenset({people[3][0]}))
    sandbox.sandbox.configure(faults=(hostile,))
    out = tmp_path / "out"
    result = job(
        sandbox, path, out, "--pseudonymize", "--debug", "--keep-progress",
        "--max-error-rate", "1", KOSCOM_PSEUDONYM_KEY=KEY,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert (out / ".progress.sqlite").exists()  # kept on request: it must hold no CI either
    assert len(result.rejects()) == 4
    seen = everything_under(out) + (result.stdout + result.stderr).encode()
    for ci, _ in people:
        assert ci.encode() not in seen
        assert ci[:40].encode() not in seen
    for secret in (API_KEY, KEY):
        assert secret.encode() not in seen
    error = result.reconciled().query("status == 'error'")["error"].tolist()
    assert len(error) <= 1
    assert all(len(e) < 120 for e in error)  # the 100 KB code field was cut


def test_without_keep_progress_a_finished_night_leaves_no_store(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(10))
    out = tmp_path / "out"
    assert job(sandbox, path, out).exit_code == 0
    assert not list(out.glob(".progress.sqlite*"))
    again = job(sandbox, path, out)
    assert again.exit_code == 0
    assert '"event": "finished_before"' in again.stderr
    assert sandbox.sandbox.stats.requests == 20  # the rerun asked nothing


def test_a_planted_lock_symlink_is_refused_and_its_target_untouched(
    sandbox, tmp_path: Path
) -> None:
    precious = tmp_path / "precious.conf"
    precious.write_text("do not truncate me\n")
    out = tmp_path / "out"
    out.mkdir(mode=0o700)
    (out / ".lock").symlink_to(precious)
    result = job(sandbox, write_csv(tmp_path / "in.csv", customers(3)), out)
    assert result.exit_code == 2
    assert "is a link" in result.stderr
    assert precious.read_text() == "do not truncate me\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="planting another user's file needs root")
def test_a_planted_store_is_refused(sandbox, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir(mode=0o700)
    planted = out / ".progress.sqlite"
    sqlite3.connect(planted).close()
    os.chown(planted, NOBODY, NOBODY)
    planted.chmod(0o666)
    result = job(sandbox, write_csv(tmp_path / "in.csv", customers(3)), out)
    assert result.exit_code == 2
    assert "not a file of ours" in result.stderr
    assert planted.stat().st_size == 0  # it received nothing


@pytest.mark.parametrize("attack", ["writable", "foreign"])
def test_an_out_folder_others_control_is_refused(sandbox, tmp_path: Path, attack: str) -> None:
    out = tmp_path / "shared"
    out.mkdir()
    if attack == "writable":
        out.chmod(0o777)
        expected = "can be written by others"
    else:
        if os.geteuid() != 0:
            pytest.skip("giving a folder to another user needs root")
        os.chown(out, NOBODY, NOBODY)
        expected = "belongs to another user"
    result = job(sandbox, write_csv(tmp_path / "in.csv", customers(3)), out)
    assert result.exit_code == 2
    assert expected in result.stderr
    assert not list(out.iterdir())


def test_secrets_in_files_are_refused(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(3))
    key_file = tmp_path / "api.key"
    key_file.write_text(API_KEY)
    key_file.chmod(0o644)
    readable = job(sandbox, path, tmp_path / "a", "--api-key-file", str(key_file))
    assert readable.exit_code == 2
    assert "chmod 600" in readable.stderr
    key_file.chmod(0o600)
    assert job(sandbox, path, tmp_path / "b", "--api-key-file", str(key_file)).exit_code == 0
    short = job(sandbox, path, tmp_path / "c", "--pseudonymize", KOSCOM_PSEUDONYM_KEY="short-key")
    assert short.exit_code == 2
    assert "at least 32" in short.stderr


def test_the_ci_cannot_ride_along_in_kept_columns_under_pseudonymize(
    sandbox, tmp_path: Path
) -> None:
    people = customers(3)
    rows = [[ci, name, ci] for ci, name in people]
    path = write_csv(tmp_path / "in.csv", rows, header=("ci_no", "kor_name", "ci_copy"))
    by_name = job(
        sandbox, path, tmp_path / "a", "--pseudonymize", "--ci-column", "ci_no",
        "--keep-columns", "ci_no", KOSCOM_PSEUDONYM_KEY=KEY,
    )  # fmt: skip
    assert by_name.exit_code == 2
    assert "would write raw CIs under --pseudonymize" in by_name.stderr
    by_shape = job(
        sandbox, path, tmp_path / "b", "--pseudonymize", "--ci-column", "ci_no",
        "--keep-columns", "ci_copy", KOSCOM_PSEUDONYM_KEY=KEY,
    )  # fmt: skip
    assert by_shape.exit_code == 2
    assert "CI-shaped values" in by_shape.stderr
    assert not (tmp_path / "b" / ".progress.sqlite").exists()  # the folder stays free
    for ci, _ in people:
        assert ci not in by_shape.stderr


def test_a_corrupt_store_names_the_file_and_suggests_fresh(sandbox, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir(mode=0o700)
    store = out / ".progress.sqlite"
    store.write_bytes(b"this is not a database" * 100)
    store.chmod(0o600)
    path = write_csv(tmp_path / "in.csv", customers(3))
    result = job(sandbox, path, out)
    assert result.exit_code == 2
    assert str(store) in result.stderr
    assert "pass --fresh" in result.stderr
    assert job(sandbox, path, out, "--fresh").exit_code == 0


@contextlib.contextmanager
def tiny_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(mode=0o700)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0 or shutil.which("mount") is None:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_disk_that_fills_up_stops_the_run_with_its_name(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(3000))
    with tiny_tmpfs(tmp_path / "small", "600k") as out:
        result = run_cli(
            [
                "run", str(path), "--base-url", sandbox.base_url, "--com-id", "F0995",
                "--srv-id", "297", "--out", str(out), "--rate", "5000", "--concurrency", "32",
            ],
            out_dir=out,
        )  # fmt: skip
    assert result.exit_code in (2, 70), result.stderr
    assert "disk is full" in result.stderr or "No space left" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_store_locked_by_another_process_is_named_as_such(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(5))
    out = tmp_path / "out"
    assert job(sandbox, path, out, "--keep-progress").exit_code == 0
    holder = sqlite3.connect(out / ".progress.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = job(sandbox, path, out, "--keep-progress")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 70
    assert "locked by another process" in result.stderr
    assert "Traceback" not in result.stderr


def test_csv_cells_that_a_spreadsheet_would_run_are_defused(sandbox, tmp_path: Path) -> None:
    people = customers(4)
    rows = [
        [people[0][0], "=1+1", "@SUM(A1)"],
        [people[1][0], "+김철수", "-2"],
        [people[2][0], "홍길동", "plain"],
        ["not-a-ci", "=HYPER", "=cmd"],  # a reject: its values go to rejects.csv
    ]
    path = write_csv(tmp_path / "in.csv", rows, header=("ci", "kor_name", "memo"))
    out = tmp_path / "out"
    result = job(sandbox, path, out, "--format", "csv", "--keep-columns", "memo")
    assert result.exit_code == 0, result.stderr
    frame = result.reconciled("csv")
    assert list(frame["kor_name"]) == ["'=1+1", "'+김철수", "홍길동"]
    assert list(frame["memo"]) == ["'@SUM(A1)", "'-2", "plain"]
    rejects = result.rejects()
    assert (rejects.loc[0, "kor_name"], rejects.loc[0, "memo"]) == ("'=HYPER", "'=cmd")
    parquet = job(sandbox, path, tmp_path / "p", "--keep-columns", "memo")
    assert list(parquet.reconciled()["kor_name"])[:2] == ["=1+1", "+김철수"]  # data stays as is


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://bi:secret@127.0.0.1/bi",
        "postgresql://bi@127.0.0.1/bi?password=secret",
        "postgresql://bi@127.0.0.1/bi?PASSWORD=secret",
        "postgresql:///bi?dbname=bi%20password%3Dsecret",
    ],
)
def test_a_sink_url_carrying_a_password_is_refused(sandbox, tmp_path: Path, url: str) -> None:
    path = write_csv(tmp_path / "in.csv", customers(3))
    args = ["--dataset", str(tmp_path / "ds"), "--sink", url]
    result = run_cli(
        ["run", str(path), "--base-url", sandbox.base_url, "--com-id", "F0995", "--srv-id",
         "297", *args],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "must not carry a password" in result.stderr
    assert "secret" not in result.stderr
    assert sandbox.sandbox.stats.requests == 0


def test_a_store_outlives_its_night_only_for_customers_in_error(sandbox, tmp_path: Path) -> None:
    people = customers(40)
    faulty = frozenset({people[0][0]})
    sandbox.sandbox.configure(faults=(Fault("http500", 1.0, api="consent/search", cis=faulty),))
    path = write_csv(tmp_path / "in.csv", people)
    done = job(sandbox, path, tmp_path / "a", "--attempts", "1")
    assert done.exit_code == 0, done.stderr  # 1 of 40 in error: under --max-error-rate
    assert done.summary()["error"] == 1
    assert (tmp_path / "a" / ".progress.sqlite").exists()  # kept: the same command retries it
    sandbox.sandbox.configure(faults=())
    healed = job(sandbox, path, tmp_path / "a", "--attempts", "1")
    assert healed.exit_code == 0, healed.stderr
    assert healed.summary()["error"] == 0
    assert not (tmp_path / "a" / ".progress.sqlite").exists()  # no store outlives a whole night
