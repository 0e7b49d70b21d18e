"""Where the job's CPU goes: one run under py-spy, summed by phase and function.

`make profile` (or `bench/profile.py --customers N --rate R`; unthrottled by default, and
`--rate 500` shows the cost of pacing at a real quota). py-spy samples the job's
process from outside (it needs ptrace, which root and most CI runners have); the
sandbox runs as a separate process, as in `make bench`. Samples of the store
thread waiting for work are left out: they are idle, not cost.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import KEY, PY, ROOT, job_command, make_input, sandbox

# The job's steps by function name, not line: jobs/job.py moves under refactoring.
PHASES = {
    "_ingest (jobs/job.py": "ingest",
    "_ask_open_customers (jobs/job.py": "ask",
    "_export (jobs/job.py": "export",
}
IDLE = "_worker (concurrent/futures/thread.py:81)"  # a pool thread waiting for work


def phase_of(frames: list[str]) -> str:
    for frame in frames:
        for prefix, phase in PHASES.items():
            if frame.startswith(prefix):
                return phase
    if any(frame.startswith("run (jobs/job.py") for frame in frames):
        return "other job steps"
    if any("_find_and_load" in frame for frame in frames):
        return "imports"
    return "start-up and exit"


def own_frame(frames: list[str]) -> str:
    """The innermost frame in the project's code: what the project can change."""
    for frame in reversed(frames):
        if "(batch/" in frame or "(jobs/" in frame:
            return frame
    return "outside the project: " + frames[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--rate", type=int, default=100_000, help="--rate of the job (default: unthrottled)"
    )
    args = parser.parse_args()
    spy = shutil.which("py-spy", path=str(Path(PY).parent)) or shutil.which("py-spy")
    if spy is None:
        sys.exit("py-spy is not installed: make profile installs it with the dev extras")
    work = Path(tempfile.mkdtemp(prefix="member-recon-profile-"))
    try:
        path = make_input(work, args.customers)
        raw = work / "samples.txt"
        with sandbox() as url:
            job = job_command(
                url, path, work / "out", "--rate", str(args.rate), "--concurrency", "64"
            )
            subprocess.run(
                [
                    spy,
                    "record",
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                    "--",
                    *job,
                ],
                env={**os.environ, "KOSCOM_API_KEY": KEY},
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        phases: collections.Counter[str] = collections.Counter()
        frames_by_cost: collections.Counter[str] = collections.Counter()
        leaves: collections.Counter[str] = collections.Counter()
        total = 0
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            if frames[-1] == IDLE:
                continue
            total += int(count)
            phases[phase_of(frames)] += int(count)
            frames_by_cost[own_frame(frames)] += int(count)
            leaves[frames[-1]] += int(count)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{args.customers:,} customers at --rate {args.rate}, {total} busy samples at 250 Hz")
    print("\nby phase:")
    for name, count in phases.most_common():
        print(f"  {count / total:6.1%}  {name}")
    print(f"\nby the innermost project frame (top {args.top}):")
    for frame, count in frames_by_cost.most_common(args.top):
        print(f"  {count / total:6.1%}  {frame}")
    # The event loop's own C code (uvloop, sockets, thread wake-ups) shows as its Python
    # caller, `Runner.run`: no Python frame of its own.
    print(f"\nby the innermost frame of any code (top {args.top}):")
    for frame, count in leaves.most_common(args.top):
        print(f"  {count / total:6.1%}  {frame}")


if __name__ == "__main__":
    main()
