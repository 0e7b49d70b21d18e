"""The same command retries a finished night's errors: the real CLI against the sandbox.

A share of customers fails on every attempt until the sandbox is healed (`customersP`).
The night ends with them in error (exit 0 under --max-error-rate, or 1 above it) and
keeps its store; once healed, the same command asks exactly them and publishes outputs
equal to a night in which they answered. With no error left the store goes.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from jobs.sandbox.config import Fault
from jobs.sandbox.rules import share_of
from tests.conftest import API_KEY, customers, job, run_cli, write_csv
from tests.test_bi import dataset_args
from tests.test_end_to_end import check_truth

SHARE = 0.1
UNHEALED = Fault("http500", customers=SHARE)
STORE = ".progress.sqlite"
KEY = "k" * 40  # --pseudonymize's key: 40 bytes


def test_the_fault_is_spelled_as_the_others() -> None:
    assert Fault.parse("http500:customers0.1") == UNHEALED
    assert Fault.parse("reset:customers0.25:consent/search") == Fault(
        "reset", customers=0.25, api="consent/search"
    )


@pytest.fixture
def people() -> list[tuple[str, str]]:
    return customers(120, salt="heal")


def failing(people: list[tuple[str, str]]) -> set[str]:
    chosen = {ci for ci, _ in people if share_of(ci) < SHARE}
    assert 3 <= len(chosen) <= 30  # a share of them, so the test shows something
    return chosen


def asked_since_healed(sandbox) -> set[str]:
    return {key.split(" ", 1)[1] for key in sandbox.sandbox.stats.attempts}


def heal(sandbox) -> None:
    sandbox.sandbox.reset()  # the faults stay in the config: take them away
    sandbox.sandbox.configure(faults=())


@pytest.mark.parametrize(("max_error_rate", "code"), [("0.5", 0), ("0.01", 1)])
def test_the_same_command_asks_only_the_errors_and_republishes(
    sandbox, people, tmp_path: Path, max_error_rate: str, code: int
) -> None:
    path = write_csv(tmp_path / "in.csv", people)
    out = tmp_path / "out"
    args = ("--attempts", "2", "--max-error-rate", max_error_rate)
    sandbox.sandbox.configure(faults=(UNHEALED,))
    night = job(sandbox, path, out, *args)
    assert night.exit_code == code, night.stderr
    errors = failing(people)
    frame = night.reconciled()
    assert set(frame.loc[frame["status"] == "error", "ci"]) == errors
    assert (out / STORE).exists()  # kept, for the rerun
    assert not (out / ".finished.json").exists()
    assert "run the same command again to ask only the customers in error" in night.stderr

    heal(sandbox)
    rerun = job(sandbox, path, out, *args)
    assert rerun.exit_code == 0, rerun.stderr
    assert asked_since_healed(sandbox) == errors  # exactly those, and nobody else
    assert sandbox.sandbox.stats.requests == 2 * len(errors)
    check_truth(rerun, [ci for ci, _ in people])  # as a night where they answered
    clean = job(sandbox, path, tmp_path / "clean", *args)
    assert clean.exit_code == 0, clean.stderr
    for table in ("reconciled", "accounts"):
        mine, theirs = (pd.read_parquet(r.out_dir / f"{table}.parquet") for r in (rerun, clean))
        pd.testing.assert_frame_equal(
            mine.drop(columns="checked_at", errors="ignore"),
            theirs.drop(columns="checked_at", errors="ignore"),
        )
    summary = rerun.summary()
    assert (summary["error"], summary["customers"], summary["resumed"]) == (0, 120, True)
    assert not (out / STORE).exists()  # nothing left to ask: the store goes
    asked = sandbox.sandbox.stats.requests
    again = job(sandbox, path, out, *args)
    assert again.exit_code == 0
    assert "finished_before" in again.stderr
    assert sandbox.sandbox.stats.requests == asked  # asked nothing more


def test_a_night_with_no_error_drops_its_store(sandbox, people, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = job(sandbox, write_csv(tmp_path / "in.csv", people), out)
    assert result.exit_code == 0, result.stderr
    assert not (out / STORE).exists()
    assert (out / ".finished.json").exists()
    assert "customers in error" not in result.stderr


def test_a_pseudonymized_night_keeps_its_store_sealed(sandbox, people, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", people)
    out = tmp_path / "out"
    env = {"KOSCOM_PSEUDONYM_KEY": KEY}
    args = ("--attempts", "2", "--max-error-rate", "0.5", "--pseudonymize")
    sandbox.sandbox.configure(faults=(UNHEALED,))
    night = job(sandbox, path, out, *args, **env)
    assert night.exit_code == 0, night.stderr
    assert night.summary()["error"] == len(failing(people))
    stored = b"".join(p.read_bytes() for p in out.glob(f"{STORE}*"))
    assert stored  # kept...
    assert not [ci for ci, _ in people if ci.encode() in stored]  # ...with no CI in the clear
    heal(sandbox)
    rerun = job(sandbox, path, out, *args, **env)
    assert rerun.exit_code == 0, rerun.stderr
    assert rerun.summary()["error"] == 0
    assert asked_since_healed(sandbox) == failing(people)
    assert not (out / STORE).exists()


def test_another_input_in_the_folder_is_not_refused(sandbox, people, tmp_path: Path) -> None:
    """A store kept for a published night's errors yields, as a deleted one would have."""
    out = tmp_path / "out"
    sandbox.sandbox.configure(faults=(UNHEALED,))
    night = job(sandbox, write_csv(tmp_path / "in.csv", people), out, "--max-error-rate", "0.5")
    assert night.exit_code == 0, night.stderr
    heal(sandbox)
    others = customers(30, salt="heal-next")
    next_night = job(sandbox, write_csv(tmp_path / "next.csv", others), out)
    assert next_night.exit_code == 0, next_night.stderr
    assert "store_replaced" in next_night.stderr
    check_truth(next_night, [ci for ci, _ in others])


def test_a_dry_run_leaves_the_published_night_as_it_was(sandbox, people, tmp_path) -> None:
    path = write_csv(tmp_path / "in.csv", people)
    out = tmp_path / "out"
    sandbox.sandbox.configure(faults=(UNHEALED,))
    assert job(sandbox, path, out, "--max-error-rate", "0.5").exit_code == 0
    published = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    heal(sandbox)
    dry = job(sandbox, path, out, "--max-error-rate", "0.5", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert sandbox.sandbox.stats.requests == 0
    after = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    assert after == published  # summary.json still the night's, not the dry run's
    assert (out / STORE).exists()
    assert job(sandbox, path, out, "--max-error-rate", "0.5").summary()["error"] == 0


@pytest.mark.parametrize("max_age", [(), ("--max-age", "7")], ids=["every-night", "max-age"])
def test_a_dataset_night_is_replaced_and_logged_again(
    sandbox, people, tmp_path, max_age: tuple[str, ...]
) -> None:
    path = write_csv(tmp_path / "in.csv", people)
    root = tmp_path / "ds"
    args = dataset_args(sandbox, path, root, "2026-11-02", "--max-error-rate", "0.5", *max_age)
    sandbox.sandbox.configure(faults=(UNHEALED,))
    night = run_cli(args, {"KOSCOM_API_KEY": API_KEY})
    assert night.exit_code == 0, night.stderr
    partition = root / "reconciled" / "run_date=2026-11-02"
    first = pd.read_parquet(partition / "reconciled.parquet")
    assert (first["status"] == "error").sum() == len(failing(people))
    store = root / ".work" / "2026-11-02" / STORE
    assert store.exists()

    heal(sandbox)
    rerun = run_cli(args, {"KOSCOM_API_KEY": API_KEY})
    assert rerun.exit_code == 0, rerun.stderr
    assert asked_since_healed(sandbox) == failing(people)
    assert sorted(p.name for p in partition.iterdir()) == ["reconciled.parquet"]  # replaced
    healed = pd.read_parquet(partition / "reconciled.parquet")
    assert (healed["status"] == "error").sum() == 0
    assert list(healed["ci"]) == [ci for ci, _ in people]
    runs = pq.read_table(root / "runs" / "runs.parquet").to_pandas()
    mine = runs[runs["run_date"].astype(str) == "2026-11-02"]
    assert len(mine) == 2  # a new attempt row, the first one kept
    assert mine["run_id"].nunique() == 2
    assert list(mine["error"]) == [len(failing(people)), 0]
    assert list(mine["current"]) == [False, True]  # the rerun's files are the night's now
    assert not store.exists()


def test_a_later_dataset_night_retires_an_earlier_nights_kept_store(sandbox, people, tmp_path):
    path = write_csv(tmp_path / "in.csv", people)
    root = tmp_path / "ds"
    sandbox.sandbox.configure(faults=(UNHEALED,))
    first = run_cli(dataset_args(sandbox, path, root, "2026-11-02", "--max-error-rate", "0.5"))
    assert first.exit_code == 0, first.stderr
    kept = root / ".work" / "2026-11-02" / STORE
    with sqlite3.connect(kept) as db:
        assert db.execute("SELECT count(*) FROM items WHERE state = 'error'").fetchone()[0] > 0
    heal(sandbox)
    later = run_cli(dataset_args(sandbox, path, root, "2026-11-03"))
    assert later.exit_code == 0, later.stderr
    assert not kept.exists()  # the later night asked them again: its CIs need not stay
