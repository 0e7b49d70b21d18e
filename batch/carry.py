"""A night under `max_age`: carry the young earlier answers, and rank the rest for asking.

    new items              rank 0   never answered (or answered to another question)
    failed before          rank 1   the latest answer was a failure
    aged out               rank 2   answered `max_age` or more run dates ago, oldest first
    carried                         answered fewer than `max_age` run dates ago: not asked

The runner asks in that order, so a night that pauses at the daily cap has spent it where
an answer is most likely to have changed. The plan is made once per night, in one
transaction with the ranks it gives the items, so a resume keeps it.

The earlier answers are the job's (its last finished night), then those that nights
after it which never finished (paused at the cap, stopped) got before they stopped,
from their stores: a later night's answer wins. So a base too big for one day's cap is
checked over several nights, each asking what the one before could not, and its answers
come to differ in age, instead of every one aging out on the same night.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch.contract import Earlier
from batch.dataset import WORK, partition_dir
from batch.folder import STORE_NAME
from batch.log import Log
from batch.store import ProgressStore

PLAN_KEY = "plan"
_CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class Plan:
    """What a night asks and what it carries."""

    new: int
    failed: int
    aged_out: int
    carried: int

    @property
    def to_ask(self) -> int:
        return self.new + self.failed + self.aged_out

    def as_dict(self) -> dict[str, int]:
        return {
            "new": self.new,
            "failed": self.failed,
            "aged_out": self.aged_out,
            "carried": self.carried,
            "to_ask": self.to_ask,
        }


def plan_night(
    store: ProgressStore,
    earlier: Iterable[Earlier],
    run_date: dt.date,
    max_age: int,
    log: Log,
) -> Plan:
    """The night's plan: made now from `earlier`, or the one a run before this one made."""
    known = store.get_meta(PLAN_KEY)
    if known is not None:
        return Plan(**json.loads(known))
    loaded = 0
    chunk: list[tuple[str, str, int, bool, dict[str, Any]]] = []
    for answer in earlier:
        chunk.append(
            (answer.key, answer.question, answer.asked_on.toordinal(), answer.final, answer.record)
        )
        if len(chunk) >= _CHUNK:
            store.add_earlier(chunk)
            loaded, chunk = loaded + len(chunk), []
    if chunk:
        store.add_earlier(chunk)
        loaded += len(chunk)
    # Age counts run dates: an answer asked on run date D is young while D > run_date - max_age.
    plan = Plan(**store.plan(run_date.toordinal() - max_age, PLAN_KEY))
    log.info("planned", earlier_answers=loaded, max_age=max_age, **plan.as_dict())
    return plan


def unfinished_answers(root: Path, run_date: dt.date, first_table: str) -> Iterator[Earlier]:
    """Answers in the stores of nights after the last published one, oldest night first."""
    nights = []
    for folder in (root / WORK).glob("????-??-??"):
        try:
            day = dt.date.fromisoformat(folder.name)
        except ValueError:
            continue
        if day < run_date and (folder / STORE_NAME).is_file():
            nights.append(day)
    published = [day for day in nights if partition_dir(root, first_table, day).is_dir()]
    after = max(published, default=dt.date.min)
    for day in sorted(day for day in nights if day > after):
        yield from _store_answers(root / WORK / day.isoformat() / STORE_NAME, day)


def _store_answers(path: Path, night: dt.date) -> Iterator[Earlier]:
    """What one night's store holds of answers; nothing from a store before the carry columns."""
    query = (
        "SELECT key, question, CASE WHEN carried THEN since ELSE ? END, state = 'done', result "
        "FROM items WHERE state != 'pending'"
    )
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return
    with contextlib.closing(db):
        try:
            rows = db.execute(query, (night.toordinal(),))
            for key, question, day, final, result in rows:
                record = json.loads(result)
                yield Earlier(key, record, dt.date.fromordinal(day), bool(final), question)
        except sqlite3.Error:  # no such column (an older store), or unreadable: nothing from it
            return
