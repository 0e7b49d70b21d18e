"""What every benchmark shares: the sandbox and the job as processes, their runs and load."""

from __future__ import annotations

import json
import os
import resource
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

from jobs.sandbox.server import synthetic_ci, synthetic_name  # noqa: E402

KEY = "bench-key-0123456789"
PY = sys.executable

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


def print_table(rows: list[Row]) -> None:
    """The figures as a Markdown table: figure, value, target, ok."""
    width = max(len(r[0]) for r in rows)
    print(f"| {'figure':<{width}} | value | target | ok |")
    print(f"|{'-' * (width + 2)}|---|---|---|")
    for figure, value, target, ok in rows:
        print(f"| {figure:<{width}} | {value} | {target} | {'yes' if ok else 'NO'} |")


def median(values: list[float]) -> float:
    return statistics.median(values)
