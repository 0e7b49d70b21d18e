"""member-recon benchmarks: quota, gateway limit, outage, speed and CPU against a naive client.

Every figure runs the real CLI as a separate process against the sandbox, also a
separate process, on this machine's loopback. Run with `make bench`; options:
`--quick` (short runs, one of each), `--runs N` (runs of each figure, median),
`--big N` (customers for the memory figure, default 1,000,000). bench/README.md says
what each figure measures.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway import gateway_limit_figures, outage_figures  # noqa: E402
from harness import (  # noqa: E402
    PY,
    OtherLoad,
    Row,
    Run,
    make_input,
    median,
    print_table,
    run_job,
    run_naive,
    sandbox,
    stats,
)

BUSY = 0.2  # cores used by other processes during a group, above which it is run again
GROUPS = "quota, gateway, outage, speed, memory, startup"


def quota_figures(
    work: Path, rates: tuple[int, ...], seconds: float, runs: int
) -> tuple[list[Row], dict[int, list[Run]]]:
    """At `--rate N` against a sandbox limiting N req/s: achieved share, requests over it."""
    rows: list[Row] = []
    job_runs: dict[int, list[Run]] = {}
    for rate in rates:
        path = make_input(work, int(rate * seconds / 2))
        achieved, over = [], []
        for i in range(runs):
            with sandbox("--rate-limit", str(rate)) as url:
                flags = ("--rate", str(rate), "--concurrency", "64", "--fresh")
                job_runs.setdefault(rate, []).append(
                    run_job(url, path, work / f"q{rate}-{i}", *flags)
                )
                seen = stats(url)
            achieved.append((seen["requests"] - 1) / seen["span_s"] / rate if seen["span_s"] else 0)
            over.append(seen["over_limit"])
        ratio = median(achieved)
        rows.append(
            (
                f"quota {rate} req/s for {seconds:.0f} s: achieved (median of {runs})",
                f"{ratio:.2%}",
                ">= 98%",  # the pacing's hard log keeps 2% for jitter: 0 over comes first
                ratio >= 0.98,
            )
        )
        rows.append(
            (
                f"quota {rate} req/s: requests over the limit (worst of {runs})",
                str(max(over)),
                "0",
                max(over) == 0,
            )
        )
    return rows, job_runs


def speed_figures(work: Path, runs: int) -> list[Row]:
    """20k customers unthrottled: the job's customers/s and CPU against the naive client's."""
    small = make_input(work, 20_000)
    jobs, naives = [], []
    with sandbox() as url:
        for i in range(runs):  # alternating, so that a noisy spell hits both
            flags = ("--rate", "100000", "--concurrency", "64", "--fresh")
            jobs.append(run_job(url, small, work / f"s{i}", *flags))
            naives.append(run_naive(url, small))
    job_speed = median([20_000 / r.wall for r in jobs])
    naive_speed = median([20_000 / r.wall for r in naives])
    ratio = job_speed / naive_speed
    job_cpu = median([r.cpu / 40_000 * 1e6 for r in jobs])
    naive_cpu = median([r.cpu / 40_000 * 1e6 for r in naives])
    return [
        (f"job customers/s, 20k, unthrottled (median of {runs})", f"{job_speed:.0f}", "", True),
        (f"naive aiohttp customers/s, 20k (median of {runs})", f"{naive_speed:.0f}", "", True),
        ("speed ratio job / naive", f"{ratio:.2f}", ">= 0.9 (goal 1.0)", ratio >= 0.9),
        (
            "CPU per request, unthrottled: job / naive",
            f"{job_cpu:.0f} / {naive_cpu:.0f} us ({job_cpu / naive_cpu:.2f}x)",
            "",
            True,
        ),
    ]


def paced_cpu_figures(
    work: Path, rate: int, seconds: float, job_runs: list[Run], runs: int
) -> list[Row]:
    """CPU per request at `rate` req/s: the job (from the quota runs) against the naive client."""
    path = make_input(work, int(rate * seconds / 2))
    naives = []
    for _ in range(runs):
        with sandbox("--rate-limit", str(rate)) as url:
            naives.append(run_naive(url, path, rate))
    job_us = median([r.cpu / r.summary["requests"] * 1e6 for r in job_runs])
    naive_us = median([r.cpu / (2 * int(rate * seconds / 2)) * 1e6 for r in naives])
    return [
        (
            f"job CPU per request at {rate} req/s, whole process (median of {len(job_runs)})",
            f"{job_us:.0f} us ({job_us * rate / 1e6:.0%} of a core)",
            "",
            True,
        ),
        (
            f"CPU per request at {rate} req/s: job / naive paced (median of {runs})",
            f"{job_us:.0f} / {naive_us:.0f} us ({job_us / naive_us:.2f}x)",
            "",
            True,
        ),
    ]


def memory_figures(work: Path, big: int) -> list[Row]:
    small, large = make_input(work, 20_000), make_input(work, big)
    flags = ("--rate", "100000", "--concurrency", "64", "--fresh")
    with sandbox() as url:
        small_run = run_job(url, small, work / "m-small", *flags)
        big_run = run_job(url, large, work / "m-big", *flags)
        before = stats(url)["requests"]
        resumed = run_job(url, large, work / "m-big", "--rate", "100000")
        # What the sandbox received: a finished night's rerun reports the night's summary.
        requests = stats(url)["requests"] - before
    growth = big_run.rss_kib / small_run.rss_kib
    return [
        (
            f"peak RSS 20k / {big:,} customers",
            f"{small_run.rss_kib // 1024} / {big_run.rss_kib // 1024} MiB",
            "",
            True,
        ),
        (f"peak RSS growth {big:,} vs 20k", f"{growth:.2f}x", "<= 1.25x", growth <= 1.25),
        (f"whole run, {big:,} customers", f"{big_run.wall:.0f} s", "", True),
        (
            f"resume of a finished {big:,}-customer folder",
            f"{resumed.wall:.1f} s, {requests} requests",
            "0 requests",
            requests == 0,
        ),
    ]


def startup_figures() -> list[Row]:
    helps = []
    for _ in range(10):
        started = time.monotonic()
        subprocess.run(
            [PY, "-m", "jobs", "--help"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL
        )
        helps.append(time.monotonic() - started)
    startup = median(helps)
    return [("member-recon --help (median of 10)", f"{startup:.3f} s", "<= 0.3 s", startup <= 0.3)]


def measured(
    name: str, figures: Callable[[], list[Row]], load: OtherLoad, retries: int
) -> list[Row]:
    """The figures of one group; run again (up to `retries` times) while others were busy.

    The attempt during which other processes used the least CPU is kept.
    """
    best: tuple[float, list[Row]] | None = None
    for attempt in range(retries + 1):
        with load.measure(name):
            rows = figures()
        others = load.by_figure[name]
        if best is None or others < best[0]:
            best = (others, rows)
        if others <= BUSY:
            break
        if attempt < retries:
            print(f"{name}: others used {others:.2f} cores meanwhile; again", flush=True)
    assert best is not None
    load.by_figure[name] = best[0]
    return best[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short runs, one of each")
    parser.add_argument("--big", type=int, default=1_000_000, help="customers for memory")
    parser.add_argument("--runs", type=int, default=3, help="runs of each figure (median)")
    parser.add_argument("--speed-runs", type=int, default=5, help="speed runs of each client")
    parser.add_argument(
        "--busy-retries", type=int, default=2, help="runs again of a group measured while busy"
    )
    parser.add_argument("--only", default="", help=f"comma-separated groups of: {GROUPS}")
    args = parser.parse_args()
    quick = args.quick
    runs, speed_runs = (1, 1) if quick else (args.runs, args.speed_runs)
    seconds = 5.0 if quick else 32.0  # quota and CPU runs
    limit_seconds = 10.0 if quick else 30.0
    outage = 5.0 if quick else 20.0
    big = 40_000 if quick else args.big
    only = set(args.only.split(",")) - {""} or set(GROUPS.split(", "))
    load = OtherLoad()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="member-recon-bench-"))

    def quota_and_cpu() -> list[Row]:
        rows, job_runs = quota_figures(work, (20, 100, 500), seconds, runs)
        return rows + paced_cpu_figures(work, 500, seconds, job_runs[500], runs)

    groups: dict[str, tuple[Callable[[], list[Row]], int]] = {
        "quota": (quota_and_cpu, args.busy_retries),
        "gateway": (
            lambda: gateway_limit_figures(work, (20, 100), limit_seconds, runs),
            args.busy_retries,
        ),
        "outage": (lambda: outage_figures(work, (16, 64), outage, runs), args.busy_retries),
        "speed": (lambda: speed_figures(work, speed_runs), args.busy_retries),
        "memory": (lambda: memory_figures(work, big), 0),  # long, and RSS is not load
        "startup": (startup_figures, args.busy_retries),
    }
    rows: list[Row] = []
    try:
        for name, (figures, retries) in groups.items():
            if name in only:
                rows += measured(name, figures, load, retries)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print_table(rows)
    others = ", ".join(f"{name} {cores:.2f}" for name, cores in load.by_figure.items())
    print(f"\nother processes' CPU, in cores on average, by group: {others}")
    if max(load.by_figure.values(), default=0.0) > BUSY:
        print("the machine was busy with other work: compare with care, or run again")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
