"""Hostile files, folders, signals and secrets: the review's attacks on what the job reads and
writes, replayed (issue 20: long cells, xlsx bombs, links, owners, sinks, the report)."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

from tests.conftest import API_KEY, CliResult, base_args, customers, job, run_cli, write_csv
from tests.test_network_faults import run_process

NOBODY = 65534


def nightly(sandbox, path: Path, root: Path, *extra: str, **env: str) -> CliResult:
    """A --dataset run of the real CLI, in this process."""
    args = [a for a in base_args(sandbox, path, root) if a not in ("--out", str(root))]
    return run_cli([*args, "--dataset", str(root), *extra], env, root)


def csv_with_cell(path: Path, before: int, cell: str, after: int) -> Path:
    """A customer file with one hostile `cell` (written as is) between valid rows."""
    people = customers(before + after, salt="cell")
    lines = ["ci,kor_name", *(f"{ci},{name}" for ci, name in people[:before])]
    lines.append(f"{people[0][0][:-4]}AAA=,{cell}")
    lines += [f"{ci},{name}" for ci, name in people[before:]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("megabytes", "before", "after"), [(10, 6, 14), (3, 20, 19)])
def test_a_long_quoted_cell_with_line_breaks_is_one_rejected_row(
    sandbox, tmp_path: Path, megabytes: int, before: int, after: int
) -> None:
    cell = '"' + ("긴 메모\n" * (megabytes * 2**20 // 11)) + '"'
    path = csv_with_cell(tmp_path / "in.csv", before, cell, after)
    result = job(sandbox, path, tmp_path / "out", "--max-error-rate", "1")
    assert result.exit_code == 0, result.stderr
    summary = result.summary()
    assert (summary["rows"], summary["rejected"], summary["customers"]) == (
        before + after + 1,
        1,
        before + after,
    )
    rejects = result.rejects()
    assert list(rejects["row"]) == [str(before + 2)]  # the row a spreadsheet shows it on
    assert "longer than 1,048,576 characters" in rejects.loc[0, "reason"]
    assert len(result.reconciled()) == before + after  # the customers after it are all asked


def test_an_unclosed_quote_that_swallows_the_file_stops_before_any_request(
    sandbox, tmp_path: Path
) -> None:
    path = csv_with_cell(tmp_path / "in.csv", 3, '"an unclosed memo', 47)
    result = job(sandbox, path, tmp_path / "out")
    assert result.exit_code == 2, result.stderr
    assert "the quote opened on line 5 is never closed" in result.stderr
    assert "(48 lines)" in result.stderr
    assert sandbox.sandbox.stats.requests == 0


def xlsx_with_part(path: Path, part: str, chunks: Iterator[bytes]) -> Path:
    """A real workbook of customers whose `part` is replaced by the bytes of `chunks`."""
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["ci", "kor_name"])
    for row in customers(5, salt="xlsx"):
        sheet.append(list(row))
    plain = path.with_suffix(".plain.xlsx")
    book.save(plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            if info.filename != part:
                out.writestr(info, source.read(info))
        with out.open(part, "w", force_zip64=True) as bomb:
            for chunk in chunks:
                bomb.write(chunk)
    return path


def shared_strings(head: bytes, body: Iterator[bytes]) -> Iterator[bytes]:
    yield b'<?xml version="1.0" encoding="UTF-8"?>\n<sst xmlns="' + MAIN_NS + b'">' + head
    yield from body
    yield b"</sst>"


def repeated(block: bytes, megabytes: int) -> Iterator[bytes]:
    times = megabytes * 2**20 // len(block)
    for _ in range(times):
        yield block


MAIN_NS = b"http://schemas.openxmlformats.org/spreadsheetml/2006/main"
ONE_STRING_MB = 600  # the review's was 1.5 GB in a 1.5 MB file: any size over the bound shows it
BOMBS = {
    "one huge shared string": (
        "xl/sharedStrings.xml",
        lambda: shared_strings(b"<si><t>", repeated(b"A" * 2**20, ONE_STRING_MB)),
        "over the 268,435,456 an input may hold",
    ),
    "whitespace in the sheet": (
        "xl/worksheets/sheet1.xml",
        lambda: itertools.chain(
            [b'<?xml version="1.0"?>\n<worksheet xmlns="' + MAIN_NS + b'"><sheetData>'],
            repeated(b" " * 2**20, ONE_STRING_MB),
            [b"</sheetData></worksheet>"],
        ),
        "holds a run of text longer than 1,048,576 bytes",
    ),
    "millions of strings": (
        "xl/sharedStrings.xml",
        lambda: shared_strings(b"", repeated(b"<si><t>x</t></si>" * 4096, 90)),
        "more than 4,194,304 shared strings",
    ),
}


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_an_xlsx_bomb_is_refused_before_it_is_loaded(sandbox, tmp_path: Path, bomb: str) -> None:
    part, chunks, message = BOMBS[bomb]
    path = xlsx_with_part(tmp_path / "in.xlsx", part, chunks())
    assert path.stat().st_size < 2 * 2**20  # a small file
    args = base_args(sandbox, path, tmp_path / "out")
    code, stderr, peak = run_process(args, tmp_path, timeout=120)
    assert code == 2, stderr
    assert message in stderr
    assert "Traceback" not in stderr
    assert peak < 400 * 2**20, f"peak RSS {peak / 2**20:.0f} MiB"
    assert sandbox.sandbox.stats.requests == 0


def test_a_relative_dataset_root_can_be_run_twice(
    sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_csv(tmp_path / "in.csv", customers(4))
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        result = nightly(sandbox, Path("in.csv"), Path("ds"))
        assert result.exit_code == 0, result.stderr
        assert "relative_to" not in result.stderr
    assert "outputs in" in result.stdout
    assert sandbox.sandbox.stats.requests == 8  # the second run asked nothing


@pytest.mark.parametrize("planted", ["world-readable", "link", "foreign"])
def test_a_planted_duckdb_sink_file_is_refused(sandbox, tmp_path: Path, planted: str) -> None:
    sink = tmp_path / "bi.duckdb"
    precious = tmp_path / "precious.duckdb"
    if planted == "link":
        precious.write_bytes(b"")
        sink.symlink_to(precious)
        expected = "is not a file (a link?)"
    else:
        sink.write_bytes(b"")
        sink.chmod(0o644)  # as a umask of 022 leaves it
        expected = "can be read by others (mode 644)"
        if planted == "foreign":
            os.chown(sink, NOBODY, NOBODY)
            expected = "belongs to another user"
    path = write_csv(tmp_path / "in.csv", customers(3))
    result = nightly(sandbox, path, tmp_path / "ds", "--sink", f"duckdb://{sink}")
    assert result.exit_code == 2, result.stderr
    assert expected in result.stderr
    assert sandbox.sandbox.stats.requests == 0
    assert sink.stat().st_size == 0  # nothing was written into it, or through it


@pytest.mark.parametrize("junk", ["\x00", "\r\n", "\n"], ids=["NUL", "CRLF", "LF"])
@pytest.mark.parametrize("where", ["file", "environment"])
def test_a_key_holding_a_control_character_is_bad_usage(
    sandbox, tmp_path: Path, junk: str, where: str
) -> None:
    key = f"{API_KEY[:8]}{junk}X-Injected: 1"
    path = write_csv(tmp_path / "in.csv", customers(3))
    if where == "file":
        key_file = tmp_path / "api.key"
        key_file.write_text(key)
        key_file.chmod(0o600)
        result = job(sandbox, path, tmp_path / "out", "--api-key-file", str(key_file))
    else:
        if junk == "\x00":
            pytest.skip("an environment variable cannot hold a NUL")
        result = job(sandbox, path, tmp_path / "out", KOSCOM_API_KEY=key)
    assert result.exit_code == 2, result.stderr
    assert "holds a control character" in result.stderr
    assert "internal error" not in result.stderr
    assert "Injected" not in result.stderr
    assert sandbox.sandbox.stats.requests == 0


def test_a_key_file_of_another_user_is_refused(sandbox, tmp_path: Path) -> None:
    key_file = tmp_path / "api.key"
    key_file.write_text(API_KEY)
    key_file.chmod(0o600)
    os.chown(key_file, NOBODY, NOBODY)
    path = write_csv(tmp_path / "in.csv", customers(3))
    result = job(sandbox, path, tmp_path / "out", "--api-key-file", str(key_file))
    assert result.exit_code == 2, result.stderr
    assert "belongs to another user" in result.stderr
    assert sandbox.sandbox.stats.requests == 0


@pytest.mark.parametrize(
    "query", ["sslpassword=secret", "SSLPassword=secret", "sslmode=require&sslpassword=secret"]
)
def test_a_sink_url_with_an_ssl_password_is_refused(sandbox, tmp_path: Path, query: str) -> None:
    path = write_csv(tmp_path / "in.csv", customers(3))
    url = f"postgresql://bi@127.0.0.1/bi?{query}"
    result = nightly(sandbox, path, tmp_path / "ds", "--sink", url)
    assert result.exit_code == 2, result.stderr
    assert "must not carry a password" in result.stderr
    assert "secret" not in result.stderr
    assert sandbox.sandbox.stats.requests == 0


@contextlib.contextmanager
def read_only_view(folder: Path, view: Path) -> Iterator[Path]:
    """`folder` seen through a read-only bind mount at `view`, as an archive share is."""
    view.mkdir(mode=0o700)
    steps = (
        ["mount", "--bind", str(folder), str(view)],
        ["mount", "-o", "remount,bind,ro", str(view)],
    )
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            subprocess.run(["umount", str(view)], capture_output=True, check=False)
            pytest.skip(f"cannot make a read-only mount here: {done.stderr.strip()}")
    try:
        yield view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


def test_a_finished_folder_on_a_read_only_mount_says_so(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(3))
    out = tmp_path / "out"
    assert job(sandbox, path, out).exit_code == 0
    with read_only_view(out, tmp_path / "archive") as archived:
        result = job(sandbox, path, archived)
    assert result.exit_code == 2, result.stderr
    assert "is on a read-only file system" in result.stderr
    assert "the night in it is finished" in result.stderr
    assert "is a link" not in result.stderr


def test_the_report_on_a_read_only_folder_is_one_line(sandbox, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert job(sandbox, write_csv(tmp_path / "in.csv", customers(3)), out).exit_code == 0
    with read_only_view(out, tmp_path / "archive") as archived:
        result = run_cli(["report", str(archived)])
    assert result.exit_code == 2, result.stderr
    assert "report.html cannot be written (Read-only file system)" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def damage(out: Path, what: str, tmp_path: Path) -> str:
    """Spoil one file `report` reads; the words its one line must say."""
    if what == "summary":
        (out / "summary.json").write_text('{"state": "done", "rows": ')
        return "summary.json is damaged"
    if what == "summary-list":
        (out / "summary.json").write_text("[1, 2]")
        return "summary.json is damaged"
    if what == "timeline":
        (out / "timeline.parquet").write_bytes(b"PAR1 not really PAR1")
        return "timeline.parquet is damaged"
    if what == "samples":
        (out / "timeline.parquet").unlink()
        (out / ".timeline.jsonl").write_text('{"at": "yesterday"}\n')
        return ".timeline.jsonl is damaged"
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (out / "summary.json").unlink()
    (out / "summary.json").symlink_to(secret)
    return "is a link or not a plain file"


@pytest.mark.parametrize("what", ["summary", "summary-list", "timeline", "samples", "link"])
def test_the_report_on_a_damaged_or_planted_folder_is_one_line(
    sandbox, tmp_path: Path, what: str
) -> None:
    out = tmp_path / "out"
    assert job(sandbox, write_csv(tmp_path / "in.csv", customers(3)), out).exit_code == 0
    expected = damage(out, what, tmp_path)
    result = run_cli(["report", str(out)])
    assert result.exit_code == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert not (out / "report.html").exists()
