"""BI-ready dataset: a folder per table, run history, the change feed, DuckDB and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import psycopg
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from jobs.dataset.changes import EVENTS
from jobs.sandbox.server import Fault, truth
from tests.change_rules import expected_changes, night
from tests.conftest import base_args, customers, run_cli, write_csv

PG_PASSWORD = "pg-secret-4c1d"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a loopback port; password auth over TCP."""
    found = sorted(map(str, Path("/usr/lib/postgresql").glob("*/bin/initdb")))
    found = found or [shutil.which("initdb") or ""]
    if not found[-1]:
        pytest.skip("PostgreSQL server binaries are missing (make test installs them where it can)")
    bindir = Path(found[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="member-recon-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root; the Debian package brings a postgres user
        folder.chmod(0o755)
        shutil.chown(folder, "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, pwfile, port = folder / "data", folder / "pw", _free_port()
    pwfile.write_text(PG_PASSWORD)
    if as_postgres:
        shutil.chown(pwfile, "postgres")
    subprocess.run(
        [
            *as_postgres,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "recon",
            "--pwfile",
            str(pwfile),
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [
            *as_postgres,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(folder / "log"),
            "-w",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://recon@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_postgres, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


def own_database(postgres: str, name: str) -> str:
    """A fresh database of the session's cluster, for a test whose nights must not mix."""
    os.environ["PGPASSWORD"] = PG_PASSWORD
    try:
        with psycopg.connect(postgres, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name}")
            admin.execute(f"CREATE DATABASE {name}")
    finally:
        del os.environ["PGPASSWORD"]
    return postgres.rsplit("/", 1)[0] + f"/{name}"


def dataset_run(sandbox, path: Path, root: Path, day: str, *extra: str, **env: str):
    args = base_args(sandbox, path, root)
    at = args.index("--out")
    args[at : at + 2] = ["--dataset", str(root), "--run-date", day]
    return run_cli([*args, "--max-error-rate", "1", "--attempts", "1", *extra], env)


def feed(root: Path, day: str) -> set[tuple[str, str, str | None]]:
    frame = pd.read_parquet(night(root, "changes", day))
    return {(r.ci, r.event, None if pd.isna(r.detail) else r.detail) for r in frame.itertuples()}


def test_three_nights_give_every_event_a_run_log_and_equal_sinks(
    sandbox, postgres: str, tmp_path: Path
) -> None:
    root, duck = tmp_path / "dataset", f"duckdb:///{tmp_path / 'bi.duckdb'}"
    sinks = ("--sink", duck, "--sink", postgres)
    env = {"PGPASSWORD": PG_PASSWORD}
    people = customers(70)
    night1 = write_csv(tmp_path / "n1.csv", people[:60])
    night2 = write_csv(tmp_path / "n2.csv", people[:50] + people[60:])
    # Night 2: every answer changes ("a different day"), and four members' accounts fail.
    failing = [ci for ci, _ in people[:50] if truth(ci, "day2").membership == "member"][:4]

    first = dataset_run(sandbox, night1, root, "2026-11-01", *sinks, **env)
    assert first.exit_code == 0, first.stderr
    sandbox.sandbox.configure(
        answer_salt="day2",
        faults=(Fault("http500", first_attempts=99, api="consent/search", cis=frozenset(failing)),),
    )
    second = dataset_run(sandbox, night2, root, "2026-11-02", *sinks, **env)
    assert second.exit_code == 0, second.stderr
    sandbox.sandbox.configure(faults=())
    third = dataset_run(sandbox, night2, root, "2026-11-03", *sinks, **env)
    assert third.exit_code == 0, third.stderr

    days = [f"2026-11-0{d}" for d in (1, 2, 3)]
    assert feed(root, days[0]) == set()  # nothing before
    assert feed(root, days[1]) == expected_changes(root, [days[0]], days[1])
    assert feed(root, days[2]) == expected_changes(root, [days[1], days[0]], days[2])
    seen = {event for day in days[1:] for _, event, _ in feed(root, day)}
    assert seen == set(EVENTS)
    errors_today = set(
        pd.read_parquet(night(root, "reconciled", days[1])).query("status == 'error'").ci
    )
    assert errors_today == set(failing)
    assert {(ci, e) for ci, e, _ in feed(root, days[1]) if ci in errors_today} == {
        (ci, "now_in_error") for ci in errors_today
    }  # in error today: never reported as losing accounts

    # One table per folder, one file per night: a glob over the root finds no copy.
    tables = ("reconciled", "accounts", "changes", "timeline")
    found = {str(p.relative_to(root)) for p in root.glob("**/*.parquet")}
    assert found == {f"{t}/run_date={d}/{t}.parquet" for t in tables for d in days} | {
        "runs/runs.parquet"
    }
    hidden = [p for p in root.rglob("*") if p.is_file() and "/." in f"/{p.relative_to(root)}"]
    assert hidden
    assert all(not p.name.endswith(".parquet") for p in hidden)  # work state: no table file
    with duckdb.connect() as con:
        once = con.execute(
            f"select count(*), count(distinct (ci, filename)), count(distinct filename) "
            f"from read_parquet('{root}/**/*.parquet', union_by_name=true, filename=true) "
            "where kor_name is not null"  # only reconciled has names
        ).fetchone()
    assert once == (180, 180, 3)  # each customer once per night, in three files

    runs = pd.read_parquet(root / "runs" / "runs.parquet")
    assert list(runs["run_date"].astype(str)) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert list(runs["state"]) == ["done"] * 3
    assert list(runs["customers"]) == [60, 60, 60]
    assert runs["input_sha256"].nunique() == 2

    with duckdb.connect() as con:
        by_day = con.execute(
            f"select run_date, count(*) as n from read_parquet('{root}/reconciled/*/*.parquet', "
            "hive_partitioning=true) group by all order by all"
        ).fetchall()
    assert [(str(d), n) for d, n in by_day] == [(day, 60) for day in days]
    table = ds.dataset(root / "reconciled", partitioning="hive").to_table()
    assert table.num_rows == 180
    assert "run_date" in table.column_names

    expected = {
        name: sorted(
            (day, len(pd.read_parquet(night(root, name, day))))
            for day in days
            if len(pd.read_parquet(night(root, name, day)))
        )
        for name in ("reconciled", "accounts", "changes")
    }
    with duckdb.connect(str(tmp_path / "bi.duckdb")) as con:
        for name, counts in expected.items():
            got = con.sql(f"select run_date::varchar, count(*) from {name} group by 1 order by 1")
            assert got.fetchall() == counts, name
        assert con.execute("select count(*) from runs").fetchone() == (3,)
    os.environ["PGPASSWORD"] = PG_PASSWORD
    try:
        with psycopg.connect(postgres) as pg:
            for name, counts in expected.items():
                got = pg.execute(
                    f"select run_date::text, count(*) from {name} group by 1 order by 1"
                ).fetchall()
                assert got == counts, name
            assert pg.execute("select count(*) from runs").fetchone() == (3,)

            # A rerun of a finished night says so and asks nothing; with --fresh it asks
            # again and replaces its partition and its rows: nothing doubles.
            finished = dataset_run(sandbox, night2, root, "2026-11-03", *sinks, **env)
            assert finished.exit_code == 0, finished.stderr
            assert '"event": "finished_before"' in finished.stderr
            again = dataset_run(sandbox, night2, root, "2026-11-03", "--fresh", *sinks, **env)
            assert again.exit_code == 0, again.stderr
            assert pg.execute(
                "select count(*) from reconciled where run_date = '2026-11-03'"
            ).fetchone() == (60,)
            assert pg.execute("select count(*) from runs").fetchone() == (4,)
    finally:
        del os.environ["PGPASSWORD"]
    runs = pd.read_parquet(root / "runs" / "runs.parquet")
    assert list(zip(runs.run_date.astype(str), runs.current, strict=True)) == [
        ("2026-11-01", True),
        ("2026-11-02", True),
        ("2026-11-03", False),  # the --fresh rerun's row is the night's current one
        ("2026-11-03", True),
    ]
    assert len(pd.read_parquet(night(root, "reconciled", days[2]))) == 60  # replaced, not doubled
    assert not [p for p in root.rglob("*") if ".partial-" in p.name]


def test_the_schema_is_versioned_and_status_columns_dictionary_encoded(
    sandbox, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "in.csv", customers(30))
    result = dataset_run(sandbox, path, tmp_path / "ds", "2026-11-05")
    assert result.exit_code == 0, result.stderr
    file = pq.ParquetFile(night(tmp_path / "ds", "reconciled", "2026-11-05"))
    assert file.schema_arrow.metadata[b"member_recon.schema_version"] == b"3"
    chunk = file.metadata.row_group(0)
    encodings = {chunk.column(i).path_in_schema: chunk.column(i).encodings for i in range(11)}
    for column in ("status", "next_action", "membership"):
        assert "RLE_DICTIONARY" in encodings[column], column
    assert "RLE_DICTIONARY" not in encodings["ci"]
    assert str(file.schema_arrow.field("checked_at").type) == "timestamp[us, tz=UTC]"
    documented = (Path(__file__).parents[1] / "docs" / "schema.md").read_text(encoding="utf-8")
    for column in file.schema_arrow.names:
        assert f"`{column}`" in documented, column


def test_a_paused_night_is_logged_and_publishes_no_partition(sandbox, tmp_path: Path) -> None:
    sandbox.sandbox.configure(daily_cap=10)
    path = write_csv(tmp_path / "in.csv", customers(30))
    result = dataset_run(sandbox, path, tmp_path / "ds", "2026-11-06", "--concurrency", "2")
    assert result.exit_code == 4
    assert not list((tmp_path / "ds").glob("*/run_date=2026-11-06"))
    runs = pd.read_parquet(tmp_path / "ds" / "runs" / "runs.parquet")
    assert list(zip(runs.state, runs.exit_code, strict=True)) == [("paused", 4)]
    assert [p.name for p in (tmp_path / "ds").glob("**/*.parquet")] == ["runs.parquet"]


def test_a_failing_sink_is_exit_5_after_the_partition_is_published(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(10))
    (tmp_path / "taken").mkdir()  # a folder where the DuckDB file should be
    result = dataset_run(
        sandbox, path, tmp_path / "ds", "2026-11-08", "--sink", f"duckdb:///{tmp_path / 'taken'}"
    )
    assert result.exit_code == 5
    assert "outputs are published, but loading duckdb failed" in result.stderr
    assert night(tmp_path / "ds", "reconciled", "2026-11-08").exists()
    assert len(pd.read_parquet(tmp_path / "ds" / "runs" / "runs.parquet")) == 1  # logged once


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sink", "postgresql://recon:secret@127.0.0.1/db"], "must not carry a password"),
        (["--sink", "mysql://x"], "expected duckdb:///path or postgresql://"),
        (["--format", "csv"], "--dataset writes Parquet"),
    ],
)
def test_bad_dataset_options_are_exit_2(sandbox, tmp_path: Path, args, message) -> None:
    path = write_csv(tmp_path / "in.csv", customers(3))
    result = dataset_run(sandbox, path, tmp_path / "ds", "2026-11-07", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "secret" not in result.stderr


def test_sinks_made_by_schema_1_gain_the_new_columns_and_never_wait_on_readers(
    sandbox, postgres: str, tmp_path: Path
) -> None:
    pg_url = own_database(postgres, "sink_upgrade")
    duck = tmp_path / "bi.duckdb"
    sinks = ("--sink", f"duckdb:///{duck}", "--sink", pg_url)
    env = {"PGPASSWORD": PG_PASSWORD, "PGOPTIONS": "-c lock_timeout=5s"}
    root, path = tmp_path / "ds", write_csv(tmp_path / "in.csv", customers(12))
    assert dataset_run(sandbox, path, root, "2026-11-01", *sinks, **env).exit_code == 0
    # The sinks as schema 1 made them: no asked_on, and a run log without asked / carried.
    drops = ("ALTER TABLE reconciled DROP COLUMN asked_on", "ALTER TABLE runs DROP COLUMN asked")
    with duckdb.connect(str(duck)) as con:
        for statement in drops:
            con.execute(statement)
    os.environ["PGPASSWORD"] = PG_PASSWORD
    try:
        with psycopg.connect(pg_url, autocommit=True) as pg:
            for statement in drops:
                pg.execute(statement)
        second = dataset_run(sandbox, path, root, "2026-11-02", *sinks, **env)
        assert second.exit_code == 0, second.stderr
        with psycopg.connect(pg_url) as reader:  # a dashboard's open transaction
            reader.execute("SELECT count(*) FROM reconciled").fetchone()
            # The columns exist now: loading takes no lock a reader holds (else lock_timeout).
            third = dataset_run(sandbox, path, root, "2026-11-03", *sinks, **env)
            assert third.exit_code == 0, third.stderr
            reader.rollback()
            rows = reader.execute(
                "SELECT run_date::text, count(asked_on) FROM reconciled GROUP BY 1 ORDER BY 1"
            ).fetchall()
            asked = reader.execute("SELECT count(asked) FROM runs").fetchone()
    finally:
        del os.environ["PGPASSWORD"]
    expected = [("2026-11-01", 0), ("2026-11-02", 12), ("2026-11-03", 12)]
    assert rows == expected  # the first night's rows keep null: schema 1 had none
    assert asked == (3,)  # the run log is loaded whole, from the dataset's own log
    with duckdb.connect(str(duck)) as con:
        got = con.execute(
            "SELECT run_date::varchar, count(asked_on) FROM reconciled GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert got == expected


def test_a_member_back_from_error_as_a_non_member_became_non_member(
    sandbox, tmp_path: Path
) -> None:
    people = customers(40)
    turned = next(
        ci
        for ci, _ in people
        if truth(ci, "one").membership == "member" and truth(ci, "three").membership == "nonMember"
    )
    root, path = tmp_path / "ds", write_csv(tmp_path / "in.csv", people)
    for day, salt, failing in (("2026-11-01", "one", ()), ("2026-11-02", "two", (turned,))):
        fault = Fault("http500", first_attempts=99, cis=frozenset(failing))
        sandbox.sandbox.configure(answer_salt=salt, faults=(fault,) if failing else ())
        assert dataset_run(sandbox, path, root, day).exit_code == 0
    sandbox.sandbox.configure(answer_salt="three", faults=())
    assert dataset_run(sandbox, path, root, "2026-11-03").exit_code == 0
    frame = pd.read_parquet(night(root, "changes", "2026-11-03"))
    theirs = frame[frame.ci == turned].set_index("event")
    assert {"became_non_member", "recovered_from_error"} <= set(theirs.index)
    became, back = theirs.loc["became_non_member"], theirs.loc["recovered_from_error"]
    assert (became.previous, became.current) == ("member", "nonMember")
    assert str(became.previous_run_date) == "2026-11-01"  # the last good answer's night
    assert (back.previous, str(back.previous_run_date)) == ("error", "2026-11-02")


def test_a_kept_column_added_by_migrate_reaches_the_sinks_as_nulls_before(
    sandbox, postgres: str, tmp_path: Path
) -> None:
    pg_url = own_database(postgres, "sink_kept")
    rows = [(ci, name, f"b{i}") for i, (ci, name) in enumerate(customers(8))]
    path = write_csv(tmp_path / "in.csv", rows, ("ci", "kor_name", "branch"))
    root, duck = tmp_path / "ds", tmp_path / "bi.duckdb"
    sinks = ("--sink", f"duckdb:///{duck}", "--sink", pg_url)
    env = {"PGPASSWORD": PG_PASSWORD}
    assert dataset_run(sandbox, path, root, "2026-11-01", *sinks, **env).exit_code == 0
    refused = dataset_run(sandbox, path, root, "2026-11-02", "--keep-columns", "branch", **env)
    assert refused.exit_code == 2
    assert f"member-recon migrate {root} --keep-columns branch" in refused.stderr
    clash = run_cli(["migrate", str(root), "--keep-columns", "branch,Status"])
    assert (clash.exit_code, "differs only by case" in clash.stderr) == (2, True)
    assert run_cli(["migrate", str(root), "--keep-columns", "branch"]).exit_code == 0
    again = dataset_run(
        sandbox, path, root, "2026-11-02", "--keep-columns", "branch", *sinks, **env
    )
    assert again.exit_code == 0, again.stderr
    query = "select run_date::text, count(*), count(branch) from reconciled group by 1 order by 1"
    want = [("2026-11-01", 8, 0), ("2026-11-02", 8, 8)]
    with duckdb.connect(str(duck)) as con:
        assert con.execute(query).fetchall() == want
    os.environ["PGPASSWORD"] = PG_PASSWORD
    try:
        with psycopg.connect(pg_url) as pg:
            assert pg.execute(query).fetchall() == want
    finally:
        del os.environ["PGPASSWORD"]
