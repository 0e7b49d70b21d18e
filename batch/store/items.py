"""What the progress store holds of each input row: items, rejects, and their places."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from batch.contract import Verdict


@dataclass(frozen=True, slots=True)
class NewItem:
    """A valid input row, keyed by what makes it distinct."""

    row: int
    key: str
    payload: dict[str, Any]
    question: str = ""


@dataclass(frozen=True, slots=True)
class Reject:
    """An input row that is never sent, and why."""

    row: int
    reason: str
    raw: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OpenItem:
    """An item that still needs an answer, and its place in the asking order."""

    seq: int
    row: int
    payload: dict[str, Any]
    rank: int = 0
    since: int = 0

    @property
    def place(self) -> tuple[int, int, int]:
        return (self.rank, self.since, self.seq)


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item with whatever answer it has."""

    seq: int
    row: int
    key: str
    payload: dict[str, Any]
    state: str
    result: dict[str, Any] | None
    verdict: Verdict | None = None  # None: not judged yet (carried, or kept by an older run)


def verdict_text(verdict: Verdict | None) -> str | None:
    """A verdict as the store keeps it: JSON text."""
    if verdict is None:
        return None
    known = {"final": verdict.final, "counters": verdict.counters, "failure": verdict.failure}
    return orjson.dumps(known).decode()


def verdict_of(text: str | None) -> Verdict | None:
    """A verdict from the store's text."""
    if text is None:
        return None
    known = orjson.loads(text)
    return Verdict(bool(known["final"]), tuple(known["counters"]), known["failure"])
