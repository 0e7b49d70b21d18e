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
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batch.contract import Earlier
from batch.dataset import WORK, earlier_nights
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
    *,
    keep: bool = True,
) -> Plan:
    """The night's plan: made now from `earlier`, or the one a run before this one made.

    With `keep` false (a dry run) the plan is counted and then undone: a plan kept from
    a dry run would go stale if another night ran before the real one.
    """
    known = store.get_meta(PLAN_KEY)
    if known is not None:
        return Plan(**json.loads(known))
    store.clear_earlier()  # what a run killed while loading, or a dry run, left behind
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
    plan = Plan(**store.plan(run_date.toordinal() - max_age, PLAN_KEY if keep else None))
    if not keep:
        store.clear_earlier()
    log.info("planned", earlier_answers=loaded, max_age=max_age, kept=keep, **plan.as_dict())
    return plan


def unfinished_answers(
    root: Path, run_date: dt.date, first_table: str, job_identity: Mapping[str, Any], log: Log
) -> Iterator[Earlier]:
    """Answers that nights after the last published one got before they stopped, oldest first.

    Only a store of the same job settings (partner, host, columns, pseudonym key) lends.
    """
    published = earlier_nights(root, first_table, run_date)
    after = published[0][0] if published else dt.date.min
    nights = []
    for folder in (root / WORK).glob("????-??-??"):
        try:
            day = dt.date.fromisoformat(folder.name)
        except ValueError:
            continue
        if after < day < run_date and (folder / STORE_NAME).is_file():
            nights.append(day)
    for day in sorted(nights):
        yield from _store_answers(
            root / WORK / day.isoformat() / STORE_NAME, day, job_identity, log
        )


def _store_answers(
    path: Path, night: dt.date, job_identity: Mapping[str, Any], log: Log
) -> Iterator[Earlier]:
    """The answers one night's store got by asking (its carried copies have their source)."""
    query = (
        "SELECT key, question, ?, state = 'done', result FROM items "
        "WHERE state != 'pending' AND NOT carried"
    )
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        log.warning("not_borrowed", night=night.isoformat(), reason=str(exc)[:120])
        return
    with contextlib.closing(db):
        try:
            (identity,) = db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
            theirs = json.loads(identity)
            if any(theirs.get(key) != value for key, value in job_identity.items()):
                log.info("not_borrowed", night=night.isoformat(), reason="other job settings")
                return
            for key, question, day, final, result in db.execute(query, (night.toordinal(),)):
                record = json.loads(result)
                yield Earlier(key, record, dt.date.fromordinal(day), bool(final), question)
        except (sqlite3.Error, TypeError, ValueError) as exc:  # an older or unreadable store
            log.warning("not_borrowed", night=night.isoformat(), reason=str(exc)[:120])
