"""member-recon benchmarks: quota precision, speed against a naive client, memory, start-up.

Every figure runs the real CLI as a separate process against the sandbox, also a
separate process, on this machine's loopback. Run with `make bench`; options:
`--quick` (short runs), `--big N` (customers for the memory figure, default 1,000,000).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from jobs.sandbox import synthetic_ci, synthetic_name  # noqa: E402

KEY = "bench-key-0123456789"
PY = sys.executable


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
    root = base_url.split("/v1/", maxsplit=1)[0]
    with urllib.request.urlopen(f"{root}/_sandbox/stats", timeout=10) as answer:
        return json.load(answer)


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


def run_job(base_url: str, path: Path, out: Path, *flags: str) -> tuple[float, int, dict]:
    """Wall seconds, peak RSS in KiB, and the summary of one job run."""
    started = time.monotonic()
    proc = subprocess.Popen(
        job_command(base_url, path, out, *flags),
        env={**os.environ, "KOSCOM_API_KEY": KEY},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    summary = (
        json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    )
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"job exited {proc.returncode}")
    return wall, usage.ru_maxrss, summary


def quota_precision(folder: Path, rate: int, seconds: float) -> tuple[float, int]:
    customers = int(rate * seconds / 2)
    path = make_input(folder, customers)
    with sandbox("--rate-limit", str(rate)) as url:
        run_job(
            url, path, folder / f"q{rate}", "--rate", str(rate), "--concurrency", "64", "--fresh"
        )
        seen = stats(url)
    achieved = (seen["requests"] - 1) / seen["span_s"] if seen["span_s"] else 0.0
    return achieved / rate, seen["over_limit"]


def run_naive(url: str, path: Path) -> tuple[float, float]:
    """Whole-process wall seconds of the naive client, and its CPU microseconds per request."""
    started = time.monotonic()
    run = subprocess.run(
        [PY, str(ROOT / "bench" / "naive_client.py"), url, str(path), KEY],
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return time.monotonic() - started, float(run.stdout.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="short runs (about 1 minute)")
    parser.add_argument("--big", type=int, default=1_000_000, help="customers for memory")
    parser.add_argument("--runs", type=int, default=5, help="speed runs of each client")
    args = parser.parse_args()
    seconds = 5.0 if args.quick else 32.0
    big = 100_000 if args.quick else args.big
    rows: list[tuple[str, str, str, bool]] = []
    work = Path(tempfile.mkdtemp(prefix="member-recon-bench-"))
    try:
        for rate in (20, 100, 500):
            ratio, over = quota_precision(work, rate, seconds)
            rows.append(
                (
                    f"quota {rate} req/s for {seconds:.0f} s: achieved",
                    f"{ratio:.2%}",
                    ">= 99%",
                    ratio >= 0.99,
                )
            )
            rows.append((f"quota {rate} req/s: requests over the limit", str(over), "0", over == 0))

        small = make_input(work, 20_000)
        with sandbox() as url:
            jobs, naives = [], []
            for i in range(args.runs):
                wall, _, _ = run_job(
                    url, small, work / f"s{i}", "--rate", "100000", "--concurrency", "64", "--fresh"
                )
                jobs.append(20_000 / wall)
                naives.append(20_000 / run_naive(url, small)[0])
        ratio = statistics.median(jobs) / statistics.median(naives)
        rows.append(
            (
                "job customers/s, 20k, unthrottled (median)",
                f"{statistics.median(jobs):.0f}",
                "",
                True,
            )
        )
        rows.append(
            ("naive customers/s, 20k (median)", f"{statistics.median(naives):.0f}", "", True)
        )
        rows.append(
            ("speed ratio job / naive (both aiohttp)", f"{ratio:.2f}", ">= 0.9", ratio >= 0.9)
        )

        large = make_input(work, big)
        with sandbox() as url:
            _, rss_small, _ = run_job(
                url, small, work / "m-small", "--rate", "100000", "--concurrency", "64", "--fresh"
            )
            big_wall, rss_big, _ = run_job(
                url, large, work / "m-big", "--rate", "100000", "--concurrency", "64", "--fresh"
            )
            resume_wall, _, resumed = run_job(url, large, work / "m-big", "--rate", "100000")
        growth = rss_big / rss_small
        rows.append(
            (
                f"peak RSS 20k / {big:,} customers",
                f"{rss_small // 1024} / {rss_big // 1024} MiB",
                "",
                True,
            )
        )
        rows.append(
            (f"peak RSS growth {big:,} vs 20k", f"{growth:.2f}x", "<= 1.25x", growth <= 1.25)
        )
        rows.append((f"whole run, {big:,} customers", f"{big_wall:.0f} s", "", True))
        rows.append(
            (
                f"resume of a finished {big:,}-customer folder",
                f"{resume_wall:.1f} s, {resumed.get('requests')} requests",
                "0 requests",
                resumed.get("requests") == 0,
            )
        )

        helps = []
        for _ in range(10):
            started = time.monotonic()
            subprocess.run(
                [PY, "-m", "jobs", "--help"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL
            )
            helps.append(time.monotonic() - started)
        startup = statistics.median(helps)
        rows.append(
            ("member-recon --help (median of 10)", f"{startup:.3f} s", "<= 0.3 s", startup <= 0.3)
        )
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


if __name__ == "__main__":
    main()
