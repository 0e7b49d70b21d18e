"""The dataset's kept columns: the same in every night, changed only by `migrate`.

Readers take one night's columns for all of them (DuckDB, pandas, Spark) or refuse a
mix (polars), so a night whose `--keep-columns` or `--pseudonymize` differs from the
nights already there is refused. `migrate ROOT --keep-columns …` gives every earlier
night the new list, a kept column it lacked as nulls, one partition at a time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from batch import UsageError
from jobs.dataset.outputs import RECONCILED_COLUMNS, reconciled_schema
from jobs.dataset.upgrade import conform, nights_of, rewrite, with_version

_BASE = len(RECONCILED_COLUMNS)  # the CI (or its HMAC) and the answer's columns come first


def check_kept_names(keep: Sequence[str]) -> None:
    """Kept columns never shadow an output column, even by case alone (DuckDB, Spark and
    Excel compare names without case)."""
    taken = {name.lower(): name for name in (*RECONCILED_COLUMNS, "ci_hmac")}
    for name in keep:
        clash = taken.get(name.lower())
        if clash is not None:
            same = "" if clash == name else f" ({clash!r} differs only by case)"
            raise UsageError(f"--keep-columns {name!r} would clash with the output column{same}")
        taken[name.lower()] = name


def night_layouts(root: Path) -> dict[tuple[str, tuple[str, ...]], list[dt.date]]:
    """The nights of each (CI column, kept columns) layout `reconciled` holds."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    found: dict[tuple[str, tuple[str, ...]], list[dt.date]] = {}
    for day, night in nights_of(root, "reconciled"):
        names = pq.read_schema(night).names
        found.setdefault((names[0], tuple(names[_BASE:])), []).append(day)
    return found


def check_columns(root: Path, ci_field: str, keep: Sequence[str]) -> None:
    """Refuse a night whose CI column or kept columns differ from the dataset's nights."""
    ours = (ci_field, tuple(keep))
    for (field, kept), days in night_layouts(root).items():
        if field != ci_field:
            raise UsageError(_pseudonym_message(root, field, len(days)))
        if (field, kept) != ours:
            raise UsageError(_kept_message(root, kept, tuple(keep), days))


def _kept_message(
    root: Path, theirs: tuple[str, ...], ours: tuple[str, ...], days: list[dt.date]
) -> str:
    added = [c for c in ours if c not in theirs]
    dropped = [c for c in theirs if c not in ours]
    what = "; ".join(
        part
        for part in (
            f"adds {', '.join(added)}" if added else "",
            f"drops {', '.join(dropped)}" if dropped else "",
            "" if added or dropped else "orders them otherwise",
        )
        if part
    )
    flag = ",".join(ours)
    return (
        f"--keep-columns {flag or '(none)'} differs from the {len(days)} nights in {root} "
        f"({days[0]} to {days[-1]}), which keep {','.join(theirs) or 'no column'}: this run "
        f"{what}. To move the dataset over (earlier nights get the new columns as nulls), run: "
        f"member-recon migrate {root} --keep-columns {flag}"
        + (f"; or run with --keep-columns {','.join(theirs)}" if theirs else "")
    )


def _pseudonym_message(root: Path, theirs: str, nights: int) -> str:
    if theirs == "ci_hmac":
        return (
            f"the {nights} nights in {root} are pseudonymized (ci_hmac): a run without "
            "--pseudonymize would write raw CIs beside them; add --pseudonymize"
        )
    return (
        f"the {nights} nights in {root} hold raw CIs (ci): a run with --pseudonymize writes "
        "ci_hmac, and the two cannot be joined; write pseudonymized nights into a new "
        "--dataset root, or run without --pseudonymize"
    )


def migrate_columns(root: Path, keep: Sequence[str]) -> list[str]:
    """Give every night of `reconciled` exactly the kept columns `keep`; what was rewritten."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    check_kept_names(keep)
    done = []
    for day, night in nights_of(root, "reconciled"):
        found = pq.read_schema(night)
        kept = tuple(found.names[_BASE:])
        if kept == tuple(keep):
            continue
        schema = reconciled_schema(found.names[0], keep)
        rewrite(root, "reconciled", day, with_version(conform(pq.read_table(night), schema)))
        added = [c for c in keep if c not in kept]
        dropped = [c for c in kept if c not in keep]
        change = ", ".join([*(f"+{c} (null)" for c in added), *(f"-{c}" for c in dropped)])
        done.append(f"reconciled/{night.parent.name}: {change or 'kept columns reordered'}")
    return done
