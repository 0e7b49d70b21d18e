"""--max-age: nights that carry young answers and ask only what is new, failed or stale."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow.parquet as pq

from jobs.sandbox.server import Fault
from tests.conftest import base_args, customers, run_cli, spawn, write_csv
from tests.test_resume import answered, kill, wait_for

People = list[tuple[str, str]]
REGISTER = "register/search"


def dataset_args(sandbox, path: Path, root: Path, day: str, *extra: str) -> list[str]:
    args = base_args(sandbox, path, root)
    at = args.index("--out")
    args[at : at + 2] = ["--dataset", str(root), "--run-date", day]
    return [*args, "--max-error-rate", "1", "--attempts", "1", "--max-age", "7", *extra]


def night(sandbox, tmp_path: Path, root: Path, day: str, people: People, *extra: str):
    """One night of `people` under --max-age 7; the sandbox counts only this night."""
    sandbox.sandbox.reset_stats()
    path = write_csv(tmp_path / f"in-{day}.csv", people)
    result = run_cli(dataset_args(sandbox, path, root, day, *extra))
    assert result.exit_code == 0, result.stderr
    return result


def table(root: Path, name: str, day: str) -> pd.DataFrame:
    return pd.read_parquet(root / name / f"run_date={day}" / f"{name}.parquet")


def summary(root: Path, day: str) -> dict:
    return json.loads((root / "summary" / f"run_date={day}" / "summary.json").read_text())


def asked(sandbox) -> list[str]:
    """The CIs the sandbox was asked about, in the order their first request arrived."""
    return [
        key.split(" ", 1)[1] for key in sandbox.sandbox.stats.attempts if key.startswith(REGISTER)
    ]


def cis(people: People) -> set[str]:
    return {ci for ci, _ in people}


def test_each_night_asks_exactly_the_new_and_the_aged_out(sandbox, tmp_path: Path) -> None:
    people = customers(45)
    first, joining, leaving = people[:30], people[30:40], people[:3]
    root = tmp_path / "ds"

    night(sandbox, tmp_path, root, "2026-11-01", first)
    assert sandbox.sandbox.stats.requests == 60
    assert summary(root, "2026-11-01")["asked"] == 30

    # Night 2: ten join, three leave; the other 27 answers are a day old.
    tonight = [p for p in first if p not in leaving] + joining
    night(sandbox, tmp_path, root, "2026-11-02", tonight)
    assert set(asked(sandbox)) == cis(joining)
    assert sandbox.sandbox.stats.requests == 2 * len(joining)
    two = table(root, "reconciled", "2026-11-02")
    assert set(two.ci) == cis(tonight)  # whole: every customer tonight, none who left
    assert len(two) == len(tonight)
    by_ask = two.groupby("asked_on").ci.apply(set).to_dict()
    assert by_ask == {
        pd.Timestamp("2026-11-01").date(): cis(first) - cis(leaving),
        pd.Timestamp("2026-11-02").date(): cis(joining),
    }
    counts = summary(root, "2026-11-02")
    assert (counts["asked"], counts["carried"], counts["requests"]) == (10, 27, 20)
    runs = pd.read_parquet(root / "runs" / "runs.parquet")
    assert list(zip(runs.asked, runs.carried, strict=True)) == [(30, 0), (10, 27)]

    # Night 3, seven run dates after the first: night 1's answers aged out, night 2's did not.
    night(sandbox, tmp_path, root, "2026-11-08", tonight)
    assert set(asked(sandbox)) == cis(first) - cis(leaving)
    assert sandbox.sandbox.stats.requests == 2 * 27
    three = table(root, "reconciled", "2026-11-08").set_index("ci")
    assert set(three.loc[list(cis(joining))].asked_on.astype(str)) == {"2026-11-02"}

    by_night = summary(root, "2026-11-08")["customers_by_asked_on"]
    assert by_night == {"2026-11-08": 27, "2026-11-02": 10}  # newest first
    report = run_cli(["report", str(root)])
    assert report.exit_code == 0, report.stderr
    page = (root / "report.html").read_text(encoding="utf-8")
    # The latest night carried the ten who joined on the 2nd.
    assert '<div class="v">10</div><div class="k">carried · 재사용</div>' in page
    assert "Answers by the night that asked them" in page


def test_carried_rows_equal_their_source_and_are_no_change(sandbox, tmp_path: Path) -> None:
    people = customers(40)
    root = tmp_path / "ds"
    night(sandbox, tmp_path, root, "2026-11-01", people[:30], "--keep-progress")
    # Every answer differs tomorrow: a carried row that had been asked again would show it.
    sandbox.sandbox.configure(answer_salt="day2")
    night(sandbox, tmp_path, root, "2026-11-03", people)

    before, after = table(root, "reconciled", "2026-11-01"), table(root, "reconciled", "2026-11-03")
    carried = after[after.ci.isin(before.ci)].reset_index(drop=True)
    pd.testing.assert_frame_equal(carried, before)  # checked_at and asked_on included
    accounts_before = table(root, "accounts", "2026-11-01")
    accounts_after = table(root, "accounts", "2026-11-03")
    assert len(accounts_before) > 10
    pd.testing.assert_frame_equal(
        accounts_after[accounts_after.ci.isin(before.ci)].reset_index(drop=True), accounts_before
    )
    changes = table(root, "changes", "2026-11-03")
    assert set(changes.event) == {"new_customer"}
    assert set(changes.ci) == cis(people[30:])


def test_a_customer_in_error_is_asked_again_the_next_night(sandbox, tmp_path: Path) -> None:
    people = customers(20)
    failing = frozenset(ci for ci, _ in people[5:9])
    root = tmp_path / "ds"
    sandbox.sandbox.configure(faults=(Fault("http500", first_attempts=99, cis=failing),))
    night(sandbox, tmp_path, root, "2026-11-01", people)
    one = table(root, "reconciled", "2026-11-01")
    assert set(one[one.status == "error"].ci) == failing

    sandbox.sandbox.configure(faults=())
    night(sandbox, tmp_path, root, "2026-11-02", people)
    assert set(asked(sandbox)) == failing
    two = table(root, "reconciled", "2026-11-02")
    assert (two.status != "error").all()
    assert set(two[two.asked_on.astype(str) == "2026-11-02"].ci) == failing


def test_a_renamed_customer_is_asked_not_carried(sandbox, tmp_path: Path) -> None:
    people = customers(10)
    root = tmp_path / "ds"
    night(sandbox, tmp_path, root, "2026-11-01", people)
    renamed = [(people[0][0], "김새이름"), *people[1:]]  # the API is asked with CI and name
    night(sandbox, tmp_path, root, "2026-11-02", renamed)
    assert asked(sandbox) == [people[0][0]]
    assert table(root, "reconciled", "2026-11-02").kor_name[0] == "김새이름"


def staged_root(sandbox, tmp_path: Path) -> tuple[Path, dict[str, People]]:
    """Nights 1, 2 and 4 of a dataset, leaving four kinds of customers for night 9."""
    people = customers(60)
    groups = {
        "oldest": people[:12],  # asked on night 1: eight run dates old on night 9
        "older": people[12:24],  # asked on night 2: seven old
        "failed": people[24:30],  # in error on night 4
        "young": people[30:40],  # asked on night 4: carried on night 9
        "new": people[40:52],  # first seen on night 9
    }
    root = tmp_path / "ds"
    night(sandbox, tmp_path, root, "2026-11-01", groups["oldest"])
    night(sandbox, tmp_path, root, "2026-11-02", groups["oldest"] + groups["older"])
    failing = frozenset(ci for ci, _ in groups["failed"])
    sandbox.sandbox.configure(faults=(Fault("http500", first_attempts=99, cis=failing),))
    known = groups["oldest"] + groups["older"] + groups["failed"] + groups["young"]
    night(sandbox, tmp_path, root, "2026-11-04", known)
    sandbox.sandbox.configure(faults=())
    return root, groups


def in_order(groups: dict[str, People], *names: str) -> list[str]:
    return [ci for name in names for ci, _ in groups[name]]


def test_a_paused_night_is_finished_the_next_day_in_order(sandbox, tmp_path: Path) -> None:
    root, groups = staged_root(sandbox, tmp_path)
    tonight = [p for name in ("oldest", "older", "failed", "young", "new") for p in groups[name]]
    path = write_csv(tmp_path / "in-9.csv", tonight)
    args = dataset_args(sandbox, path, root, "2026-11-09", "--concurrency", "1")

    sandbox.sandbox.reset_stats()
    dry = run_cli([*args, "--dry-run"])
    assert dry.exit_code == 0, dry.stderr
    assert "plan (--max-age 7): ask 12 new, 6 in error, 24 aged out; carry 10" in dry.stdout
    planned = json.loads((root / ".work" / "2026-11-09" / "summary.json").read_text())
    assert planned["plan"]["requests"] == planned["estimated_requests"] == 84
    assert sandbox.sandbox.stats.requests == 0  # a dry run asks nothing

    sandbox.sandbox.configure(daily_cap=30)  # per API: 30 customers tonight, then the reserve
    paused = run_cli([*args, "--daily-reserve", "0"])
    assert paused.exit_code == 4, paused.stderr
    first_day = asked(sandbox)
    assert 18 < len(first_day) < 42
    sandbox.sandbox.reset_day()  # 09:00 KST: the cap is new
    finished = run_cli(args)
    assert finished.exit_code == 0, finished.stderr
    assert asked(sandbox) == in_order(groups, "new", "failed", "oldest", "older")

    done = table(root, "reconciled", "2026-11-09")
    assert len(done) == len(tonight)
    young = done[done.ci.isin(cis(groups["young"]))]
    assert set(young.asked_on.astype(str)) == {"2026-11-04"}
    assert set(done[~done.ci.isin(cis(groups["young"]))].asked_on.astype(str)) == {"2026-11-09"}
    counts = summary(root, "2026-11-09")
    assert (counts["asked"], counts["carried"]) == (42, 10)


def test_kill_9_in_a_max_age_night_resumes_exactly(sandbox, tmp_path: Path) -> None:
    people = customers(300)
    root = tmp_path / "ds"
    night(sandbox, tmp_path, root, "2026-11-01", people[:200])
    night(sandbox, tmp_path, root, "2026-11-04", people[:100] + people[200:250])
    # Night 8: 100 aged out (asked on the 1st), 50 carried (the 4th), 50 new.
    path = write_csv(tmp_path / "in-8.csv", people[:100] + people[200:300])
    sandbox.sandbox.reset_stats()
    sandbox.sandbox.configure(latency=0.01)
    args = [*dataset_args(sandbox, path, root, "2026-11-08"), "--rate", "400", "--concurrency", "8"]
    proc = spawn(args)
    wait_for(lambda: sandbox.sandbox.stats.requests >= 150, proc)
    kill(proc)
    resumed = run_cli(args)
    assert resumed.exit_code == 0, resumed.stderr
    stats = sandbox.sandbox.stats
    assert set(asked(sandbox)) == cis(people[:100] + people[250:300])  # the plan, kept
    assert len(stats.cis_asked(more_than=1)) <= 8  # at most what was in flight at the kill
    done = table(root, "reconciled", "2026-11-08")
    assert sorted(done.ci) == sorted(cis(people[:100] + people[200:300]))
    carried = done[done.ci.isin(cis(people[200:250]))]
    assert set(carried.asked_on.astype(str)) == {"2026-11-04"}
    assert summary(root, "2026-11-08")["carried"] == 50


def test_max_age_needs_a_dataset(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(3))
    result = run_cli([*base_args(sandbox, path, tmp_path / "out"), "--max-age", "7"])
    assert result.exit_code == 2
    assert "--max-age goes with --dataset" in result.stderr
    assert sandbox.sandbox.stats.requests == 0


def to_schema_1(file: Path) -> None:
    """A night as version 1 wrote it: no asked_on, schema_version 1."""
    table = pq.read_table(file).drop_columns(["asked_on"])
    metadata = {**table.schema.metadata, b"member_recon.schema_version": b"1"}
    pq.write_table(table.replace_schema_metadata(metadata), file)


def test_schema_1_nights_are_upgraded_by_migrate_then_carried(sandbox, tmp_path: Path) -> None:
    people = customers(12)
    root = tmp_path / "ds"
    night(sandbox, tmp_path, root, "2026-11-01", people)
    first = root / "reconciled" / "run_date=2026-11-01" / "reconciled.parquet"
    source = pd.read_parquet(first)
    to_schema_1(first)

    path = write_csv(tmp_path / "in-2.csv", people)
    refused = run_cli(dataset_args(sandbox, path, root, "2026-11-02"))
    assert refused.exit_code == 2
    assert "1 nights (2026-11-01 to 2026-11-01) in dataset schema 1" in refused.stderr
    assert "member-recon migrate" in refused.stderr
    upgraded = run_cli(["migrate", str(root)])
    assert upgraded.exit_code == 0, upgraded.stderr
    assert "asked_on = 2026-11-01" in upgraded.stdout
    pd.testing.assert_frame_equal(pd.read_parquet(first), source)  # as the night was written

    night(sandbox, tmp_path, root, "2026-11-02", people)
    assert sandbox.sandbox.stats.requests == 0  # every answer carried from the upgraded night
    both = pl.read_parquet(
        f"{root}/reconciled/**/*.parquet", hive_partitioning=True, hive_schema={"run_date": pl.Date}
    )  # one schema across the nights: polars refuses a glob that mixes them
    assert both.height == 24
    assert set(both["asked_on"].cast(pl.Utf8)) == {"2026-11-01"}


def test_a_night_left_paused_lends_its_answers_to_the_next(sandbox, tmp_path: Path) -> None:
    people = customers(30)
    root = tmp_path / "ds"
    path = write_csv(tmp_path / "in.csv", people)
    sandbox.sandbox.configure(daily_cap=12)
    paused = run_cli(
        dataset_args(
            sandbox, path, root, "2026-11-01", "--concurrency", "1", "--daily-reserve", "0"
        )
    )
    assert paused.exit_code == 4, paused.stderr
    answered_first = answered(root / ".work" / "2026-11-01")
    assert 5 < len(answered_first) < 30
    assert not (root / "reconciled").exists()  # a paused night publishes nothing

    # The paused night is not resumed: the next one starts, and asks only the rest.
    sandbox.sandbox.configure(daily_cap=None)
    sandbox.sandbox.reset_day()
    night(sandbox, tmp_path, root, "2026-11-02", people)
    assert set(asked(sandbox)) == cis(people) - answered_first
    done = table(root, "reconciled", "2026-11-02")
    assert len(done) == 30
    assert set(done[done.ci.isin(answered_first)].asked_on.astype(str)) == {"2026-11-01"}
    assert summary(root, "2026-11-02")["carried"] == len(answered_first)
    # Spent: its answers live on in the 2nd's partition, and it held every CI.
    assert not (root / ".work" / "2026-11-01" / ".progress.sqlite").exists()


def full_check(sandbox, tmp_path: Path, root: Path, day: str, people: People) -> None:
    """A night without --max-age: everyone asked."""
    args = dataset_args(sandbox, write_csv(tmp_path / f"full-{day}.csv", people), root, day)
    at = args.index("--max-age")
    del args[at : at + 2]
    assert run_cli(args).exit_code == 0


def pause(sandbox, tmp_path: Path, root: Path, day: str, people: People, cap: int) -> set[str]:
    """A night paused at a daily cap of `cap` per API; the customers it answered."""
    sandbox.sandbox.configure(daily_cap=cap)
    path = write_csv(tmp_path / f"paused-{day}.csv", people)
    args = ("--concurrency", "1", "--daily-reserve", "0")
    assert run_cli(dataset_args(sandbox, path, root, day, *args)).exit_code == 4
    sandbox.sandbox.configure(daily_cap=None)
    sandbox.sandbox.reset_day()
    return answered(root / ".work" / day)


def test_a_paused_night_lends_nothing_once_a_later_night_finished(sandbox, tmp_path: Path) -> None:
    people = customers(30)
    root = tmp_path / "ds"
    pause(sandbox, tmp_path, root, "2026-11-01", people, cap=12)
    sandbox.sandbox.configure(answer_salt="changed")
    full_check(sandbox, tmp_path, root, "2026-11-03", people)  # asks all, lends from nothing
    newest = table(root, "reconciled", "2026-11-03")
    assert (root / ".work" / "2026-11-01" / ".progress.sqlite").exists()

    # The 1st's store is older than the finished 3rd: it must not be replayed over it.
    night(sandbox, tmp_path, root, "2026-11-04", people)
    assert asked(sandbox) == []
    pd.testing.assert_frame_equal(table(root, "reconciled", "2026-11-04"), newest)
    assert set(table(root, "changes", "2026-11-04").event) == set()
    night(sandbox, tmp_path, root, "2026-11-09", people)  # the 3rd's answers are 6 nights old
    assert asked(sandbox) == []


def test_a_dry_run_fixes_no_plan_and_lends_nothing(sandbox, tmp_path: Path) -> None:
    people = customers(20)
    root = tmp_path / "ds"
    night(sandbox, tmp_path, root, "2026-11-01", people)
    later = write_csv(tmp_path / "later.csv", people)
    for day in ("2026-11-05", "2026-11-09"):  # plans made before the nights below ran
        assert run_cli([*dataset_args(sandbox, later, root, day), "--dry-run"]).exit_code == 0
    sandbox.sandbox.configure(answer_salt="changed")
    full_check(sandbox, tmp_path, root, "2026-11-03", people)
    night(sandbox, tmp_path, root, "2026-11-06", people)  # after the 5th's dry run: nothing lent
    assert asked(sandbox) == []
    assert set(table(root, "reconciled", "2026-11-06").asked_on.astype(str)) == {"2026-11-03"}
    # The 9th's dry run, made from the 1st, planned to ask everyone; the 3rd's answers are young.
    night(sandbox, tmp_path, root, "2026-11-09", people)
    assert asked(sandbox) == []
    assert summary(root, "2026-11-09")["carried"] == 20


def test_another_jobs_paused_night_lends_nothing(sandbox, tmp_path: Path) -> None:
    people = customers(20)
    root = tmp_path / "ds"
    pause(sandbox, tmp_path, root, "2026-11-01", people, cap=8)  # raw CIs, no pseudonym
    env = {"KOSCOM_PSEUDONYM_KEY": "k-77-0123456789abcdef0123456789abcdef"}
    path = write_csv(tmp_path / "in-2.csv", people)
    args = dataset_args(sandbox, path, root, "2026-11-02", "--pseudonymize", "--keep-progress")
    sandbox.sandbox.reset_stats()
    assert run_cli(args, env).exit_code == 0
    assert set(asked(sandbox)) == cis(people)  # its keys are CIs, not HMACs: none carried
    store = root / ".work" / "2026-11-02"
    kept = b"".join(p.read_bytes() for p in store.iterdir() if p.name.startswith(".progress"))
    assert not [ci for ci, _ in people if ci.encode() in kept]  # no raw CI lent into it
