"""What the report reads: a run folder's summary, timeline and rejects; a dataset's nights.

Every reader is plain pyarrow and csv; none reads a CI or a name. None follows a link (a
planted `summary.json -> /etc/passwd` would be shown on the page), and a damaged file is
named in a UsageError, never a traceback.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import json
import re
import stat
from pathlib import Path
from typing import Any

from batch import UsageError
from batch.outputs import run_log_path, table_dir
from batch.run import TIMELINE_NAME, read_samples


def nights(root: Path) -> list[dict[str, Any]]:
    """One row per night from the run log: its current run's state and counts (else its last
    attempt's), how many runs it took, and the requests of all of them (`all_requests`)."""
    by_night: dict[str, dict[str, Any]] = {}
    for run in parquet_rows(run_log_path(root)):  # in the order the runs ended
        day = str(run["run_date"])
        night = by_night.setdefault(day, {"runs": 0, "all_requests": 0})
        runs, spent = night["runs"] + 1, night["all_requests"] + (run.get("requests") or 0)
        if not night.get("current"):  # a night's current run stays, whatever came after
            night.update(run, run_date=day)
            night["requests"], night["retries"] = run.get("requests") or 0, run.get("retries") or 0
            customers = run.get("customers") or 0
            night["error_rate"] = (run.get("error") or 0) / customers if customers else None
        night.update(runs=runs, all_requests=spent)
    return [by_night[day] for day in sorted(by_night)]


def events(root: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq  # noqa: PLC0415

    rows = []
    for folder in sorted(table_dir(root, "changes").glob("run_date=*")):
        for file in folder.glob("*.parquet"):
            present(file)
            counted = collections.Counter(
                pq.read_table(file, columns=["event"]).column("event").to_pylist()
            )
            night = folder.name.removeprefix("run_date=")
            rows += [{"night": night, "event": e, "n": n} for e, n in sorted(counted.items())]
    return rows


def run_samples(folder: Path) -> list[dict[str, Any]]:
    table = folder / "timeline.parquet"
    if present(table):
        return parquet_rows(table)
    path = folder / TIMELINE_NAME
    if not present(path):
        return []
    samples = read_samples(path)
    try:
        for sample in samples:
            for key in ("at", "session_started"):
                sample[key] = dt.datetime.fromisoformat(sample[key])
    except (KeyError, TypeError, ValueError) as exc:
        raise damaged(path, exc) from None
    return samples


def reject_reasons(path: Path) -> dict[str, int]:
    """Rejected rows by reason; `duplicate ci: first seen on row 6` counts as `duplicate ci`."""
    if not present(path):
        return {}
    with path.open(encoding="utf-8-sig", newline="") as rows:
        reasons = (
            re.sub(r"(: first seen on row| on row) \d+$", "", row.get("reason") or "")
            for row in csv.DictReader(rows)
        )
        return dict(collections.Counter(reasons))


def parquet_rows(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq  # noqa: PLC0415

    if not present(path):
        return []
    try:
        return list(pq.read_table(path).to_pylist())
    except OSError:
        raise
    except Exception as exc:  # pyarrow's ArrowInvalid and kin: a damaged file
        raise damaged(path, exc) from None


def json_file(path: Path) -> dict[str, Any]:
    present(path)
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (TypeError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise damaged(path, exc) from None


def present(path: Path) -> bool:
    """True for a plain file, False when there is none; a link or a device is refused."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISREG(info.st_mode):
        raise UsageError(f"{path} is a link or not a plain file; the report reads neither")
    return True


def damaged(path: Path, exc: Exception) -> UsageError:
    first = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
    return UsageError(f"{path} is damaged and cannot be read ({first}); rerun the night")
