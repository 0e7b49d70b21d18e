"""A night under `max_age`: carry the young earlier answers, and rank the rest for asking.

    new items              rank 0   never answered (or answered to another question)
    failed before          rank 1   the latest answer was a failure
    aged out               rank 2   answered `max_age` or more run dates ago, oldest first
    carried                         answered fewer than `max_age` run dates ago: not asked

The runner asks in that order, so a night that pauses at the daily cap has spent it where
an answer is most likely to have changed. The plan is made once per night, in one
transaction with the ranks it gives the items, so a resume keeps it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from batch.contract import Earlier
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
