"""The job contract: how little a job must write, and how often the engine calls it."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from batch.contract import Admitted, Earlier, RowValues, Stored, TableRows, Verdict
from batch.errors import PausedError
from tests.fake_job import Behaviour, QuietLog, WordJob, run_words
from tests.minimal_job import LengthJob

ROOT = Path(__file__).resolve().parents[1]
NIGHT = dt.date(2026, 3, 10)


class CountingJob(WordJob):
    """The fake job, counting every call the engine makes into it per customer."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        super().__init__(behaviour)
        self.calls: collections.Counter[str] = collections.Counter()

    def admit(self, values: RowValues) -> Admitted | str:
        self.calls["admit"] += 1
        return super().admit(values)

    def rows(self, key: str, item: Stored, result: Stored) -> TableRows:
        self.calls["rows"] += 1
        return super().rows(key, item, result)

    def judge(self, result: Stored) -> Verdict:
        self.calls["judge"] += 1
        return super().judge(result)

    def reject_values(self, values: RowValues) -> RowValues:
        self.calls["reject_values"] += 1
        return super().reject_values(values)


@pytest.fixture
def words(tmp_path: Path) -> Path:
    path = tmp_path / "words.csv"
    path.write_text("word\nalpha\nbeta\ngamma\ndelta\n12\n", encoding="utf-8")
    return path


def test_a_minimal_job_fits_in_under_60_lines_and_runs(tmp_path: Path) -> None:
    source = ROOT / "tests" / "minimal_job.py"
    assert len(source.read_text(encoding="utf-8").splitlines()) < 60
    names = tmp_path / "names.csv"
    names.write_text("name\n김민준\nAda\n\nAda\n", encoding="utf-8")
    from batch.run.lifecycle import run_batch  # noqa: PLC0415
    from batch.settings import BatchSettings  # noqa: PLC0415

    settings = BatchSettings(names, tmp_path / "out", workers=2, drain_timeout=1.0)
    result = run_batch(LengthJob(), settings, QuietLog())
    table = pq.read_table(tmp_path / "out" / "lengths.parquet").to_pylist()
    assert table == [{"name": "김민준", "length": 3}, {"name": "Ada", "length": 3}]
    assert result.summary["counters"] == {"measured": 2}
    assert result.summary["accounting_ok"] is True


def test_an_asked_customer_costs_three_calls_into_the_job(words: Path, tmp_path: Path) -> None:
    job = CountingJob()
    result = run_words(words, tmp_path / "out", job)
    asked = sum(job.behaviour.asked.values())
    assert asked == 4
    # admit for each of 5 rows; ask and rows once per item; its verdict came with the answer.
    # (reject_values: once for the one rejected row, and per run for the rejects' header.)
    calls = {name: n for name, n in job.calls.items() if name != "reject_values"}
    assert calls == {"admit": 5, "rows": 4}
    assert result.summary["counters"] == {"measured": 4}


def test_a_resumed_run_counts_answers_judged_before_it_without_judging_again(
    words: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    with pytest.raises(PausedError):
        run_words(words, out, CountingJob(Behaviour(pause_after=2)), workers=1)
    again = CountingJob()
    result = run_words(words, out, again)
    assert sum(again.behaviour.asked.values()) == 2
    assert again.calls["judge"] == 0  # the two answers before the pause kept their verdicts
    assert result.summary["counters"] == {"measured": 4}


def test_a_carried_answer_is_judged_once_and_not_asked(words: Path, tmp_path: Path) -> None:
    known = [Earlier("alpha", {"length": 99, "failure": None}, NIGHT - dt.timedelta(1), final=True)]
    job = CountingJob(Behaviour(earlier=known))
    result = run_words(words, tmp_path / "out", job, max_age=7, run_date=NIGHT)
    assert "alpha" not in job.behaviour.asked
    assert (job.calls["judge"], job.calls["rows"]) == (1, 4)
    assert result.summary["counters"] == {"measured": 4}


def test_run_settings_hold_the_engines_and_the_clients_settings_without_copies() -> None:
    from batch.settings import BatchSettings  # noqa: PLC0415
    from jobs.api.client import ClientSettings  # noqa: PLC0415
    from jobs.settings import RunSettings  # noqa: PLC0415

    own = {f.name for f in dataclasses.fields(RunSettings)}
    assert {"engine", "client"} <= own
    for nested in (BatchSettings, ClientSettings):
        assert own.isdisjoint(f.name for f in dataclasses.fields(nested)), nested.__name__
