"""The engine alone, with a job that is not KOSCOM's: its life cycle, resume, faults."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from batch.contract import Earlier
from batch.errors import (
    AccountingError,
    InputError,
    Interrupted,
    PausedError,
    ResumeMismatch,
    Stalled,
    StoreError,
    UsageError,
)
from batch.run.lifecycle import STORE_NAME
from batch.run.runner import Outcome, Runner
from batch.store.progress_store import ProgressStore
from tests.fake_job import Behaviour, WordJob, run_words

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["alpha", "beta", "gamma", "delta", "Beta", "12", "epsilon", "zeta", "eta", "theta"]


@pytest.fixture
def words(tmp_path: Path) -> Path:
    path = tmp_path / "words.csv"
    path.write_text("word\n" + "\n".join(WORDS) + "\n", encoding="utf-8")
    return path


def lengths(out: Path) -> list[tuple[str, int | None]]:
    table = pq.read_table(out / "lengths.parquet")
    return list(zip(table["word"].to_pylist(), table["length"].to_pylist(), strict=True))


def summary(out: Path) -> dict[str, Any]:
    return dict(json.loads((out / "summary.json").read_text(encoding="utf-8")))


EXPECTED = [(w, len(w)) for w in ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"]]
EXPECTED.append(("theta", 5))


def test_a_whole_run_accounts_for_every_row(words: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_words(words, out)
    assert lengths(out) == EXPECTED  # one row per distinct item, in input order
    rejects = (out / "rejects.csv").read_text(encoding="utf-8-sig").splitlines()
    assert rejects == [  # rows as a spreadsheet shows them: the header is row 1
        "row,reason,word",
        "6,duplicate word: first seen on row 3,Beta",
        "7,word is not letters,12",
    ]
    assert result.summary["state"] == "done"
    assert result.summary["accounting_ok"] is True
    assert (result.summary["rows"], result.summary["words"]) == (10, 8)


def test_items_that_failed_are_asked_again_and_only_they(words: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = WordJob(Behaviour(fail_words=frozenset({"gamma", "eta"})))
    assert run_words(words, out, first).summary["counters"] == {"measured": 6, "failed": 2}
    again = WordJob()
    result = run_words(words, out, again)
    assert set(again.behaviour.asked) == {"gamma", "eta"}
    assert result.summary["resumed"] is True
    assert lengths(out) == EXPECTED


def test_a_kill_9_costs_only_a_restart(words: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    died = subprocess.run(
        [sys.executable, "-m", "tests.fake_job", str(words), str(out)],
        env={**os.environ, "FAKE_DIE_AFTER": "4"},
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert died.returncode == 137
    assert not (out / "lengths.parquet").exists()
    again = WordJob()
    run_words(words, out, again)
    assert lengths(out) == EXPECTED
    # What was answered and committed before the kill is not asked again.
    assert sum(again.behaviour.asked.values()) <= 8 - 2


def test_answers_arriving_together_are_committed_together(tmp_path: Path) -> None:
    store = ProgressStore(tmp_path / STORE_NAME)
    store.ingest_chunk([_item(n) for n in range(40)], [], rows=40)
    commits: list[int] = []
    record = store.record

    def counting(answers: Any) -> None:
        commits.append(len(answers))
        record(answers)

    store.record = counting  # type: ignore[method-assign]

    async def instant(item: Any) -> Outcome:
        return Outcome("done", {"n": item.seq})

    asyncio.run(Runner(store, instant, workers=8, drain_timeout=1).run())
    assert sum(commits) == 40
    assert len(commits) < 40  # a transaction carries every answer that arrived meanwhile
    assert store.counts()["done"] == 40


def test_a_run_that_stops_finishing_anything_is_ended_by_the_watchdog(tmp_path: Path) -> None:
    store = ProgressStore(tmp_path / STORE_NAME)
    store.ingest_chunk([_item(n) for n in range(10)], [], rows=10)

    async def hangs(item: Any) -> Outcome:
        if item.seq > 3:
            await asyncio.Event().wait()  # a request that never comes back, and no timeout
        return Outcome("done", {"n": item.seq})

    runner = Runner(store, hangs, workers=4, drain_timeout=0.5, stall_timeout=0.4)
    with pytest.raises(Stalled, match="no item finished for"):
        asyncio.run(runner.run())
    assert store.counts()["done"] == 3  # what finished before the hang is kept


def test_an_accounting_mismatch_publishes_nothing(words: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    job = WordJob(Behaviour(drop_rows_of=frozenset({"zeta"})))
    with pytest.raises(AccountingError, match="8 items"):
        run_words(words, out, job)
    assert not (out / "lengths.parquet").exists()
    assert not (out / "summary.json").exists()


def test_a_pause_publishes_no_table_and_a_resume_finishes(words: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(PausedError):
        run_words(words, out, WordJob(Behaviour(pause_after=3)), workers=1)
    assert summary(out)["state"] == "paused"
    assert not (out / "lengths.parquet").exists()
    again = WordJob()
    run_words(words, out, again)
    assert lengths(out) == EXPECTED
    assert sum(again.behaviour.asked.values()) == 8 - 3


def test_a_signal_drains_what_is_in_flight_and_saves_it(words: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    job = WordJob(Behaviour(delay=0.2))

    def stop_soon() -> None:
        os.kill(os.getpid(), signal.SIGTERM)

    timer = _in_thread_after(0.3, stop_soon)
    with pytest.raises(Interrupted) as caught:
        run_words(words, out, job, workers=2, drain_timeout=5.0)
    timer.join()
    assert caught.value.signum == signal.SIGTERM
    assert summary(out)["state"] == "stopped"
    answered = sum(job.behaviour.asked.values())
    store = ProgressStore(out / STORE_NAME)
    assert store.counts()["done"] == answered  # everything in flight finished and was saved
    store.close()
    again = WordJob()
    run_words(words, out, again)
    assert sum(again.behaviour.asked.values()) == 8 - answered
    assert lengths(out) == EXPECTED


def test_a_store_that_cannot_commit_stops_the_run_at_once(
    words: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(self: ProgressStore, answers: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ProgressStore, "record", full_disk)
    out = tmp_path / "out"
    with pytest.raises(StoreError, match="the disk is full"):
        run_words(words, out, WordJob(Behaviour(delay=0.01)))  # pytest-timeout: never a hang
    assert summary(out)["state"] == "failed"
    assert not (out / "lengths.parquet").exists()


def test_a_finished_run_leaves_no_store_and_a_rerun_asks_nothing(
    words: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    first = run_words(words, out)
    assert not list(out.glob(f"{STORE_NAME}*"))  # the input's keys do not outlive the run
    again = WordJob()
    assert run_words(words, out, again).summary == first.summary
    assert not again.behaviour.asked
    kept = tmp_path / "kept"
    run_words(words, kept, keep_progress=True)
    assert (kept / STORE_NAME).exists()


def test_a_run_with_failures_keeps_its_store_for_the_retry(words: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_words(words, out, WordJob(Behaviour(fail_words=frozenset({"eta"}))))
    assert (out / STORE_NAME).exists()


def test_a_store_from_another_version_is_refused(words: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_words(words, out, keep_progress=True)
    with sqlite3.connect(out / STORE_NAME) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(UsageError, match="another version") as caught:
        run_words(words, out)
    assert caught.value.setting == "fresh"
    run_words(words, out, fresh=True)  # and a fresh start clears it
    assert lengths(out) == EXPECTED


def test_a_wrong_column_leaves_the_folder_unclaimed(words: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    other = tmp_path / "other.csv"
    other.write_text("token\nalpha\n", encoding="utf-8")
    with pytest.raises(InputError, match="has no column 'word'") as caught:
        run_words(other, out)
    assert caught.value.setting == "word_column"
    assert not (out / STORE_NAME).exists()
    assert lengths(run_words(words, out).outputs[0].parent) == EXPECTED  # no --fresh needed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty (0 bytes)"),
        ("word\n", "has no rows under its header (header on row 1: 'word')"),
        (
            "word\n12\n34\n12\n",
            "3 rows read, every one rejected (3 × word is not letters); header on row 1",
        ),
    ],
)
def test_an_input_with_nothing_to_ask_is_refused_and_frees_the_folder(
    words: Path, tmp_path: Path, text: str, message: str
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(text, encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(InputError) as caught:
        run_words(bad, out)
    assert message in str(caught.value)
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing published or kept
    assert lengths(run_words(words, out).outputs[0].parent) == EXPECTED


def test_a_file_that_changes_while_it_is_read_is_refused(
    words: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batch.inputs import reader  # noqa: PLC0415

    def appended(self: Any, *args: Any, **kwargs: Any) -> Any:
        with words.open("a", encoding="utf-8") as more:
            more.write("late\n")  # the exporter is still writing
        yield from original(self, *args, **kwargs)

    original = reader.InputFile.iter_chunks
    monkeypatch.setattr(reader.InputFile, "iter_chunks", appended)
    with pytest.raises(InputError, match="changed while it was read"):
        run_words(words, tmp_path / "out")
    assert not (tmp_path / "out" / "lengths.parquet").exists()


def test_a_rewrite_that_keeps_size_time_and_inode_is_caught_by_the_hash(
    words: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from batch.inputs import reader  # noqa: PLC0415

    def rewritten(self: Any, *args: Any, **kwargs: Any) -> Any:
        yield from original(self, *args, **kwargs)
        info = words.stat()
        data = words.read_bytes()
        with words.open("r+b") as same_file:  # same inode, same size
            same_file.write(data.replace(b"alpha", b"omega"))
        os.utime(words, ns=(info.st_atime_ns, info.st_mtime_ns))  # and the old time

    original = reader.InputFile.iter_chunks
    monkeypatch.setattr(reader.InputFile, "iter_chunks", rewritten)
    with pytest.raises(InputError, match="changed while it was read"):
        run_words(words, tmp_path / "out")


def test_a_store_of_an_earlier_version_without_a_newer_identity_key_resumes(
    tmp_path: Path,
) -> None:
    from batch.run.ingest import claim  # noqa: PLC0415

    store = ProgressStore(tmp_path / STORE_NAME)
    assert claim(store, {"input_sha256": "abc", "job": "words"}) is False
    assert claim(store, {"input_sha256": "abc", "job": "words", "added_later": None}) is True
    with pytest.raises(ResumeMismatch, match=r"\(added_later differ\)"):
        claim(store, {"input_sha256": "abc", "job": "words", "added_later": "x"})


def _item(n: int) -> Any:
    from batch.store.items import NewItem  # noqa: PLC0415

    return NewItem(row=n + 1, key=f"k{n}", payload={"n": n})


def _in_thread_after(seconds: float, action: Any) -> Any:
    import threading  # noqa: PLC0415

    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


NIGHT = dt.date(2026, 11, 20)


def _earlier(word: str, days_old: int, length: int | None) -> Earlier:
    record = {"length": length, "failure": None if length else "refused"}
    return Earlier(word, record, NIGHT - dt.timedelta(days=days_old), final=length is not None)


def test_max_age_carries_young_answers_and_asks_new_failed_then_oldest(
    words: Path, tmp_path: Path
) -> None:
    known = [
        _earlier("alpha", 1, 99),  # young: carried as it was, never asked
        _earlier("beta", 10, 4),  # aged out, the oldest
        _earlier("gamma", 1, None),  # failed last time: asked before any aged answer
        _earlier("delta", 7, 5),  # exactly max_age old: aged out
        _earlier("zeta", 6, 77),  # young
        _earlier("omega", 1, 5),  # not in tonight's input: not carried
    ]
    job = WordJob(Behaviour(earlier=known))
    out = tmp_path / "out"
    result = run_words(words, out, job, workers=1, max_age=7, run_date=NIGHT)
    assert job.behaviour.order == ["epsilon", "eta", "theta", "gamma", "beta", "delta"]
    assert dict(lengths(out)) == {**dict(EXPECTED), "alpha": 99, "zeta": 77}
    assert result.summary["carried"] == 2
    plan = {"new": 3, "failed": 1, "aged_out": 2, "carried": 2, "to_ask": 6}
    assert result.summary["plan"] == plan


def test_a_paused_max_age_run_keeps_its_plan_and_order(words: Path, tmp_path: Path) -> None:
    known = [_earlier("alpha", 9, 5), _earlier("beta", 8, 4), _earlier("gamma", 1, 5)]
    out = tmp_path / "out"
    first = WordJob(Behaviour(earlier=known, pause_after=3))
    with pytest.raises(PausedError):
        run_words(words, out, first, workers=1, max_age=7, run_date=NIGHT)
    # Tomorrow's earlier answers would differ: the night's plan, made once, does not.
    again = WordJob(Behaviour(earlier=[]))
    result = run_words(words, out, again, workers=1, max_age=7, run_date=NIGHT)
    assert first.behaviour.order + again.behaviour.order == [
        *("delta", "epsilon", "zeta", "eta", "theta"),
        *("alpha", "beta"),
    ]
    assert result.summary["carried"] == 1


def test_a_store_from_before_the_asking_order_resumes(words: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(PausedError):
        run_words(words, out, WordJob(Behaviour(pause_after=3)), workers=1)
    with sqlite3.connect(out / STORE_NAME) as db:  # the items table as version 1 made it
        db.executescript(
            "CREATE TABLE old AS SELECT seq, key, row, payload, state, result FROM items;"
            "DROP TABLE items; ALTER TABLE old RENAME TO items;"
        )
    again = WordJob()
    run_words(words, out, again)
    assert lengths(out) == EXPECTED
    assert sum(again.behaviour.asked.values()) == 8 - 3


class _SignalledWhileHashing(WordJob):
    """A SIGTERM arriving as the input's hash is taken, before the folder is claimed."""

    def identity(self) -> dict[str, Any]:
        raise KeyboardInterrupt(signal.SIGTERM)


def test_a_signal_before_the_folder_is_claimed_still_leaves_a_summary(
    words: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(Interrupted) as stopped:
        run_words(words, out, _SignalledWhileHashing())
    assert stopped.value.signum == signal.SIGTERM
    assert summary(out)["state"] == "stopped"
    assert "stopped by SIGTERM" in summary(out)["reason"]
    assert not (out / STORE_NAME).exists()  # nothing was read: a rerun starts afresh
