"""The progress line on a real terminal (a pseudo-terminal): it fits, and it adds up."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.conftest import API_KEY, base_args, customers, write_csv

ESCAPES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
BAR = re.compile(r"(\d+)%\|.*\| (\d+)/(\d+) cust")
STATUSES = ("linked", "non_member", "no_linked_account", "error")


def on_terminal(args: list[str], columns: int, env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal of `columns` as its terminal; all it wrote."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "jobs", *args],
        stdin=child,
        stdout=child,
        stderr=child,
        env={**os.environ, "KOSCOM_API_KEY": API_KEY, **env},
    )
    os.close(child)
    written = bytearray()
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        written += chunk
    os.close(main)
    return process.wait(timeout=120), written.decode(errors="replace")


def frames(text: str) -> list[str]:
    """Every line the terminal showed, as drawn (escapes out), in the order drawn."""
    return [f for f in re.split(r"[\r\n]", ESCAPES.sub("", text)) if f.strip()]


def counts_of(line: str) -> dict[str, int]:
    return {k: int(v.replace(",", "")) for k, v in re.findall(r"([a-z_]+) ([\d,]+)", line)}


def cli_args(sandbox, path: Path, out: Path) -> list[str]:
    args = base_args(sandbox, path, out)
    at = args.index("--log-format")
    del args[at : at + 2]  # on a terminal: text logs, and the bar
    return [*args[:-4], "--rate", "400", "--concurrency", "8"]


@pytest.mark.parametrize("columns", [80, 140])
def test_the_last_frame_fits_and_shows_the_summary_counts(
    sandbox, tmp_path: Path, columns: int
) -> None:
    path = write_csv(tmp_path / "in.csv", customers(300))
    out = tmp_path / "out"
    code, text = on_terminal(cli_args(sandbox, path, out), columns, {"TZ": "Asia/Seoul"})
    assert code == 0, text
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    shown = frames(text)
    bars = [f for f in shown if BAR.search(f)]
    statuses = [f for f in shown if f.startswith(("error ", "linked ", "no_linked", "non_member"))]
    assert bars
    assert statuses
    assert all(len(f.rstrip()) <= columns for f in bars + statuses)
    assert BAR.search(bars[-1]).groups() == ("100", "300", "300")
    last = counts_of(statuses[-1])
    assert {k: last.get(k, 0) for k in STATUSES} == {k: summary[k] for k in STATUSES}
    assert sum(last[k] for k in STATUSES if k in last) == summary["customers"]
    bar = bars[-1].split("|")[1]
    assert len(bar) >= 20  # the bar is a bar, not one character squeezed by the counts
    # Text logs on a terminal: the local time, with its zone named.
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d KST \[info", text, re.MULTILINE)


def test_a_resumed_run_counts_the_answers_it_already_had(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(120))
    out = tmp_path / "out"
    sandbox.sandbox.configure(daily_cap=60)
    paused, _ = on_terminal(cli_args(sandbox, path, out), 80, {})
    assert paused == 4
    sandbox.sandbox.configure(daily_cap=None)
    sandbox.sandbox.reset_day()
    code, text = on_terminal(cli_args(sandbox, path, out), 80, {})
    assert code == 0, text
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    shown = frames(text)
    bars = [f for f in shown if BAR.search(f)]
    assert BAR.search(bars[0]).group(3) == "120"  # the whole run, not tonight's rest
    statuses = [f for f in shown if f.startswith(("error ", "linked ", "no_linked", "non_member"))]
    last = counts_of(statuses[-1])
    assert {k: last.get(k, 0) for k in STATUSES} == {k: summary[k] for k in STATUSES}


def test_the_status_line_keeps_every_count_at_80_columns() -> None:
    from batch.run.progress_line import status_text  # noqa: PLC0415

    counts = {"linked": 559_123, "no_linked_account": 174_001, "non_member": 259_999, "error": 7}
    line = status_text(counts, {"requests": 2_000_000, "req_per_s": 9.8}, 79)
    assert len(line) <= 79
    assert all(f" {n:,}" in line for n in counts.values())
