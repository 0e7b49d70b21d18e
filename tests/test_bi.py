"""People and BI: xlsx for analysts, sharing modes, the old-layout move, a sink old CLIs read."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.dataset.outputs import timeline_schema
from jobs.sandbox.server import Fault
from tests.conftest import ROOT, base_args, customers, job, run_cli, write_csv
from tests.fake_job import Behaviour, WordJob, run_words

OLD_DUCKDB = "1.0.0"  # the oldest DuckDB release whose CLI must open the sink file
PIP = (sys.executable, "-m", "pip", "install", "--quiet", "--no-deps")


def dataset_args(sandbox, path: Path, root: Path, day: str, *extra: str) -> list[str]:
    args = base_args(sandbox, path, root)
    at = args.index("--out")
    args[at : at + 2] = ["--dataset", str(root), "--run-date", day]
    return [*args, *extra]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_xlsx_is_one_workbook_with_typed_cells_frozen_header_and_filters(
    sandbox, tmp_path: Path
) -> None:
    people = customers(30)
    path = write_csv(tmp_path / "in.csv", people)
    # The store is kept so that the same answers can be written again in another format.
    result = job(sandbox, path, tmp_path / "x", "--format", "xlsx", "--keep-progress")
    assert result.exit_code == 0, result.stderr
    assert not (tmp_path / "x" / "accounts.xlsx").exists()
    workbook = shutil.copy(tmp_path / "x" / "reconciled.xlsx", tmp_path / "book.xlsx")
    parquet = job(sandbox, path, tmp_path / "x", "--keep-progress")
    assert parquet.summary()["requests"] == 0
    book = openpyxl.load_workbook(workbook)
    every, accounts_title = "전체 고객 (reconciled)", "계좌 (accounts)"
    assert every in book.sheetnames
    assert accounts_title in book.sheetnames
    sheet, accounts = book[every], book[accounts_title]
    header = [c.value for c in sheet[1]]
    assert header == list(parquet.reconciled().columns)
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:L{len(people) + 1}"
    assert accounts.freeze_panes == "A2"
    want = parquet.reconciled()
    rows = list(sheet.iter_rows(min_row=2))
    assert [r[0].value for r in rows] == list(want["ci"])
    assert [r[1].value for r in rows] == [name for _, name in people]  # Korean intact
    col = {name: i for i, name in enumerate(header)}
    for row, (_, expected) in zip(rows, want.iterrows(), strict=True):
        assert row[col["ci"]].data_type == "s"
        assert row[col["status"]].value == expected.status
        stamp = row[col["checked_at"]]
        assert stamp.is_date
        assert stamp.number_format.endswith('"KST"')
        kst = expected.checked_at.tz_convert(ZoneInfo("Asia/Seoul")).tz_localize(None)
        assert abs(stamp.value - kst.to_pydatetime()) <= dt.timedelta(milliseconds=1)
        terms = row[col["terms_expire_date"]]
        if pd.isna(expected.terms_expire_date):
            assert terms.value is None
        else:
            assert terms.is_date
            assert terms.value.date() == expected.terms_expire_date
        linked = row[col["linked_accounts"]]
        assert linked.data_type == "n"
        assert linked.value == expected.linked_accounts
        assert row[col["is_non_member"]].data_type == "b"
    # The accounts sheet shows the customer's name beside the CI.
    account_rows = [[r[0].value, *(c.value for c in r[2:])] for r in accounts.iter_rows(min_row=2)]
    assert account_rows == [
        [None if pd.isna(v) else v for v in r] for r in parquet.accounts().itertuples(index=False)
    ]
    com_ids = {r[1] for r in account_rows}
    assert any(c.startswith("0") for c in com_ids)  # zeros kept: text cells
    assert all(
        c.data_type == "s" for r in accounts.iter_rows(min_row=2) for c in r[2:4]
    )  # com_id and vt_acc_no are text


def test_a_format_change_leaves_no_stale_files(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(5))
    out = tmp_path / "out"
    tables = {"reconciled", "accounts"}

    def table_files() -> set[str]:
        return {p.name for p in out.iterdir() if p.name.split(".")[0] in tables}

    keep = "--keep-progress"  # each run writes the same answers again, from the store
    assert job(sandbox, path, out, keep).exit_code == 0
    assert table_files() == {"reconciled.parquet", "accounts.parquet"}
    assert job(sandbox, path, out, "--format", "csv", keep).exit_code == 0
    assert table_files() == {"reconciled.csv", "accounts.csv"}
    assert job(sandbox, path, out, "--format", "xlsx", keep).exit_code == 0
    assert table_files() == {"reconciled.xlsx"}
    assert job(sandbox, path, out, keep).exit_code == 0
    assert table_files() == {"reconciled.parquet", "accounts.parquet"}


def test_file_mode_0640_shares_the_dataset_with_a_group_but_not_the_work(
    sandbox, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "in.csv", customers(5))
    root = tmp_path / "bi"
    result = run_cli(dataset_args(sandbox, path, root, "2026-11-10", "--file-mode", "0640"))
    assert result.exit_code == 0, result.stderr
    published = [p for p in root.rglob("*") if ".work" not in p.parts]
    assert {mode(p) for p in published if p.is_file()} == {0o640}
    assert {mode(p) for p in published if p.is_dir()} | {mode(root)} == {0o750}
    work = root / ".work"
    assert mode(work) == 0o700
    assert {mode(p) for p in work.rglob("*")} <= {0o600, 0o700}  # the progress holds raw CIs
    # Back to the default, the night made again: the folders close, its files follow.
    assert run_cli(dataset_args(sandbox, path, root, "2026-11-10", "--fresh")).exit_code == 0
    assert mode(root) == 0o700
    assert mode(root / "reconciled" / "run_date=2026-11-10" / "reconciled.parquet") == 0o600


def test_world_readable_is_refused_while_files_hold_raw_cis(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(5))
    refused = job(sandbox, path, tmp_path / "a", "--file-mode", "0644")
    assert refused.exit_code == 2
    assert "world-readable" in refused.stderr
    assert "--pseudonymize" in refused.stderr
    assert not (tmp_path / "a").exists()
    key = {"KOSCOM_PSEUDONYM_KEY": "k-2f9c-0123456789abcdef0123456789abcdef"}
    shared = job(sandbox, path, tmp_path / "b", "--file-mode", "0644", "--pseudonymize", **key)
    assert shared.exit_code == 0, shared.stderr
    assert mode(tmp_path / "b") == 0o755
    assert mode(tmp_path / "b" / "reconciled.parquet") == 0o644
    assert not (tmp_path / "b" / ".progress.sqlite").exists()  # gone after a clean night
    leak = job(
        sandbox, path, tmp_path / "c", "--pseudonymize", "--keep-columns", "ci", **key
    )  # keeping the CI column would put raw CIs back
    assert leak.exit_code == 2


@pytest.mark.parametrize("kept", ["CI", "Status", "CI_HMAC", "memo,MEMO"])
def test_a_kept_column_differing_only_by_case_is_refused(sandbox, tmp_path: Path, kept) -> None:
    header = ("ci", "kor_name", "CI", "Status", "CI_HMAC", "memo", "MEMO")
    rows = [(ci, name, "a", "b", "c", "d", "e") for ci, name in customers(3)]
    path = write_csv(tmp_path / "in.csv", rows, header=header)
    result = job(sandbox, path, tmp_path / "out", "--keep-columns", kept)
    assert result.exit_code == 2
    assert "differs only by case" in result.stderr
    assert sandbox.sandbox.stats.requests == 0
    fine = job(sandbox, path, tmp_path / "ok", "--keep-columns", "memo")  # the control
    assert fine.exit_code == 0, fine.stderr


def test_exit_1_says_the_error_fraction_and_the_top_reasons(sandbox, tmp_path: Path) -> None:
    people = customers(20)
    odd = frozenset(ci for ci, _ in people[:6])
    sandbox.sandbox.configure(
        faults=(Fault("unknown_result", 1.0, api="register/search", cis=odd),)
    )
    path = write_csv(tmp_path / "in.csv", people)
    result = job(sandbox, path, tmp_path / "out", "--max-error-rate", "0.25")
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("member-recon:")]
    assert lines == [
        (
            "member-recon: 6 of 20 customers (30.0%) ended in error, above --max-error-rate "
            "0.25; top reasons: 6 x register/search: answered an unknown "
            "result 'maybe'"
        ),
        (
            "member-recon: run the same command again to ask only the customers in error, "
            "and publish again"
        ),
    ]
    assert f"for a report page, run: member-recon report {tmp_path / 'out'}" in result.stdout


def to_old_layout(root: Path) -> None:
    """Rearrange a root into the layout before one folder per table, as runs left it."""
    for table_dir in [p for p in root.iterdir() if p.is_dir() and p.name != ".work"]:
        if table_dir.name == "runs":
            (table_dir / "runs.parquet").rename(root / "runs.parquet")
        for night in table_dir.glob("run_date=*"):
            (root / night.name).mkdir(exist_ok=True)
            for file in night.iterdir():
                file.rename(root / night.name / file.name)
        shutil.rmtree(table_dir)
    for work in (root / ".work").iterdir():
        old = root / "_work" / f"run_date={work.name}"
        old.parent.mkdir(exist_ok=True)
        work.rename(old)
        shutil.copy(root / old.name / "reconciled.parquet", old)  # the old published copies
    (root / ".work").rmdir()


def test_an_old_layout_is_refused_then_migrated_and_the_change_feed_finds_its_night(
    sandbox, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "in.csv", customers(12))
    root = tmp_path / "bi"
    # Runs of the old layout always kept their store: so does this one.
    assert (
        run_cli(dataset_args(sandbox, path, root, "2026-11-01", "--keep-progress")).exit_code == 0
    )
    to_old_layout(root)
    assert (root / "run_date=2026-11-01" / "reconciled.parquet").exists()
    refused = run_cli(dataset_args(sandbox, path, root, "2026-11-02"))
    assert refused.exit_code == 2
    assert "member-recon migrate" in refused.stderr
    moved = run_cli(["migrate", str(root)])
    assert moved.exit_code == 0, moved.stderr
    assert not list(root.glob("run_date=*"))
    assert not (root / "_work").exists()
    assert sorted(str(p.relative_to(root)) for p in root.glob("**/*.parquet")) == [
        "accounts/run_date=2026-11-01/accounts.parquet",
        "changes/run_date=2026-11-01/changes.parquet",
        "reconciled/run_date=2026-11-01/reconciled.parquet",
        "runs/runs.parquet",
        "timeline/run_date=2026-11-01/timeline.parquet",
    ]
    assert (root / ".work" / "2026-11-01" / ".progress.sqlite").exists()
    assert run_cli(["migrate", str(root)]).stdout.endswith("nothing to do\n")
    sandbox.sandbox.configure(answer_salt="next")
    after = run_cli(dataset_args(sandbox, path, root, "2026-11-02"))
    assert after.exit_code == 0, after.stderr
    changes = pq.read_table(root / "changes" / "run_date=2026-11-02" / "changes.parquet")
    assert changes.num_rows > 0
    assert set(changes.column("previous_run_date").to_pylist()) == {dt.date(2026, 11, 1)}
    again = run_cli(dataset_args(sandbox, path, root, "2026-11-01"))  # resumes its moved store
    assert again.exit_code == 0, again.stderr
    assert (
        '"requests": 0' in (root / "summary" / "run_date=2026-11-01" / "summary.json").read_text()
    )


def old_duckdb() -> Path:
    """DuckDB OLD_DUCKDB in a folder of its own (pip, once; kept in .venv for the next run)."""
    target = ROOT / ".venv" / f"old-duckdb-{OLD_DUCKDB}"
    if not (target / "duckdb").exists():
        done = subprocess.run(
            [*PIP, "--target", str(target), f"duckdb=={OLD_DUCKDB}"],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        if done.returncode != 0:
            pytest.skip(f"duckdb {OLD_DUCKDB} could not be installed: {done.stderr[-200:]}")
    return target


def test_the_duckdb_sink_opens_in_the_oldest_supported_duckdb(sandbox, tmp_path: Path) -> None:
    older = old_duckdb()
    path = write_csv(tmp_path / "in.csv", customers(10))
    sink = tmp_path / "bi.duckdb"
    for day in ("2026-11-01", "2026-11-02"):
        result = run_cli(
            dataset_args(sandbox, path, tmp_path / "bi", day, "--sink", f"duckdb:///{sink}")
        )
        assert result.exit_code == 0, result.stderr
    script = (
        "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
        "print(duckdb.__version__, con.execute('select count(*), count(distinct run_date) "
        "from reconciled').fetchone(), con.execute('select count(*) from runs').fetchone())"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    opened = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            f"import sys; sys.path.insert(0, {str(older)!r}); {script}",
            str(sink),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.split() == [OLD_DUCKDB, "(20,", "2)", "(2,)"]


def test_the_engine_keeps_a_timeline_of_the_run(tmp_path: Path) -> None:
    words = [("".join(chr(97 + (i // 26**k) % 26) for k in range(3)),) for i in range(120)]
    path = write_csv(tmp_path / "words.csv", words, ("word",))
    result = run_words(path, tmp_path / "out", WordJob(Behaviour(delay=0.03)), workers=2)
    assert result.summary["state"] == "done"
    table = pq.read_table(tmp_path / "out" / "timeline.parquet")
    assert {"at", "session_started", "elapsed_s", "items_done", "asked"} <= set(table.column_names)
    assert {"items_measured"} <= set(table.column_names)  # the job's own labels
    done = table.column("items_done").to_pylist()
    assert done == sorted(done)
    assert done[-1] == table.column("asked").to_pylist()[-1] == 120
    assert table.num_rows >= 2  # a sample a second, and a last one
    assert str(table.schema.field("at").type) == "timestamp[us, tz=UTC]"


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a folder to another group needs root")
def test_a_setgid_root_hands_its_group_to_every_night(sandbox, tmp_path: Path) -> None:
    """docs/protection.md's BI sharing: ROOT of the job's user, the BI readers' group, g+s."""
    group = 65534  # nogroup: any group the job's user is not the primary of
    root = tmp_path / "bi"
    root.mkdir()
    os.chown(root, -1, group)
    root.chmod(0o2750)
    path = write_csv(tmp_path / "in.csv", customers(4))
    key = {"KOSCOM_PSEUDONYM_KEY": "k-77-0123456789abcdef0123456789abcdef"}
    args = dataset_args(sandbox, path, root, "2026-11-12", "--file-mode", "0640", "--pseudonymize")
    assert run_cli(args, key).exit_code == 0
    assert stat.S_IMODE(root.stat().st_mode) == 0o2750
    published = [p for p in root.rglob("*") if ".work" not in p.parts]
    assert {p.stat().st_gid for p in published} == {group}
    assert {mode(p) for p in published if p.is_file()} == {0o640}


def to_schema_2(root: Path) -> None:
    """Rewrite a root as schema 2 left it: timelines with the statuses that occurred, in the
    order they occurred, and a run log without `current` that holds a night's rerun."""
    for night in root.glob("reconciled/*/reconciled.parquet"):
        table = pq.read_table(night)
        pq.write_table(table.replace_schema_metadata({"member_recon.schema_version": "2"}), night)
    for night in root.glob("timeline/*/timeline.parquet"):
        table = pq.read_table(night).replace_schema_metadata(None)
        names = [n for n in table.column_names if n not in ("items_error", "items_linked")]
        pq.write_table(table.select([*names, "items_linked"]), night)
    log = root / "runs" / "runs.parquet"
    runs = pq.read_table(log).drop_columns(["current"])
    pq.write_table(pa.concat_tables([runs.slice(0, 1), runs]), log)  # the first night twice


def test_schema_2_is_refused_then_migrated_to_fixed_timelines_and_current_runs(
    sandbox, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "in.csv", customers(6))
    root = tmp_path / "bi"
    for day in ("2026-11-01", "2026-11-02"):
        assert run_cli(dataset_args(sandbox, path, root, day)).exit_code == 0
    to_schema_2(root)
    refused = run_cli(dataset_args(sandbox, path, root, "2026-11-03"))
    assert refused.exit_code == 2
    assert "2 nights (2026-11-01 to 2026-11-02) in dataset schema 2, not 3" in refused.stderr
    moved = run_cli(["migrate", str(root)])
    assert moved.exit_code == 0, moved.stderr
    assert "timeline/run_date=2026-11-02: the fixed columns" in moved.stdout
    assert run_cli(dataset_args(sandbox, path, root, "2026-11-03")).exit_code == 0
    timelines = pl.read_parquet(
        f"{root}/timeline/*/*.parquet", hive_partitioning=True
    )  # strict: one schema in every night
    assert timelines.columns == [*timeline_schema().names, "run_date"]
    assert timelines["items_error"].null_count() == timelines.height  # no error: nulls
    runs = pq.read_table(root / "runs" / "runs.parquet").to_pylist()
    marks = [(str(r["run_date"]), r["current"]) for r in runs]
    assert marks == [
        ("2026-11-01", False),
        ("2026-11-01", True),
        ("2026-11-02", True),
        ("2026-11-03", True),
    ]


def test_a_night_that_changes_pseudonymization_is_refused_both_ways(
    sandbox, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "in.csv", customers(4))
    key = {"KOSCOM_PSEUDONYM_KEY": "k-31-0123456789abcdef0123456789abcdef"}
    raw, sealed = tmp_path / "raw", tmp_path / "sealed"
    assert run_cli(dataset_args(sandbox, path, raw, "2026-11-01")).exit_code == 0
    args = ("--pseudonymize",)
    assert run_cli(dataset_args(sandbox, path, sealed, "2026-11-01", *args), key).exit_code == 0
    into_raw = run_cli(dataset_args(sandbox, path, raw, "2026-11-02", *args), key)
    assert into_raw.exit_code == 2
    assert f"the 1 nights in {raw} hold raw CIs (ci)" in into_raw.stderr
    into_sealed = run_cli(dataset_args(sandbox, path, sealed, "2026-11-02"))
    assert into_sealed.exit_code == 2
    assert "would write raw CIs beside them; add --pseudonymize" in into_sealed.stderr
    assert not (raw / "reconciled" / "run_date=2026-11-02").exists()
    assert not (sealed / "reconciled" / "run_date=2026-11-02").exists()
