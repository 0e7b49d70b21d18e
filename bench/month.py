"""A simulated month of dataset nights under --max-age, beside a full check every night.

Night 1 has `--customers` customers; each later night `--join` of the base (the night
before's customers) joins with new CIs and `--leave` of it leaves, drawn with a seeded
random generator, so a run is reproducible. Every night is one real CLI run (its own
process) with `--dataset ROOT --run-date D --max-age DAYS` on consecutive run dates,
against one sandbox process, into one dataset root. A full check would ask every
customer every night: 2 requests each. `--daily-cap N` runs the month under the API's
daily cap instead (bench/month_cap.py). Run with `make bench` or `bench/month.py --quick`;
bench/README.md says what each figure is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import KEY, finish_job, job_command, sandbox, start, stats

from jobs.sandbox.server import synthetic_ci, synthetic_name

SALT = "bench-month"
UNTHROTTLED = ("--rate", "100000", "--concurrency", "64")  # as bench/run.py's speed figure
SCALE_TO = 1_000_000
SPIKE = 3.0  # a night asking more than this many times the median later night is a spike


@dataclass(frozen=True, slots=True)
class Night:
    """One night's figures: the churn, the job's plan and summary, the sandbox's count."""

    night: int
    run_date: str
    customers: int
    joined: int
    left: int
    new: int  # the plan's: never answered
    in_error: int  # the plan's: the latest answer was a failure
    aged_out: int  # the plan's: answered max-age or more run dates ago
    asked: int
    carried: int
    errors: int  # customers in error tonight
    requests: int  # the summary's
    received: int  # what the sandbox received during the night
    full_check: int  # 2 x customers: every customer asked tonight
    wall_s: float


class Base:
    """The customer base, night by night: insertion-ordered, churned by a seeded generator."""

    def __init__(self, customers: int, seed: int) -> None:
        self.rng = random.Random(seed)
        self.next_id = 0
        self.members: dict[int, tuple[str, str]] = {}
        self.add(customers)

    def add(self, n: int) -> None:
        for i in range(self.next_id, self.next_id + n):
            ci = synthetic_ci(i, SALT)
            self.members[i] = (ci, synthetic_name(ci))
        self.next_id += n

    def churn(self, join: float, leave: float) -> tuple[int, int]:
        """A night's churn on the base as it stands: (joined, left)."""
        base = len(self.members)
        leaving = self.rng.sample(list(self.members), round(leave * base))
        for i in leaving:
            del self.members[i]
        joining = round(join * base)
        self.add(joining)
        return joining, len(leaving)

    def write(self, path: Path) -> Path:
        with path.open("w", encoding="utf-8") as out:
            out.write("ci,kor_name\n")
            out.writelines(f"{ci},{name}\n" for ci, name in self.members.values())
        return path


def dataset_command(url: str, path: Path, root: Path, day: str, max_age: int) -> list[str]:
    """bench/run.py's job command, with `--out DIR` made `--dataset ROOT --run-date D`."""
    command = job_command(url, path, root, *UNTHROTTLED, "--max-age", str(max_age))
    at = command.index("--out")
    command[at : at + 2] = ["--dataset", str(root), "--run-date", day]
    return command


def run_night(
    url: str,
    work: Path,
    base: Base,
    *,
    first: dt.date,
    number: int,
    churn: tuple[int, int],
    max_age: int,
) -> Night:
    """Night `number` of the base as it stands: one CLI run; the sandbox counts its requests."""
    root = work / "dataset"
    day = (first + dt.timedelta(days=number - 1)).isoformat()
    path = base.write(work / f"customers-{day}.csv")
    before = stats(url)["requests"]
    proc, started = start(dataset_command(url, path, root, day, max_age), {"KOSCOM_API_KEY": KEY})
    run = finish_job(proc, started, root / "summary" / f"run_date={day}")
    received = stats(url)["requests"] - before
    path.unlink()
    summary = run.summary
    plan = summary.get("plan") or {}
    return Night(
        night=number,
        run_date=day,
        customers=int(summary["customers"]),
        joined=churn[0],
        left=churn[1],
        new=int(plan.get("new", 0)),
        in_error=int(plan.get("in_error", 0)),
        aged_out=int(plan.get("aged_out", 0)),
        asked=int(summary["asked"]),
        carried=int(summary["carried"]),
        errors=int(summary.get("error", 0)),
        requests=int(summary["requests"]),
        received=received,
        full_check=2 * int(summary["customers"]),
        wall_s=round(run.wall, 1),
    )


COLUMNS = (
    ("night", "night"),
    ("run_date", "run date"),
    ("customers", "customers"),
    ("joined", "joined"),
    ("left", "left"),
    ("new", "new"),
    ("in_error", "in error"),
    ("aged_out", "aged out"),
    ("asked", "asked"),
    ("carried", "carried"),
    ("errors", "errors"),
    ("requests", "requests"),
    ("received", "sandbox"),
    ("full_check", "full check"),
    ("share", "share"),
    ("wall_s", "wall s"),
)


def cells(night: Night) -> list[str]:
    values = asdict(night)
    values["share"] = f"{night.requests / night.full_check:.1%}"
    return [f"{v:,}" if isinstance(v, int) else str(v) for v in (values[k] for k, _ in COLUMNS)]


def print_table(columns: Sequence[tuple[str, str]], body: list[list[str]]) -> None:
    """A markdown table: `columns` are (field, title) pairs, `body` the rows' cells."""
    rows = [[title for _, title in columns], *body]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for at, row in enumerate(rows):
        print("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if at == 0:
            print("|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")


def totals(nights: list[Night], customers: int, max_age: int) -> dict[str, Any]:
    sent = [n.requests for n in nights]
    full = [n.full_check for n in nights]
    later = sent[1:] or sent
    typical = statistics.median(later)
    spikes = [n for n in nights[1:] if n.requests > SPIKE * typical]
    scale = SCALE_TO / customers
    return {
        "requests": sum(sent),
        "full_check": sum(full),
        "ratio": sum(sent) / sum(full),
        "mean": statistics.mean(sent),
        "full_mean": statistics.mean(full),
        "max": max(sent),
        "max_night": nights[sent.index(max(sent))].night,
        "later_mean": statistics.mean(later),
        "later_median": typical,
        "later_max": max(later),
        "spikes": [n.night for n in spikes],
        "spike_share": [round(n.requests / n.full_check, 3) for n in spikes],
        "mismatches": [n.night for n in nights if n.requests != n.received],
        "scale": scale,
        "max_age": max_age,
    }


def print_totals(nights: list[Night], total: dict[str, Any], wall: float) -> None:
    scale = total["scale"]
    print(
        f"\nmonth ({len(nights)} nights): {total['requests']:,} requests with --max-age "
        f"{total['max_age']} vs {total['full_check']:,} for a full check every night: "
        f"{total['ratio']:.1%} ({total['full_check'] / total['requests']:.1f}x fewer)"
    )
    print(
        f"per night: mean {total['mean']:,.0f} (full check {total['full_mean']:,.0f}), "
        f"max {total['max']:,} on night {total['max_night']}; after night 1: "
        f"mean {total['later_mean']:,.0f}, median {total['later_median']:,.0f}, "
        f"max {total['later_max']:,}"
    )
    if total["spikes"]:
        shares = ", ".join(
            f"{n} ({s:.0%} of a full check)"
            for n, s in zip(total["spikes"], total["spike_share"], strict=True)
        )
        print(
            f"spikes (more than {SPIKE:.0f}x the median later night): nights {shares}; night 1's "
            f"cohort, asked together, ages out together every {total['max_age']} nights"
        )
    else:
        print("spikes: none")
    mismatches = total["mismatches"]
    print(
        "sandbox cross-check: every night's summary requests = what the sandbox received"
        if not mismatches
        else f"sandbox cross-check: summary != sandbox on nights {mismatches}"
    )
    print(
        f"at {SCALE_TO:,} customers (x{scale:g}, same shares): mean "
        f"{total['mean'] * scale:,.0f} requests a night (full check "
        f"{total['full_mean'] * scale:,.0f}), after night 1 median "
        f"{total['later_median'] * scale:,.0f}, spike nights up to "
        f"{total['later_max'] * scale:,.0f}"
    )
    print(f"wall time: {wall:.0f} s")


def scenario(args: argparse.Namespace, first: dt.date) -> str:
    """The month's first line: its nights, base, churn and --max-age."""
    return (
        f"{args.nights} nights from {first}, {args.customers:,} customers on night 1, "
        f"+{args.join:.1%} / -{args.leave:.1%} of the base a night (seed {args.seed}), "
        f"--max-age {args.max_age}"
    )


def save(
    args: argparse.Namespace, nights: Sequence[Any], total: dict[str, Any], wall: float
) -> None:
    """`--json`: the scenario, every night's figures and the totals."""
    document = {
        "scenario": {k: v for k, v in vars(args).items() if k != "json"},
        "nights": [asdict(n) for n in nights],
        "totals": {**total, "wall_s": round(wall, 1)},
    }
    args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--customers", type=int, default=20_000, help="customers on night 1")
    parser.add_argument("--nights", type=int, default=30, help="consecutive run dates")
    parser.add_argument("--max-age", type=int, default=7, help="the job's --max-age DAYS")
    parser.add_argument("--join", type=float, default=0.02, help="share of the base joining")
    parser.add_argument("--leave", type=float, default=0.01, help="share of the base leaving")
    parser.add_argument("--start", default="2026-11-01", help="night 1's run date")
    parser.add_argument("--seed", type=int, default=1, help="the churn's random seed")
    parser.add_argument(
        "--daily-cap",
        type=int,
        help="the API's daily cap per API: nights run with --daily-reserve 0 (bench/month_cap.py)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="2,000 customers, 15 nights (and a tenth of the cap)"
    )
    parser.add_argument("--json", type=Path, help="write the nights and totals here")
    args = parser.parse_args()
    if args.quick:
        args.customers, args.nights = 2_000, 15
        if args.daily_cap is not None:
            args.daily_cap = max(1, args.daily_cap // 10)
    first = dt.date.fromisoformat(args.start)
    if args.daily_cap is not None:
        from month_cap import run_capped  # noqa: PLC0415  (it imports this module)

        run_capped(args, first)
        return
    print(scenario(args, first), flush=True)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="member-recon-month-"))
    base = Base(args.customers, args.seed)
    nights: list[Night] = []
    try:
        with sandbox() as url:
            for number in range(1, args.nights + 1):
                churn = base.churn(args.join, args.leave) if number > 1 else (args.customers, 0)
                n = run_night(
                    url, work, base, first=first, number=number, churn=churn, max_age=args.max_age
                )
                nights.append(n)
                print(
                    f"night {number} {n.run_date}: {n.requests:,} requests, {n.wall_s} s",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    wall = time.monotonic() - started
    print()
    print_table(COLUMNS, [cells(n) for n in nights])
    total = totals(nights, args.customers, args.max_age)
    print_totals(nights, total, wall)
    if args.json:
        save(args, nights, total, wall)


if __name__ == "__main__":
    main()
