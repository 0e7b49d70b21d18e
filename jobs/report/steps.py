"""The report's "next steps": what to do, with how many, and which file or sheet lists them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from jobs.dataset.outputs import ACTION_SHEETS

TABLE_FILES = ("reconciled.xlsx", "reconciled.parquet", "reconciled.csv")
Find = Callable[[str], Path | None]  # a file name -> where the run's copy is, if it has one


def next_steps(summary: Mapping[str, Any], find: Find) -> list[str]:
    """Plain sentences, most urgent first."""
    state, steps = summary.get("state"), []
    if state == "done":
        lists = _lists(find)
        steps.append(
            f"Send {_of(summary, 'non_member', 'non-member')} to the 금융투자 핀테크 포탈 sign-up "
            f"(portal_signup): {lists['portal_signup']}."
        )
        steps.append(
            f"Guide {_of(summary, 'no_linked_account', 'member')} to issue and link a virtual "
            "account "
            f"(link_account): {lists['link_account']}."
        )
        if summary.get("error"):
            steps.append(
                f"{_of(summary, 'error', 'customer')} ended in error: run the same command "
                "again; only they are asked again."
            )
        if summary.get("exit_code") == 1:
            steps.append("Exit 1: more customers ended in error than --max-error-rate allows.")
    elif state == "paused":
        steps.append(
            f"Paused at the daily reserve with {_of(summary, 'unanswered', 'customer')} "
            "left: run the same command after 09:00 KST."
        )
    elif state in ("aborted", "stopped", "failed"):
        steps.append(str(summary.get("reason") or state))
        steps.append("Progress is saved: run the same command again to resume.")
    rejected = int(summary.get("rejected") or 0)
    if rejected:
        rows = "row was" if rejected == 1 else "rows were"
        where = find("rejects.csv")
        named = str(where) if where is not None else "rejects.csv"
        steps.append(
            f"{rejected:,} input {rows} rejected and never asked: {named} gives each one's "
            "row number and reason. Correct them in the input and run again."
        )
    return steps or ["Nothing to do."]


def _lists(find: Find) -> dict[str, str]:
    """Where each action's customers are listed: a workbook sheet, or a filter on the table."""
    for name in TABLE_FILES:
        path = find(name)
        if path is None:
            continue
        if name.endswith(".xlsx"):
            return {a: f"the sheet '{title}' in {path}" for a, title in ACTION_SHEETS.items()}
        return {a: f"the rows with next_action = {a} in {path}" for a in ACTION_SHEETS}
    return {a: f"the rows with next_action = {a} in the reconciled table" for a in ACTION_SHEETS}


def _of(summary: Mapping[str, Any], key: str, noun: str) -> str:
    """`1 customer`, `2 customers`, `1,204 customers`: a count and its noun."""
    value = summary.get(key)
    if not isinstance(value, int):
        return f"? {noun}s"
    return f"{value:,} {noun}" + ("" if value == 1 else "s")
