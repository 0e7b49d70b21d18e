"""member-recon benchmarks: quota, gateway limit, outage, speed and CPU against a naive client.

Every figure runs the real CLI as a separate process against the sandbox, also a
separate process, on this machine's loopback. Run with `make bench`; options:
`--quick` (short runs, one of each), `--runs N` (runs of each figure, median),
`--big N` (customers for the memory figure, default 1,000,000). bench/README.md says
what each figure measures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.sandbox import synthetic_ci, synthetic_name  # noqa: E402

KEY = "bench-key-0123456789"
PY = sys.executable
SETTLED_AFTER = 5.0  # seconds: the gateway-limit figure also reports what follows them
OUTAGE_RATE = 100
OUTAGE_CUSTOMERS = 500  # 10 s of asking at 100 req/s: 3 before the outage, 7 after it
BUSY = 0.2  # cores used by other processes during a group, above which it is run again
GROUPS = "quota, gateway, outage, speed, memory, startup"

Row = tuple[str, str, str, bool]  # figure, value, target, ok


@dataclass(frozen=True, slots=True)
class Run:
    """One process run: wall seconds, CPU seconds (user + sys), peak RSS, exit, summary."""

    wall: float
    cpu: float
    rss_kib: int
    exit_code: int
    summary: dict = field(default_factory=dict)


@contextmanager
def sandbox(*flags: str) -> Iterator[str]:
    """A sandbox process; yields its base URL."""
    with tempfile.TemporaryDirectory() as folder:
        ready = Path(folder) / "url"
        proc = subprocess.Popen(
            [PY, "-m", "jobs", "sandbox", "--port", "0", "--ready-file", str(ready), *flags],
            env={**os.environ, "SANDBOX_API_KEY": KEY},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(200):
                if ready.exists() and ready.read_text().strip():
                    break
                time.sleep(0.05)
            yield ready.read_text().strip()
        finally:
            proc.terminate()
            proc.wait(10)


def stats(base_url: str) -> dict:
    """The sandbox's counters (`/_sandbox/stats`)."""
    root = base_url.split("/v1/", maxsplit=1)[0]
    with urllib.request.urlopen(f"{root}/_sandbox/stats", timeout=10) as answer:
        return json.load(answer)


def control(base_url: str, path_and_query: str) -> float:
    """POST to a sandbox control endpoint; the monotonic time halfway through the call."""
    root = base_url.split("/v1/", maxsplit=1)[0]
    request = urllib.request.Request(f"{root}{path_and_query}", method="POST")
    before = time.monotonic()
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()
    return (before + time.monotonic()) / 2


def make_input(folder: Path, n: int) -> Path:
    path = folder / f"customers_{n}.csv"
    if not path.exists():
        with path.open("w", encoding="utf-8") as out:
            out.write("ci,kor_name\n")
            for i in range(n):
                ci = synthetic_ci(i, "bench")
                out.write(f"{ci},{synthetic_name(ci)}\n")
    return path


def job_command(base_url: str, path: Path, out: Path, *flags: str) -> list[str]:
    """The CLI invocation every figure runs: the sandbox's partner, JSON logs."""
    return [
        PY,
        "-m",
        "jobs",
        "run",
        str(path),
        "--base-url",
        base_url,
        "--com-id",
        "F0995",
        "--srv-id",
        "297",
        "--out",
        str(out),
        "--log-format",
        "json",
        *flags,
    ]


def start(command: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen, float]:
    proc = subprocess.Popen(
        command,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, time.monotonic()


def finish(proc: subprocess.Popen, started: float) -> Run:
    """Wait for `proc` with wait4: its own CPU seconds and peak RSS, not the machine's."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Run(
        wall=time.monotonic() - started,
        cpu=usage.ru_utime + usage.ru_stime,
        rss_kib=usage.ru_maxrss,
        exit_code=proc.returncode,
    )


def start_job(base_url: str, path: Path, out: Path, *flags: str) -> tuple[subprocess.Popen, float]:
    return start(job_command(base_url, path, out, *flags), {"KOSCOM_API_KEY": KEY})


def finish_job(
    proc: subprocess.Popen, started: float, out: Path, exits: tuple[int, ...] | None = (0, 1)
) -> Run:
    """The job's run, with its summary; an exit outside `exits` (None: any) fails the bench."""
    run = finish(proc, started)
    if exits is not None and run.exit_code not in exits:
        raise RuntimeError(f"job exited {run.exit_code}")
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return Run(run.wall, run.cpu, run.rss_kib, run.exit_code, summary)


def run_job(base_url: str, path: Path, out: Path, *flags: str) -> Run:
    return finish_job(*start_job(base_url, path, out, *flags), out)


def run_naive(base_url: str, path: Path, rate: float | None = None) -> Run:
    """The naive client on `path`, unthrottled or paced at `rate` req/s."""
    command = [PY, str(ROOT / "bench" / "naive_client.py"), base_url, str(path), KEY]
    run = finish(*start([*command, *([str(rate)] if rate else [])]))
    if run.exit_code != 0:
        raise RuntimeError(f"naive client exited {run.exit_code}")
    return run


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen, poll: float = 0.01) -> bool:
    """Poll `condition` until it holds (True) or `proc` has ended (False)."""
    while proc.poll() is None:
        if condition():
            return True
        time.sleep(poll)
    return False


class OtherLoad:
    """CPU used by processes other than the bench's own, from /proc/stat, per figure."""

    def __init__(self) -> None:
        self.by_figure: dict[str, float] = {}  # cores in use by others, on average

    @staticmethod
    def _snapshot() -> tuple[float, float, float]:
        """(busy CPU seconds of the machine, of this process and its children, wall)."""
        ticks = os.sysconf("SC_CLK_TCK")
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:  # not Linux: no figure
            return 0.0, 0.0, time.monotonic()
        idle = int(fields[3]) + int(fields[4])  # idle + iowait
        busy = (sum(int(f) for f in fields[:8]) - idle) / ticks
        own = sum(
            resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
            for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        )
        return busy, own, time.monotonic()

    @contextmanager
    def measure(self, figure: str) -> Iterator[None]:
        busy, own, wall = self._snapshot()
        yield
        busy_after, own_after, wall_after = self._snapshot()
        others = (busy_after - busy) - (own_after - own)
        self.by_figure[figure] = max(0.0, others) / max(wall_after - wall, 1e-9)


def median(values: list[float]) -> float:
    return statistics.median(values)


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
                ">= 99%",
                ratio >= 0.99,
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


def gateway_limit_run(work: Path, limit: int, seconds: float, headers: bool, i: int) -> dict:
    """The job at `--rate 2L` against a sandbox limiting L req/s, with its counters over time."""
    path = make_input(work, int(limit * seconds / 2))
    out = work / f"g{limit}{'h' if headers else ''}-{i}"
    flags = ("--rate-limit", str(limit), *(("--limit-headers",) if headers else ()))
    with sandbox(*flags) as url:
        proc, started = start_job(
            url, path, out, "--rate", str(2 * limit), "--concurrency", "64", "--fresh"
        )
        settled = None
        if wait_until(lambda: stats(url)["requests"] > 0, proc):
            first = time.monotonic()
            while proc.poll() is None and time.monotonic() < first + SETTLED_AFTER:
                time.sleep(0.05)
            if proc.poll() is None:
                settled = (stats(url), time.monotonic() - first)
        finish_job(proc, started, out)
        seen = stats(url)
    accepted = seen["requests"] - seen["over_limit"]
    result = {
        "achieved": (accepted - 1) / seen["span_s"] / limit if seen["span_s"] else 0.0,
        "share": seen["over_limit"] / seen["requests"],
        "achieved_after": None,
        "share_after": None,
    }
    if settled is not None and seen["span_s"] > settled[1]:
        early, at = settled
        later = seen["requests"] - early["requests"]
        over = seen["over_limit"] - early["over_limit"]
        result["achieved_after"] = (later - over) / (seen["span_s"] - at) / limit
        result["share_after"] = over / later if later else 0.0
    return result


def gateway_limit_figures(
    work: Path, limits: tuple[int, ...], seconds: float, runs: int
) -> list[Row]:
    """Achieved share of the gateway's limit and share of 429s, `--rate` at twice the limit."""
    rows: list[Row] = []
    for limit in limits:
        for headers in (False, True):
            results = [gateway_limit_run(work, limit, seconds, headers, i) for i in range(runs)]
            achieved = median([r["achieved"] for r in results])
            share = median([r["share"] for r in results])
            afters = [r for r in results if r["achieved_after"] is not None]
            settled = (
                f" (after {SETTLED_AFTER:.0f} s: "
                f"{median([r['achieved_after'] for r in afters]):.1%} / "
                f"{median([r['share_after'] for r in afters]):.2%})"
                if afters
                else ""
            )
            stated = "stated in headers" if headers else "not stated"
            name = f"gateway {limit} req/s ({stated}), --rate {2 * limit}, {seconds:.0f} s"
            rows.append(
                (
                    f"{name}: achieved / 429 share (median of {runs})",
                    f"{achieved:.1%} / {share:.2%}{settled}",
                    ">= 90% / <= 5%",
                    achieved >= 0.9 and share <= 0.05,
                )
            )
    return rows


def outage_run(work: Path, concurrency: int, down: float, i: int) -> dict:
    """A `down`-second html outage at 100 req/s, started once the job is under way."""
    path = make_input(work, OUTAGE_CUSTOMERS)
    out = work / f"o{concurrency}-{i}"
    with sandbox() as url:
        proc, started = start_job(
            url, path, out, "--rate", str(OUTAGE_RATE), "--concurrency", str(concurrency), "--fresh"
        )
        recovery = None
        if wait_until(lambda: stats(url)["requests"] >= 3 * OUTAGE_RATE, proc, 0.05):
            ends = control(url, f"/_sandbox/outage?seconds={down}&kind=html") + down
            answered = sum(stats(url)["answered"].values())
            while proc.poll() is None and time.monotonic() < ends - 0.2:
                time.sleep(0.05)
            if wait_until(lambda: sum(stats(url)["answered"].values()) > answered, proc):
                recovery = time.monotonic() - ends
        run = finish_job(proc, started, out, exits=None)
        seen = stats(url)
    return {
        "exit": run.exit_code,
        "error": run.summary.get("error"),
        "in_outage": seen["in_outage"],
        "recovery": recovery,
    }


def outage_figures(work: Path, concurrencies: tuple[int, ...], down: float, runs: int) -> list[Row]:
    rows: list[Row] = []
    for concurrency in concurrencies:
        results = [outage_run(work, concurrency, down, i) for i in range(runs)]
        where = f"outage {down:.0f} s (html) at {OUTAGE_RATE} req/s, --concurrency {concurrency}"
        exits = sorted({r["exit"] for r in results})
        errors = [r["error"] for r in results]  # None: the run wrote no summary
        worst = "?" if None in errors else str(max(errors))
        rows.append(
            (
                f"{where}: exit code / customers in error (all {runs} runs)",
                f"{'/'.join(map(str, exits))} / {worst}",
                "0 / 0",
                exits == [0] and worst == "0",
            )
        )
        sent = median([r["in_outage"] for r in results])
        rows.append(
            (
                f"{where}: requests sent into it (median of {runs})",
                f"{sent:.0f} (most {max(r['in_outage'] for r in results)})",
                "<= 100",
                sent <= 100,
            )
        )
        recoveries = [r["recovery"] for r in results if r["recovery"] is not None]
        rows.append(
            (
                f"{where}: seconds from its end to the first answer (median of {runs})",
                f"{median(recoveries):.1f} s" if recoveries else "none",
                "",
                bool(recoveries),
            )
        )
    return rows


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
    width = max(len(r[0]) for r in rows)
    print(f"| {'figure':<{width}} | value | target | ok |")
    print(f"|{'-' * (width + 2)}|---|---|---|")
    for figure, value, target, ok in rows:
        print(f"| {figure:<{width}} | {value} | {target} | {'yes' if ok else 'NO'} |")
    others = ", ".join(f"{name} {cores:.2f}" for name, cores in load.by_figure.items())
    print(f"\nother processes' CPU, in cores on average, by group: {others}")
    if max(load.by_figure.values(), default=0.0) > BUSY:
        print("the machine was busy with other work: compare with care, or run again")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
