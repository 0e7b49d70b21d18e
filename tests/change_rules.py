"""The change feed's rules read independently of its SQL, from the published nights."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pandas as pd


def night(root: Path, table: str, day: str) -> Path:
    """A table's file for one night: ROOT/<table>/run_date=<day>/<table>.parquet."""
    return root / table / f"run_date={day}" / f"{table}.parquet"


@functools.lru_cache(maxsize=64)
def _read(root: Path, table: str, day: str, mtime: int) -> pd.DataFrame:
    frame = pd.read_parquet(night(root, table, day))
    return frame.set_index("ci", drop=False) if table == "reconciled" else frame


def read(root: Path, table: str, day: str) -> pd.DataFrame:
    """A night of a table, read once while its file stays the same."""
    return _read(root, table, day, night(root, table, day).stat().st_mtime_ns)


def expected_changes(root: Path, earlier: list[str], cur: str) -> set[tuple[str, str, str | None]]:
    """An independent reading of the change rules: tonight against the nights before (newest
    first), a customer in error last night compared with their last good answer."""
    p, c = read(root, "reconciled", earlier[0]), read(root, "reconciled", cur)
    found: set[tuple[str, str, str | None]] = set()
    for ci in c.index.difference(p.index):
        found.add((ci, "new_customer", None))
    for ci in p.index.difference(c.index):
        found.add((ci, "gone_from_input", None))
    for ci in c.index.intersection(p.index):
        was, now = p.loc[ci], c.loc[ci]
        if now.status == "error" and was.status != "error":
            found.add((ci, "now_in_error", None))
        if now.status == "error":
            continue
        if was.status == "error":
            found.add((ci, "recovered_from_error", None))
        good = last_good(root, earlier, ci)
        if good is not None:
            found |= {(ci, event, detail) for event, detail in answer_events(*good, now, cur, root)}
    return found


def last_good(root: Path, earlier: list[str], ci: str) -> tuple[Any, str] | None:
    for day in earlier:
        rows = read(root, "reconciled", day)
        if ci in rows.index and rows.loc[ci].status != "error":
            return rows.loc[ci], day
    return None


def accounts_of(root: Path, day: str, ci: str) -> set[tuple[str, str]]:
    frame = read(root, "accounts", day)
    mine = frame[frame.ci == ci]
    return set(zip(mine.com_id, mine.vt_acc_no, strict=True))


def answer_events(was: Any, was_day: str, now: Any, day: str, root: Path) -> set[tuple[str, Any]]:
    found: set[tuple[str, Any]] = set()
    if (was.membership, now.membership) == ("nonMember", "member"):
        found.add(("became_member", None))
    if (was.membership, now.membership) == ("member", "nonMember"):
        found.add(("became_non_member", None))
    if pd.isna(was.linked_accounts) or pd.isna(now.linked_accounts):
        return found
    if was.linked_accounts == 0 and now.linked_accounts > 0:
        found.add(("linked_first_account", None))
    if was.linked_accounts > 0 and now.linked_accounts == 0:
        found.add(("lost_all_accounts", None))
    before, after = accounts_of(root, was_day, now.name), accounts_of(root, day, now.name)
    found |= {("account_added", f"{a}:{b}") for a, b in after - before}
    found |= {("account_removed", f"{a}:{b}") for a, b in before - after}
    return found
