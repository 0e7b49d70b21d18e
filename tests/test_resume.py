"""Crash-safe resume: a killed run costs only a restart; no row is lost, doubled or re-asked."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from batch.store.lock import FolderLock
from jobs.sandbox.server import Fault, truth
from tests.conftest import base_args, customers, job, spawn, write_csv

STORE = ".progress.sqlite"


def wait_for(
    condition: Callable[[], bool], proc: subprocess.Popen[str], timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before the kill point: {proc.stderr.read()}")  # type: ignore[union-attr]
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("kill point never reached")
        time.sleep(0.002)


def store_meta(out: Path, key: str) -> str | None:
    try:
        with sqlite3.connect(f"file:{out / STORE}?mode=ro", uri=True, timeout=1) as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else row[0]


def answered(out: Path) -> set[str]:
    with sqlite3.connect(f"file:{out / STORE}?mode=ro", uri=True) as db:
        return {key for (key,) in db.execute("SELECT key FROM items WHERE state = 'done'")}


def dataset(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The outputs as a user compares them: everything but the time of the answers."""
    reconciled = pd.read_parquet(out / "reconciled.parquet").drop(columns=["checked_at"])
    accounts = pd.read_parquet(out / "accounts.parquet")
    rejects = pd.read_csv(out / "rejects.csv", encoding="utf-8-sig", dtype=str)
    return reconciled, accounts, rejects


def assert_same(out: Path, reference: Path) -> None:
    for got, want in zip(dataset(out), dataset(reference), strict=True):
        pd.testing.assert_frame_equal(got, want)


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def reference_then_slow_down(sandbox, people_file: Path, tmp_path: Path, latency: float) -> Path:
    """Run uninterrupted into tmp/ref, then make answers slow enough to interrupt; the run's DIR."""
    assert job(sandbox, people_file, tmp_path / "ref").exit_code == 0
    sandbox.sandbox.reset_stats()
    sandbox.sandbox.configure(latency=latency)
    return tmp_path / "out"


@pytest.fixture
def people_file(tmp_path: Path) -> Path:
    rows = [list(p) for p in customers(240)]
    rows[7][1] = ""  # a reject, so rejects.csv takes part in the comparison
    return write_csv(tmp_path / "in.csv", rows)


def test_kill_mid_requests_then_resume_equals_an_uninterrupted_run(
    sandbox, people_file: Path, tmp_path: Path
) -> None:
    out = reference_then_slow_down(sandbox, people_file, tmp_path, latency=0.01)
    args = [*base_args(sandbox, people_file, out), "--rate", "400", "--concurrency", "8"]
    proc = spawn(args)
    wait_for(lambda: sandbox.sandbox.stats.requests >= 200, proc)
    kill(proc)
    done_before_kill = answered(out)
    assert 0 < len(done_before_kill) < 239
    assert (out / ".lock").exists()  # the dead run's lock file is left behind...

    resumed = job(sandbox, people_file, out)  # ...and does not block the restart
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.summary()["resumed"] is True
    assert_same(out, tmp_path / "ref")
    stats = sandbox.sandbox.stats
    asked_twice = stats.cis_asked(more_than=1)
    assert len(asked_twice) <= 8  # at most what was in flight (--concurrency 8)
    assert not asked_twice & done_before_kill  # an answered customer is never asked again
    assert stats.cis_asked() == {c for c, _ in customers(240)} - {customers(240)[7][0]}


def test_kill_during_reading_then_resume_equals_an_uninterrupted_run(
    sandbox, tmp_path: Path
) -> None:
    people = customers(150)
    path = write_csv(tmp_path / "big.csv", [people[i % 150] for i in range(160_000)])
    assert job(sandbox, path, tmp_path / "ref").exit_code == 0
    out = tmp_path / "out"
    proc = spawn(base_args(sandbox, path, out))
    wait_for(lambda: int(store_meta(out, "rows_ingested") or 0) >= 20_000, proc)
    kill(proc)
    assert store_meta(out, "ingest_complete") is None  # killed mid-read
    resumed = job(sandbox, path, out)
    assert resumed.exit_code == 0, resumed.stderr
    assert_same(out, tmp_path / "ref")
    summary = resumed.summary()
    assert (summary["rows"], summary["customers"], summary["rejected"]) == (160_000, 150, 159_850)


def test_kill_during_output_writing_leaves_no_half_file(sandbox, tmp_path: Path) -> None:
    people = customers(100)
    path = write_csv(tmp_path / "big.csv", [people[i % 100] for i in range(200_000)])
    out = tmp_path / "out"
    assert job(sandbox, path, out, "--keep-progress").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    # All answered and the store kept: it goes straight to writing.
    proc = spawn([*base_args(sandbox, path, out), "--keep-progress"])
    wait_for(lambda: any(".partial-" in p.name for p in out.iterdir()), proc)
    kill(proc)
    after = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}
    assert after == before  # the published files are untouched, whole
    resumed = job(sandbox, path, out)
    assert resumed.exit_code == 0, resumed.stderr
    assert not [p for p in out.iterdir() if ".partial-" in p.name]
    assert resumed.summary()["requests"] == 0


def test_sigterm_drains_saves_and_tells_how_to_resume(
    sandbox, people_file: Path, tmp_path: Path
) -> None:
    out = reference_then_slow_down(sandbox, people_file, tmp_path, latency=0.05)
    proc = spawn([*base_args(sandbox, people_file, out), "--rate", "200", "--concurrency", "8"])
    wait_for(lambda: len(sandbox.sandbox.stats.attempts) >= 300, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert (
        "member-recon: stopped by SIGTERM; progress is saved: run the same command again" in stderr
    )
    # No outputs but the summary an alert reads: stopped, why, and what is left.
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == ["summary.json"]
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["state"] == "stopped"
    assert summary["exit_code"] == 143
    assert "SIGTERM" in summary["reason"]
    assert summary["unanswered"] > 0
    assert 0 < len(answered(out)) < 239
    sandbox.sandbox.configure(latency=0)
    resumed = job(sandbox, people_file, out)
    assert resumed.exit_code == 0, resumed.stderr
    assert_same(out, tmp_path / "ref")


def test_resume_of_a_finished_folder_sends_nothing(
    sandbox, people_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert job(sandbox, people_file, out).exit_code == 0
    first = dataset(out)
    sandbox.sandbox.reset_stats()
    again = job(sandbox, people_file, out)
    assert again.exit_code == 0
    assert sandbox.sandbox.stats.requests == 0
    for got, want in zip(dataset(out), first, strict=True):
        pd.testing.assert_frame_equal(got, want)
    assert pd.read_parquet(out / "reconciled.parquet")["checked_at"].notna().all()


def test_customers_in_error_are_asked_again_and_only_they(sandbox, tmp_path: Path) -> None:
    people = customers(30)
    path = write_csv(tmp_path / "in.csv", people)
    out = tmp_path / "out"
    # A few members whose consent/search fails alone: their trouble, not an outage.
    members = [ci for ci, _ in people if truth(ci).membership == "member"][:2]
    failing = Fault("http500", first_attempts=99, api="consent/search", cis=frozenset(members))
    sandbox.sandbox.configure(faults=(failing,))
    first = job(sandbox, path, out, "--attempts", "2")
    errors = set(first.reconciled().query("status == 'error'")["ci"])
    assert errors == set(members)
    sandbox.sandbox.configure(faults=())
    sandbox.sandbox.reset_stats()
    second = job(sandbox, path, out)
    assert second.exit_code == 0
    assert sandbox.sandbox.stats.cis_asked() == errors
    assert set(second.reconciled()["status"]) <= {"linked", "non_member", "no_linked_account"}


def test_a_folder_made_from_another_input_is_refused_until_fresh(
    sandbox, people_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert job(sandbox, people_file, out, "--keep-progress").exit_code == 0
    other = write_csv(tmp_path / "other.csv", customers(5, salt="other"))
    refused = job(sandbox, other, out)
    assert refused.exit_code == 2
    assert "holds progress of another run (input_sha256 differ); pass --fresh" in refused.stderr
    elsewhere = job(
        sandbox, people_file, out, "--base-url", sandbox.base_url + "/", "--keep-progress"
    )
    assert elsewhere.exit_code == 0  # a trailing slash is the same host
    moved = job(
        sandbox, people_file, out, "--base-url", sandbox.base_url.replace("127.0.0.1", "localhost")
    )
    assert moved.exit_code == 2
    assert "(base_url differ)" in moved.stderr
    fresh = job(sandbox, other, out, "--fresh")
    assert fresh.exit_code == 0, fresh.stderr
    assert fresh.summary()["customers"] == 5


def test_a_second_run_on_a_busy_folder_refuses(sandbox, people_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with FolderLock(out):
        busy = job(sandbox, people_file, out)
    assert busy.exit_code == 2
    assert "is in use by another run" in busy.stderr
    assert sandbox.sandbox.stats.requests == 0
    assert job(sandbox, people_file, out).exit_code == 0
