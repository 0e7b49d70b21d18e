"""Pacing figures: a noisy gateway, a live app sharing the quota, a strict nginx, a busy machine.

Each figure is measured beside a clean run in the same process with the same input, so
that the ratio says what the fault costs. Run with `bench/pacing.py` (about 12 minutes;
`--quick` about 3) or `make bench`; `--only noisy,app,strict,loaded` runs some.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
from harness import PY, Row, median, sandbox, stats

# 4% of answers faulty, one in four each: a stray 429, a 503, a reset, a broken 200.
NOISE = ("http429:0.01", "http503:0.0101", "reset:0.0102", "truncated:0.0103")
NOISY_RATE = 200
APP_QUOTA = 100
APP_PEAK = 50  # the live app's load swings 0..50 req/s and back
APP_PERIOD = 60.0  # seconds of one swing


def duration(run_summary: dict) -> float:
    return float(run_summary.get("duration_s") or 0.0)


def noisy_figures(work: Path, customers: int, runs: int) -> list[Row]:
    """The night against 4% faulty answers, beside the clean night, at `--rate 200`."""
    path = harness.make_input(work, customers)
    flags = ("--rate", str(NOISY_RATE), "--concurrency", "64", "--fresh")
    ratios, errors, cuts = [], [], []
    for i in range(runs):
        with sandbox() as url:
            clean = harness.run_job(url, path, work / f"clean-{i}", *flags)
        faults = [flag for spec in NOISE for flag in ("--fault", spec)]
        with sandbox(*faults) as url:
            noisy = harness.run_job(url, path, work / f"noisy-{i}", *flags)
            seen = stats(url)
        ratios.append(duration(noisy.summary) / duration(clean.summary))
        errors.append(int(noisy.summary.get("error", -1)))
        cuts.append(int(noisy.summary.get("rate_cuts", 0)))
        print(f"  noisy {i}: {ratios[-1]:.2f}x, faults {seen['faults']}", flush=True)
    ratio = median(ratios)
    where = f"noisy gateway (4% faulty), {customers:,} customers at --rate {NOISY_RATE}"
    return [
        (
            f"{where}: night / clean night (median of {runs}; worst)",
            f"{ratio:.2f}x ({max(ratios):.2f}x); rate cuts {max(cuts)}",
            "<= 1.2x",
            ratio <= 1.2,
        ),
        (f"{where}: customers in error (worst of {runs})", str(max(errors)), "0", max(errors) == 0),
    ]


def app_run(work: Path, seconds: float, app: bool, i: int) -> tuple[float, float]:
    """(the job's accepted share of what the app left, its 429 share) at the quota."""
    path = harness.make_input(work, int(APP_QUOTA * seconds / 2))
    flags = ["--rate-limit", str(APP_QUOTA)]
    if app:
        flags += ["--app-load", str(APP_PEAK), "--app-period", str(APP_PERIOD)]
    with sandbox(*flags) as url:
        harness.run_job(url, path, work / f"app{app}-{i}", "--rate", str(APP_QUOTA), "--fresh")
        seen = stats(url)
    accepted = seen["requests"] - seen["over_limit"]
    left = APP_QUOTA * seen["span_s"] - seen["app_admitted"]
    return (accepted - 1) / left, seen["over_limit"] / seen["requests"]


def app_figures(work: Path, seconds: float, runs: int) -> list[Row]:
    """A live app shares the 100 req/s quota; the job at `--rate 100` takes what it leaves."""
    rows: list[Row] = []
    for app in (False, True):
        results = [app_run(work, seconds, app, i) for i in range(runs)]
        used, refused = median([r[0] for r in results]), median([r[1] for r in results])
        where = (
            f"live app 0-{APP_PEAK} req/s ({APP_PERIOD:.0f} s swing) sharing {APP_QUOTA} req/s"
            if app
            else f"quota {APP_QUOTA} req/s alone (the clean run)"
        )
        rows.append(
            (
                (
                    f"{where}, --rate {APP_QUOTA}, {seconds:.0f} s: used of what is left / 429s "
                    f"(median of {runs})"
                ),
                f"{used:.1%} / {refused:.2%}",
                ">= 95% / <= 2%",
                used >= 0.95 and refused <= 0.02,
            )
        )
    return rows


def strict_run(work: Path, limit: int, rate: int, seconds: float, i: int) -> tuple[float, float]:
    """(accepted per second as a share of nginx's limit, 429 share), nginx without burst."""
    from tests.servers import nginx_gateway  # noqa: PLC0415 - nginx only for this figure

    path = harness.make_input(work, int(limit * seconds / 2))
    out = work / f"strict{limit}-{rate}-{i}"
    with sandbox() as url, nginx_gateway(url, limit_rps=limit) as gateway:
        proc, started = start_job(gateway.base_url, path, out, rate, gateway.env())
        harness.finish_job(proc, started, out)
        lines = gateway.log_lines()
    times = sorted(float(line.rsplit(" t=", 1)[1]) for line in lines if " t=" in line)
    refused = sum(1 for line in lines if line.startswith("429 "))
    accepted = len(lines) - refused
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return ((accepted - 1) / span / limit if span else 0.0), refused / max(1, len(lines))


def start_job(
    url: str, path: Path, out: Path, rate: int, env: dict[str, str]
) -> tuple[subprocess.Popen, float]:
    command = harness.job_command(url, path, out, "--rate", str(rate), "--fresh")
    return harness.start(command, {"KOSCOM_API_KEY": harness.KEY, **env})


def strict_figures(work: Path, seconds: float, runs: int) -> list[Row]:
    """nginx `limit_req` without burst at 10 and 50 r/s; `--rate` at twice and at the limit."""
    rows: list[Row] = []
    for limit in (10, 50):
        for rate in (2 * limit, limit):
            results = [strict_run(work, limit, rate, seconds, i) for i in range(runs)]
            used, refused = median([r[0] for r in results]), median([r[1] for r in results])
            rows.append(
                (
                    (
                        f"strict nginx {limit} r/s (no burst), --rate {rate}, {seconds:.0f} s: "
                        f"achieved / 429s (median of {runs})"
                    ),
                    f"{used:.1%} / {refused:.2%}",
                    ">= 95% / <= 2%",
                    used >= 0.95 and refused <= 0.02,
                )
            )
    return rows


@contextlib.contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """`count` processes spinning on a core each, as a loaded machine has."""
    procs = [subprocess.Popen([PY, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def loaded_figures(work: Path, rate: int, seconds: float, runs: int) -> list[Row]:
    """The quota at `rate` req/s with two busy processes on the machine, beside an idle one."""
    path = harness.make_input(work, int(rate * seconds / 2))
    rows: list[Row] = []
    for busy in (0, 2):
        achieved, over = [], []
        for i in range(runs):
            with busy_processes(busy), sandbox("--rate-limit", str(rate)) as url:
                harness.run_job(url, path, work / f"l{busy}-{i}", "--rate", str(rate), "--fresh")
                seen = stats(url)
            achieved.append((seen["requests"] - 1) / seen["span_s"] / rate)
            over.append(seen["over_limit"])
        where = f"quota {rate} req/s, {busy} busy processes beside, {seconds:.0f} s"
        rows.append(
            (
                f"{where}: achieved (median of {runs}) / over the limit (worst)",
                f"{median(achieved):.2%} / {max(over)}",
                ">= 98% / 0",
                median(achieved) >= 0.98 and max(over) == 0,
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short runs, one of each")
    parser.add_argument("--runs", type=int, default=3, help="runs of each figure (median)")
    parser.add_argument("--only", default="", help="comma-separated: noisy, app, strict, loaded")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    seconds = 20.0 if args.quick else 60.0
    groups: dict[str, Callable[[Path], list[Row]]] = {
        "noisy": lambda work: noisy_figures(work, 600 if args.quick else 2000, runs),
        "app": lambda work: app_figures(work, seconds, runs),
        "strict": lambda work: strict_figures(work, seconds / 2, runs),
        "loaded": lambda work: loaded_figures(work, 100, seconds / 2, runs),
    }
    only = set(args.only.split(",")) - {""} or set(groups)
    load = harness.OtherLoad()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="member-recon-pacing-") as folder:
        for name, figures in groups.items():
            if name in only:
                started = time.monotonic()
                with load.measure(name):
                    rows += figures(Path(folder))
                print(f"{name}: {time.monotonic() - started:.0f} s", flush=True)
    harness.print_table(rows)
    others = ", ".join(f"{name} {cores:.2f}" for name, cores in load.by_figure.items())
    print(f"\nother processes' CPU (busy processes of the loaded figure included), cores: {others}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
