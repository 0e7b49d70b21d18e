"""A job that is not KOSCOM's: words in, their lengths out. It shows what the engine does alone.

Run as a script (`python -m tests.fake_job INPUT OUT`) it runs the engine in a process of
its own, for kill tests; FAKE_DIE_AFTER=N makes it die like `kill -9` after N answers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import sys
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from batch.contract import (
    Admitted,
    Answer,
    BaseAsker,
    BaseJob,
    Column,
    Earlier,
    RowValues,
    Stored,
    Table,
    TableRows,
    Tally,
    Verdict,
)
from batch.errors import PausedError
from batch.run.lifecycle import run_batch
from batch.settings import BatchResult, BatchSettings


@dataclass(frozen=True, slots=True)
class Measured:
    """The fake job's record: a word's length, or why it could not be measured."""

    length: int | None
    failure: str | None = None

    @property
    def verdict(self) -> Verdict:
        """A failure is asked again; the counter says which it was."""
        counter = "failed" if self.failure else "measured"
        return Verdict(self.failure is None, (counter,), self.failure)

    @property
    def stored(self) -> Stored:
        return {"length": self.length, "failure": self.failure}


@dataclass
class Behaviour:
    """What the fake asker does, and what it saw."""

    delay: float = 0.0
    fail_words: frozenset[str] = frozenset()  # answered as failures (asked again on resume)
    pause_after: int | None = None  # raise PausedError once this many were asked
    die_after: int | None = None  # os._exit, like kill -9, after this many answers
    drop_rows_of: frozenset[str] = frozenset()  # give no row: an accounting bug
    asked: collections.Counter[str] = field(default_factory=collections.Counter)
    order: list[str] = field(default_factory=list)  # the words in the order they were asked
    earlier: list[Earlier] = field(default_factory=list)  # earlier answers, for max_age


class FakeAsker(BaseAsker):
    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour

    async def ask(self, stored: Stored) -> Answer:
        measured = await self._measure(str(stored["word"]))
        return Answer(measured.stored, measured.verdict)

    async def _measure(self, item: str) -> Measured:
        behaviour = self.behaviour
        if behaviour.pause_after is not None and sum(behaviour.asked.values()) >= (
            behaviour.pause_after
        ):
            raise PausedError("the fake cap is spent")
        behaviour.asked[item] += 1
        behaviour.order.append(item)
        if behaviour.delay:
            await asyncio.sleep(behaviour.delay)
        if behaviour.die_after is not None and sum(behaviour.asked.values()) > behaviour.die_after:
            os._exit(137)
        if item in behaviour.fail_words:
            return Measured(None, "refused")
        return Measured(len(item))

    def figures(self) -> dict[str, Any]:
        return {"asked": sum(self.behaviour.asked.values())}


class WordJob(BaseJob):
    """Implements batch.contract.Job: a `word` column; distinct words; a `lengths` table."""

    unit = "word"
    key_name = "word"

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()

    def identity(self) -> dict[str, Any]:
        return {"job": "words"}

    def columns(self) -> Sequence[Column]:
        return [Column("word", "word_column")]

    def admit(self, values: RowValues) -> Admitted | str:
        word = (values.get("word") or "").strip()
        if not word.isalpha():
            return "word is not letters"
        return Admitted(word.lower(), {"word": word.lower()})

    @contextlib.asynccontextmanager
    async def asker(self, log: Any) -> AsyncIterator[FakeAsker]:
        del log
        yield FakeAsker(self.behaviour)

    def tables(self) -> Sequence[Table]:
        schema = pa.schema(
            [("word", pa.string()), ("length", pa.int64()), ("failure", pa.string())]
        )
        return [Table("lengths", schema)]

    def rows(self, key: str, item: Stored, result: Stored) -> TableRows:
        if item["word"] in self.behaviour.drop_rows_of:
            return {"lengths": []}
        return {
            "lengths": [{"word": key, "length": result["length"], "failure": result["failure"]}]
        }

    def judge(self, result: Stored) -> Verdict:
        return Measured(result["length"], result["failure"]).verdict

    def summary(self, tally: Tally) -> dict[str, Any]:
        return {
            **super().summary(tally),
            "words": tally.items,
            "resumed": tally.resumed,
            "carried": tally.extra.get("carried"),
            "plan": tally.extra.get("plan"),
            "started_at": tally.started_at.isoformat(),
            "finished_at": tally.finished_at.isoformat(),
        }

    def keeps_progress(self, summary: Mapping[str, Any]) -> bool:
        return bool(summary["counters"].get("failed"))  # its failures are retried by a rerun

    def earlier(self) -> Iterable[Earlier]:
        return iter(self.behaviour.earlier)

    def run_log(self, summary: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
        schema = pa.schema([("state", pa.string()), ("words", pa.int64())])
        return {"state": summary["state"], "words": summary.get("words")}, schema


class QuietLog:
    def debug(self, event: str, **fields: Any) -> None: ...
    def info(self, event: str, **fields: Any) -> None: ...
    def warning(self, event: str, **fields: Any) -> None: ...
    def is_enabled_for(self, level: int) -> bool:
        return False


def run_words(
    input_path: Path, out_dir: Path, job: WordJob | None = None, **settings: Any
) -> BatchResult:
    options: dict[str, Any] = {"workers": 4, "drain_timeout": 2.0, **settings}
    engine = BatchSettings(input_path=input_path, out_dir=out_dir, **options)
    return run_batch(job or WordJob(), engine, QuietLog())


if __name__ == "__main__":
    die_after = os.environ.get("FAKE_DIE_AFTER")
    behaviour = Behaviour(delay=0.01, die_after=int(die_after) if die_after else None)
    run_words(Path(sys.argv[1]), Path(sys.argv[2]), WordJob(behaviour), workers=2)
