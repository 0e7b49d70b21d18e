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
from batch.errors import DirLocked
from batch.log import Log
from batch.outputs import WORK, earlier_nights
from batch.run.ingest import KEPT_FOR_ERRORS
from batch.store import STORE_NAME, FolderLock, ProgressStore, remove_store

PLAN_KEY = "plan"
LENT_KEY = "lent"  # the nights whose stores lent answers, as ISO dates
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


def lenders(
    store: ProgressStore,
    root: Path,
    run_date: dt.date,
    first_table: str,
    *,
    job_identity: Mapping[str, Any],
    log: Log,
    keep: bool = True,
) -> list[dt.date]:
    """The nights whose stores lend tonight their answers; chosen once, kept for a resume.

    They are the nights after the last published one that never finished (paused at the
    cap, stopped) and ran with the same job settings (partner, host, columns, pseudonym).
    """
    known = store.get_meta(LENT_KEY)
    if known is not None:
        return [dt.date.fromisoformat(day) for day in json.loads(known)]
    published = earlier_nights(root, first_table, run_date)
    after = published[0][0] if published else dt.date.min
    nights = []
    for folder in (root / WORK).glob("????-??-??"):
        try:
            day = dt.date.fromisoformat(folder.name)
        except ValueError:
            continue
        path = folder / STORE_NAME
        if after < day < run_date and path.is_file() and _same_job(path, job_identity, log):
            nights.append(day)
    nights.sort()
    if keep:
        store.set_meta(LENT_KEY, json.dumps([day.isoformat() for day in nights]))
    return nights


def lent_answers(root: Path, nights: Iterable[dt.date], log: Log) -> Iterator[Earlier]:
    """The answers the lending nights got by asking (their carried copies have their source)."""
    query = (
        "SELECT key, question, ?, state = 'done', result FROM items "
        "WHERE state != 'pending' AND NOT carried"
    )
    for night in nights:
        try:
            with contextlib.closing(_read_only(root / WORK / night.isoformat() / STORE_NAME)) as db:
                for key, question, day, final, result in db.execute(query, (night.toordinal(),)):
                    record = json.loads(result)
                    yield Earlier(key, record, dt.date.fromordinal(day), bool(final), question)
        except sqlite3.Error as exc:  # gone or unreadable since: its customers are asked
            log.warning("not_borrowed", night=night.isoformat(), reason=str(exc)[:120])


def kept_for_errors(root: Path, run_date: dt.date) -> list[dt.date]:
    """Earlier published nights whose stores wait to ask their failures again: once a later
    night is published (it asked them too), they are spent."""
    nights = []
    for folder in (root / WORK).glob("????-??-??"):
        with contextlib.suppress(ValueError, sqlite3.Error, TypeError):
            day = dt.date.fromisoformat(folder.name)
            if day < run_date and (folder / STORE_NAME).is_file():
                with contextlib.closing(_read_only(folder / STORE_NAME)) as db:
                    row = db.execute(
                        "SELECT 1 FROM meta WHERE key = ?", (KEPT_FOR_ERRORS,)
                    ).fetchone()
                if row is not None:
                    nights.append(day)
    return sorted(nights)


def retire(
    root: Path, nights: Iterable[dt.date], log: Log, *, kept_before: dt.date | None = None
) -> None:
    """Once tonight is published, the stores it borrowed from are spent: their answers live
    on in tonight's partition, and each store holds its whole input, CIs included. So are
    those earlier nights kept for their errors (`kept_before` tonight): tonight asked them."""
    kept = kept_for_errors(root, kept_before) if kept_before is not None else []
    for night in [*nights, *kept]:
        folder = root / WORK / night.isoformat()
        lock = FolderLock(folder)
        try:
            lock.acquire()
        except (DirLocked, OSError):  # being resumed right now: it stays
            log.info("store_kept", night=night.isoformat(), reason="in use")
            continue
        try:
            remove_store(folder / STORE_NAME)
        finally:
            lock.release()


def _same_job(path: Path, job_identity: Mapping[str, Any], log: Log) -> bool:
    try:
        with contextlib.closing(_read_only(path)) as db:
            (identity,) = db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
            columns = {row[1] for row in db.execute("PRAGMA table_info(items)")}
        theirs = json.loads(identity)
    except (sqlite3.Error, TypeError, ValueError) as exc:  # an unreadable or unclaimed store
        log.warning("not_borrowed", night=path.parent.name, reason=str(exc)[:120])
        return False
    if any(theirs.get(key) != value for key, value in job_identity.items()):
        log.info("not_borrowed", night=path.parent.name, reason="other job settings")
        return False
    return "carried" in columns  # a store from before --max-age: what it holds is unranked


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
