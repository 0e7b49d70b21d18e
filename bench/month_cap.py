"""The simulated month under the API's daily cap (`bench/month.py --daily-cap N`).

The sandbox answers N requests per API per day (a customer costs one on each of the two
APIs) and gets a new day before every night (`POST /_sandbox/reset-day`: the 09:00 KST
reset). Every night runs with `--daily-reserve 0`, so a night that meets the cap pauses
(exit 4) and publishes nothing; the next run date carries what it got and asks the rest.
Per night: the state and exit code, whether the night was published, the plan, asked and
carried, requests (the summary's, beside the sandbox's count and the run log's row), and
for a published night how its answers' asked-on dates spread and how many customers it
asked whose answer in the last published night was still young (asked again too soon).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from harness import KEY, control, finish_job, sandbox, start, stats
from month import SPIKE, Base, dataset_command, print_table, save, scenario

PAUSED = 4


@dataclass(frozen=True, slots=True)
class CappedNight:
    """One night under the cap: how it ended, its plan and summary, what the sandbox saw."""

    night: int
    run_date: str
    customers: int
    joined: int
    left: int
    state: str  # the summary's: done or paused
    exit_code: int
    published: bool  # ROOT/reconciled/run_date=D exists
    new: int
    in_error: int
    aged_out: int
    asked: int
    carried: int
    errors: int
    requests: int  # the summary's
    received: int  # what the sandbox received during the night
    refused: int  # of which the sandbox refused at the cap (429)
    logged: bool  # the run log's row for the night agrees on requests, asked and carried
    ask_dates: int  # a published night: distinct asked-on dates among its answers
    largest_cohort: float  # ... and the largest share of them asked on one date
    young_asked: int  # ... and customers asked tonight whose last published answer was young
    stores: int  # progress stores left in ROOT/.work after the night (paused nights keep theirs)
    full_check: int
    wall_s: float


def summary_of(root: Path, day: str) -> dict[str, Any]:
    """A published night's summary, else the one its work folder keeps (a paused night's)."""
    for folder in (root / "summary" / f"run_date={day}", root / ".work" / day):
        path = folder / "summary.json"
        if path.is_file():
            return dict(json.loads(path.read_text()))
    return {}


def run_log_row(root: Path, day: str) -> dict[str, Any]:
    """The run log's last row for run date `day` (every run, paused ones too, has one)."""
    path = root / "runs" / "runs.parquet"
    rows = pq.read_table(path).to_pylist() if path.is_file() else []
    mine = [row for row in rows if row["run_date"] == dt.date.fromisoformat(day)]
    return mine[-1] if mine else {}


Answers = dict[str, tuple[dt.date, bool]]  # a published night's: CI -> (asked on, final)


def published_answers(root: Path, day: str) -> Answers:
    """A published night's answers: each customer's asked-on date, and whether it's final."""
    path = root / "reconciled" / f"run_date={day}" / "reconciled.parquet"
    rows = pq.read_table(path, columns=["ci", "asked_on", "status"]).to_pylist()
    return {row["ci"]: (row["asked_on"], row["status"] != "error") for row in rows}


def spread(answers: Answers, day: str, before: Answers, max_age: int) -> tuple[int, float, int]:
    """Distinct asked-on dates, the largest share on one, and those asked again while young.

    Young: the last published night `before` holds a final answer asked fewer than `max_age`
    run dates before `day`, so the plan should have carried it.
    """
    tonight = dt.date.fromisoformat(day)
    dates = Counter(asked_on for asked_on, _ in answers.values())
    young_after = tonight - dt.timedelta(days=max_age)
    again = sum(
        1
        for ci, (asked_on, _) in answers.items()
        if asked_on == tonight and ci in before and before[ci][1] and before[ci][0] > young_after
    )
    return len(dates), max(dates.values()) / sum(dates.values()), again


def run_capped_night(
    url: str,
    work: Path,
    base: Base,
    *,
    day: str,
    number: int,
    churn: tuple[int, int],
    max_age: int,
    last: Answers,
) -> tuple[CappedNight, Answers | None]:
    """Night `number` on a new API day: one CLI run with `--daily-reserve 0`; its answers
    if it was published (`last`: the last published night's)."""
    root = work / "dataset"
    path = base.write(work / f"customers-{day}.csv")
    control(url, "/_sandbox/reset-day")
    before = stats(url)
    command = [*dataset_command(url, path, root, day, max_age), "--daily-reserve", "0"]
    proc, started = start(command, {"KOSCOM_API_KEY": KEY})
    run = finish_job(proc, started, root / "summary" / f"run_date={day}", exits=(0, 1, PAUSED))
    after = stats(url)
    path.unlink()
    summary = run.summary or summary_of(root, day)
    plan = summary.get("plan") or {}
    logged = run_log_row(root, day)
    published = (root / "reconciled" / f"run_date={day}").is_dir()
    answers = published_answers(root, day) if published else None
    dates, largest, again = spread(answers, day, last, max_age) if answers else (0, 0.0, 0)
    refused = after["answered"].get("429", 0) - before["answered"].get("429", 0)
    night = CappedNight(
        night=number,
        run_date=day,
        customers=int(summary["customers"]),
        joined=churn[0],
        left=churn[1],
        state=str(summary["state"]),
        exit_code=run.exit_code,
        published=published,
        new=int(plan.get("new", 0)),
        in_error=int(plan.get("in_error", 0)),
        aged_out=int(plan.get("aged_out", 0)),
        asked=int(summary["asked"]),
        carried=int(summary["carried"]),
        errors=int(summary.get("error", 0)),
        requests=int(summary["requests"]),
        received=after["requests"] - before["requests"],
        refused=refused,
        logged=all(logged.get(k) == summary[k] for k in ("requests", "asked", "carried")),
        ask_dates=dates,
        largest_cohort=round(largest, 3),
        young_asked=again,
        stores=len(list((root / ".work").glob("*/.progress.sqlite"))),
        full_check=2 * int(summary["customers"]),
        wall_s=round(run.wall, 1),
    )
    return night, answers


COLUMNS = (
    ("night", "night"),
    ("run_date", "run date"),
    ("customers", "customers"),
    ("joined", "joined"),
    ("left", "left"),
    ("outcome", "exit / state"),
    ("published", "published"),
    ("new", "new"),
    ("in_error", "in error"),
    ("aged_out", "aged out"),
    ("asked", "asked"),
    ("carried", "carried"),
    ("errors", "errors"),
    ("requests", "requests"),
    ("received", "sandbox"),
    ("refused", "429"),
    ("logged", "run log"),
    ("ask_dates", "ask dates"),
    ("largest_cohort", "largest"),
    ("young_asked", "young asked"),
    ("stores", "stores"),
    ("share", "share"),
    ("wall_s", "wall s"),
)


def cells(night: CappedNight) -> list[str]:
    values: dict[str, Any] = asdict(night)
    values["outcome"] = f"{night.exit_code} {night.state}"
    values["published"] = "yes" if night.published else "no"
    values["logged"] = "ok" if night.logged else "DIFFERS"
    values["largest_cohort"] = f"{night.largest_cohort:.0%}" if night.published else ""
    values["ask_dates"] = str(night.ask_dates) if night.published else ""
    values["young_asked"] = f"{night.young_asked:,}" if night.published else ""
    values["share"] = f"{night.requests / night.full_check:.1%}"
    return [
        f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)
        for v in (values[k] for k, _ in COLUMNS)
    ]


def totals(nights: list[CappedNight], cap: int, max_age: int) -> dict[str, Any]:
    sent = [n.requests for n in nights]
    published = [n.night for n in nights if n.published]
    first = published[0] if published else None
    later = sent[1:] or sent
    typical = statistics.median(later)
    # From the first published night plus max-age on: after the first cohorts first age out.
    steady = [n for n in nights if first is not None and n.night >= first + max_age]
    return {
        "cap": cap,
        "bound": 2 * cap,
        "requests": sum(sent),
        "full_check": sum(n.full_check for n in nights),
        "max": max(sent),
        "max_night": nights[sent.index(max(sent))].night,
        "over_bound": [n.night for n in nights if n.requests > 2 * cap],
        "later_median": typical,
        "spikes": [n.night for n in nights[1:] if n.requests > SPIKE * typical],
        "published": len(published),
        "first_published": first,
        "paused": [n.night for n in nights if n.exit_code == PAUSED],
        "unpublished_after_first": [
            n.night for n in nights if first is not None and n.night > first and not n.published
        ],
        "steady_from": first + max_age if first is not None else None,
        "steady_mean": statistics.mean(n.requests for n in steady) if steady else None,
        "steady_max": max((n.requests for n in steady), default=None),
        "steady_share": (
            sum(n.requests for n in steady) / sum(n.full_check for n in steady) if steady else None
        ),
        "steady_largest": max((n.largest_cohort for n in steady), default=None),
        "refused": sum(n.refused for n in nights),
        "young_asked": sum(n.young_asked for n in nights),
        "young_nights": [n.night for n in nights if n.young_asked],
        "mismatches": [n.night for n in nights if n.requests != n.received],
        "log_mismatches": [n.night for n in nights if not n.logged],
        "max_age": max_age,
    }


def print_totals(nights: list[CappedNight], total: dict[str, Any], wall: float) -> None:
    bound_ok = "within" if not total["over_bound"] else f"OVER on nights {total['over_bound']}"
    print(
        f"\nmonth ({len(nights)} nights, daily cap {total['cap']:,} per API): "
        f"{total['requests']:,} requests vs {total['full_check']:,} for a full check every "
        f"night ({total['requests'] / total['full_check']:.1%}; the cap allows at most "
        f"{total['bound']:,} a night)"
    )
    print(
        f"per night: max {total['max']:,} on night {total['max_night']}, {bound_ok} the "
        f"bound of 2 x cap = {total['bound']:,}; median after night 1 "
        f"{total['later_median']:,.0f}"
    )
    first = total["first_published"]
    print(
        f"published: {total['published']} of {len(nights)} nights, the first night "
        f"{first if first is not None else 'never'}; paused (exit 4): "
        f"{total['paused'] or 'none'}; not published after the first: "
        f"{total['unpublished_after_first'] or 'none'}"
    )
    spikes = total["spikes"]
    print(
        f"spikes (more than {SPIKE:.0f}x the median later night): "
        f"{('nights ' + ', '.join(map(str, spikes))) if spikes else 'none'}"
    )
    if total["steady_from"] is not None and total["steady_mean"] is not None:
        print(
            f"from night {total['steady_from']} (first published + --max-age "
            f"{total['max_age']}): mean {total['steady_mean']:,.0f} requests a night, max "
            f"{total['steady_max']:,}, {total['steady_share']:.1%} of a full check; the "
            f"largest share of a published night asked on one date: "
            f"{total['steady_largest']:.0%}"
        )
    print(
        "sandbox cross-check: every night's summary requests = what the sandbox received"
        if not total["mismatches"]
        else f"sandbox cross-check: summary != sandbox on nights {total['mismatches']}"
    )
    print(f"refused at the cap (429): {total['refused']:,}")
    print(
        f"asked again while young (the last published night's answer was final and younger "
        f"than --max-age): {total['young_asked']:,} customers, on nights "
        f"{total['young_nights'] or 'none'}"
    )
    print(
        "run log: every night's row agrees with its summary (requests, asked, carried)"
        if not total["log_mismatches"]
        else f"run log: differs from the summary on nights {total['log_mismatches']}"
    )
    print(f"wall time: {wall:.0f} s")


def run_capped(args: argparse.Namespace, first: dt.date) -> None:
    """The month against a sandbox with a daily cap of `args.daily_cap` per API."""
    cap = int(args.daily_cap)
    print(f"{scenario(args, first)}, daily cap {cap:,} per API (--daily-reserve 0)", flush=True)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="member-recon-month-cap-"))
    base = Base(args.customers, args.seed)
    nights: list[CappedNight] = []
    last: Answers = {}
    try:
        with sandbox("--daily-cap", str(cap)) as url:
            for number in range(1, args.nights + 1):
                churn = base.churn(args.join, args.leave) if number > 1 else (args.customers, 0)
                day = (first + dt.timedelta(days=number - 1)).isoformat()
                n, answers = run_capped_night(
                    url,
                    work,
                    base,
                    day=day,
                    number=number,
                    churn=churn,
                    max_age=args.max_age,
                    last=last,
                )
                last = answers if answers is not None else last
                nights.append(n)
                print(
                    f"night {number} {day}: exit {n.exit_code} ({n.state}), "
                    f"{n.requests:,} requests, {n.wall_s} s",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    wall = time.monotonic() - started
    print()
    print_table(COLUMNS, [cells(n) for n in nights])
    total = totals(nights, cap, args.max_age)
    print_totals(nights, total, wall)
    if args.json:
        save(args, nights, total, wall)
