"""Hostile files, folders, signals and secrets: the review's attacks on what the job reads and
writes, replayed (issue 20: long cells, xlsx bombs, links, owners, sinks, the report)."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import signal
import stat
import subprocess
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import openpyxl
import pandas as pd
import psycopg
import pytest

from tests.conftest import (
    API_KEY,
    CliResult,
    base_args,
    customers,
    job,
    run_cli,
    spawn,
    write_csv,
)
from tests.test_dataset import PG_PASSWORD, postgres  # noqa: F401  (a fixture)
from tests.test_network_faults import run_process

NOBODY = 65534
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="giving a file to another user needs root"
)


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
        expected = "is a link; name the file itself"
    else:
        sink.write_bytes(b"")
        sink.chmod(0o644)  # as a umask of 022 leaves it
        expected = "can be read by others (mode 644)"
        if planted == "foreign":
            if os.geteuid() != 0:
                pytest.skip("giving a file to another user needs root")
            os.chown(sink, NOBODY, NOBODY)
            expected = "belongs to another user"
    path = write_csv(tmp_path / "in.csv", customers(3))
    result = nightly(sandbox, path, tmp_path / "ds", "--sink", f"duckdb://{sink}")
    assert result.exit_code == 2, result.stderr
    assert expected in result.stderr
    assert sandbox.sandbox.stats.requests == 0
    assert sink.stat().st_size == 0  # nothing was written into it, or through it


# An environment variable cannot hold a NUL, so that case is the file's alone.
@pytest.mark.parametrize(
    ("where", "junk"),
    [
        ("file", "\x00"),
        ("file", "\r\n"),
        ("file", "\n"),
        ("environment", "\r\n"),
        ("environment", "\n"),
    ],
    ids=["file-NUL", "file-CRLF", "file-LF", "environment-CRLF", "environment-LF"],
)
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
        result = job(sandbox, path, tmp_path / "out", KOSCOM_API_KEY=key)
    assert result.exit_code == 2, result.stderr
    assert "holds a control character" in result.stderr
    assert "internal error" not in result.stderr
    assert "Injected" not in result.stderr
    assert sandbox.sandbox.stats.requests == 0


@needs_root
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
    with contextlib.ExitStack() as undo:
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                pytest.skip(f"cannot make a read-only mount here: {done.stderr.strip()}")
            if step[1] == "--bind":
                undo.callback(subprocess.run, ["umount", "-l", str(view)], check=False)
        yield view


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


def plant(root: Path, where: str, outside: Path) -> Path:
    """A link (or a folder another user controls) planted at `where` under `root`."""
    planted = root / where
    planted.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if where.endswith(".jsonl"):
        outside.write_text("precious\n")
    else:
        outside.mkdir()
        outside.chmod(0o755)  # whatever the umask an earlier in-process run set
    planted.symlink_to(outside)
    return planted


@pytest.mark.parametrize("where", [".work", "reconciled", "reconciled/run_date=2026-11-24", "runs"])
def test_a_link_under_the_dataset_root_is_never_followed(
    sandbox, tmp_path: Path, where: str
) -> None:
    root = tmp_path / "ds"
    root.mkdir(mode=0o700)
    outside = tmp_path / "elsewhere"
    plant(root, where, outside)
    path = write_csv(tmp_path / "in.csv", customers(3))
    result = nightly(sandbox, path, root, "--run-date", "2026-11-24")
    assert result.exit_code == 2, result.stderr
    assert "is not a folder (a link?)" in result.stderr
    assert list(outside.iterdir()) == []  # nothing written through it
    assert stat.S_IMODE(outside.stat().st_mode) == 0o755  # and no chmod either
    assert sandbox.sandbox.stats.requests == 0


def test_a_linked_timeline_file_is_refused_and_its_target_untouched(
    sandbox, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir(mode=0o700)
    target = tmp_path / "precious.txt"
    plant(out, ".timeline.jsonl", target)
    result = job(sandbox, write_csv(tmp_path / "in.csv", customers(3)), out)
    assert result.exit_code == 2, result.stderr
    assert "is a link, not a file of ours" in result.stderr
    assert target.read_text() == "precious\n"


@needs_root
@pytest.mark.parametrize("where", ["reconciled", "runs", ".work"])
def test_a_dataset_subfolder_another_user_controls_is_refused(
    sandbox, tmp_path: Path, where: str
) -> None:
    root = tmp_path / "ds"
    path = write_csv(tmp_path / "in.csv", customers(3))
    first = nightly(sandbox, path, root, "--run-date", "2026-11-23")
    assert first.exit_code == 0, first.stderr
    folder = root / where
    os.chown(folder, NOBODY, NOBODY)
    folder.chmod(0o777)
    result = nightly(sandbox, path, root, "--run-date", "2026-11-24")
    assert result.exit_code == 2, result.stderr
    assert f"{folder} belongs to another user" in result.stderr
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777  # refused before any chmod
    assert sandbox.sandbox.stats.requests == 6  # the second night asked nothing


def run_log(root: Path) -> pd.DataFrame:
    return pd.read_parquet(root / "runs" / "runs.parquet")


def night_summary(root: Path, day: str) -> dict[str, Any]:
    path = root / "summary" / f"run_date={day}" / "summary.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


def test_a_failing_sink_is_recorded_as_such_and_the_rerun_loads_it(sandbox, tmp_path: Path) -> None:
    root, day = tmp_path / "ds", "2026-11-24"
    sink = tmp_path / "bi" / "bi.duckdb"  # its folder is missing: the load fails
    path = write_csv(tmp_path / "in.csv", customers(5))
    args = ("--run-date", day, "--sink", f"duckdb://{sink}")
    failed = nightly(sandbox, path, root, *args)
    assert failed.exit_code == 5, failed.stderr
    runs = run_log(root)
    assert len(runs) == 1
    assert runs.loc[0, "exit_code"] == 5
    assert runs.loc[0, "sinks"].startswith("failed: outputs are published, but loading duckdb")
    summary = night_summary(root, day)
    assert (summary["state"], summary["exit_code"]) == ("done", 5)
    assert summary["sinks"] == runs.loc[0, "sinks"]
    sink.parent.mkdir(mode=0o700)
    again = nightly(sandbox, path, root, *args)
    assert again.exit_code == 0, again.stderr
    assert '"event": "published_before"' in again.stderr
    runs = run_log(root)
    assert len(runs) == 1  # the same attempt, told again: one row
    assert (runs.loc[0, "exit_code"], runs.loc[0, "sinks"]) == (0, "loaded")
    assert night_summary(root, day)["exit_code"] == 0
    assert sandbox.sandbox.stats.requests == 10  # nothing asked twice
    with duckdb.connect(str(sink), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM reconciled").fetchone() == (5,)
        assert con.execute("SELECT sinks FROM runs").fetchall() == [("loaded",)]


@pytest.fixture
def locked_sink(
    postgres: str,  # noqa: F811  (test_dataset's fixture)
    request: pytest.FixtureRequest,
) -> Iterator[Callable[[], None]]:
    """A PostgreSQL sink whose `reconciled` table a dashboard holds locked: a load waits.

    Yields the function that lets the load go on (the dashboard's transaction ends)."""
    name = "files_" + re.sub(r"\W", "_", request.node.name)[-40:].lower()
    with psycopg.connect(postgres, autocommit=True, password=PG_PASSWORD) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = postgres.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url, autocommit=True, password=PG_PASSWORD) as setup:
        setup.execute("CREATE TABLE reconciled (run_date date NOT NULL)")  # the load adds the rest
    dashboard = psycopg.connect(url, password=PG_PASSWORD)
    dashboard.execute("LOCK TABLE reconciled IN ACCESS EXCLUSIVE MODE")
    request.node.sink_url = url
    try:
        yield dashboard.rollback
    finally:
        dashboard.close()


def spawned_night(sandbox, path: Path, root: Path, *extra: str) -> subprocess.Popen[str]:
    args = [a for a in base_args(sandbox, path, root) if a not in ("--out", str(root))]
    return spawn([*args, "--dataset", str(root), *extra], {"PGPASSWORD": PG_PASSWORD})


def wait_for_line(proc: subprocess.Popen[str], needle: str) -> None:
    assert proc.stderr is not None
    for line in proc.stderr:
        if needle in line:
            return
    raise AssertionError(f"the run ended before {needle!r} (exit {proc.wait()})")


def night_in_its_sink(
    sandbox, tmp_path: Path, url: str
) -> tuple[Path, str, Path, subprocess.Popen[str]]:
    """A night run as a process of its own, once it has published and its sink load began."""
    root, day = tmp_path / "ds", "2026-11-24"
    path = write_csv(tmp_path / "in.csv", customers(5))
    proc = spawned_night(sandbox, path, root, "--run-date", day, "--sink", url)
    wait_for_line(proc, '"event": "published"')
    return root, day, path, proc


def test_a_kill_between_publish_and_sink_load_leaves_one_honest_row(
    sandbox, tmp_path: Path, locked_sink: Callable[[], None], request: pytest.FixtureRequest
) -> None:
    url = request.node.sink_url
    root, day, path, proc = night_in_its_sink(sandbox, tmp_path, url)
    time.sleep(0.5)  # inside the load, waiting for the dashboard's lock
    proc.kill()
    proc.wait(30)
    locked_sink()
    runs = run_log(root)
    assert list(runs["sinks"]) == ["loading"]  # not "done and loaded": it never was
    again = nightly(sandbox, path, root, "--run-date", day, "--sink", url, PGPASSWORD=PG_PASSWORD)
    assert again.exit_code == 0, again.stderr
    runs = run_log(root)
    assert len(runs) == 1, runs[["run_id", "state", "sinks"]]
    assert (runs.loc[0, "exit_code"], runs.loc[0, "sinks"]) == (0, "loaded")
    assert sandbox.sandbox.stats.requests == 10
    with psycopg.connect(url, password=PG_PASSWORD) as pg:
        assert pg.execute("SELECT count(*) FROM reconciled").fetchone() == (5,)


def test_sigint_right_after_publish_gives_130_and_says_so(
    sandbox, tmp_path: Path, locked_sink: Callable[[], None], request: pytest.FixtureRequest
) -> None:
    root, day, _, proc = night_in_its_sink(sandbox, tmp_path, request.node.sink_url)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    locked_sink()  # the load it was in goes on, whole
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "stopped by SIGINT" in stderr
    assert "Traceback" not in stderr
    runs = run_log(root)
    assert len(runs) == 1
    assert runs.loc[0, "exit_code"] == 130
    assert runs.loc[0, "sinks"].startswith("interrupted by SIGINT")
    assert night_summary(root, day)["exit_code"] == 130
    stop = json.loads((root / ".work" / day / "summary.json").read_text(encoding="utf-8"))
    assert (stop["state"], stop["exit_code"]) == ("stopped", 130)
