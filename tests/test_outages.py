"""Outages are visible: logged when they begin, while they last and when they end, counted in
the summary and the timeline, and a SIGTERM while one is waited out stops the run at once.

The real CLI against the sandbox (in-process, or as a process of its own for the signal).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from jobs.sandbox.server import SandboxThread
from tests.conftest import API_KEY, ROOT, CliResult, base_args, customers, job, write_csv
from tests.test_end_to_end import check_truth

OUTAGE = 3.5  # seconds the sandbox answers nginx-style 502 pages
EVERY = 1.0  # --progress-interval


@contextlib.contextmanager
def refusing_once_answered(sandbox: SandboxThread, answers: int = 4) -> Iterator[None]:
    """Nothing listens from the moment the sandbox has answered `answers` requests on.

    Refused from the start would be configuration (exit 2 at once), not an outage.
    """

    def refuse() -> None:
        deadline = time.monotonic() + 30
        while sandbox.sandbox.stats.requests < answers and time.monotonic() < deadline:
            time.sleep(0.005)
        sandbox.sandbox.start_outage("refused", 60)

    worker = threading.Thread(target=refuse, daemon=True)
    worker.start()
    try:
        yield
    finally:
        worker.join(30)


def events(stderr: str, name: str) -> list[dict[str, Any]]:
    lines = (json.loads(line) for line in stderr.splitlines() if line.startswith("{"))
    return [line for line in lines if line.get("event") == name]


def outage_lines(result: CliResult) -> tuple[list[dict[str, Any]], ...]:
    return tuple(events(result.stderr, name) for name in ("outage", "outage_continues"))


def test_an_outage_is_logged_while_it_lasts_and_counted(sandbox, tmp_path: Path) -> None:
    people = customers(300, salt="outages")
    path = write_csv(tmp_path / "in.csv", people)
    sandbox.sandbox.start_outage("html", OUTAGE, after=0.5)
    result = job(sandbox, path, tmp_path / "out", "--rate", "200", "--progress-interval", "1")
    assert result.exit_code == 0, result.stderr
    check_truth(result, [ci for ci, _ in people])
    began, lasting = outage_lines(result)
    assert len(began) == 1
    assert began[0]["cause"].startswith("HTTP 502")
    assert began[0]["since"].endswith("+00:00")
    assert began[0]["next_probe_s"] == 1.0
    assert len(lasting) >= OUTAGE // EVERY - 1  # a line a second while nothing finishes
    assert all(line["since"] == began[0]["since"] for line in lasting)
    assert [line["down_s"] for line in lasting] == sorted(line["down_s"] for line in lasting)
    (over,) = events(result.stderr, "outage_over")
    summary = result.summary()
    assert summary["error"] == 0
    assert summary["outages"] == 1
    assert 2.0 <= summary["outage_seconds"] == pytest.approx(over["down_s"], abs=0.2)
    timeline = pd.read_parquet(tmp_path / "out" / "timeline.parquet")
    assert timeline["outage_seconds"].max() == pytest.approx(summary["outage_seconds"], abs=0.2)
    assert timeline["outage_seconds"].is_monotonic_increasing


def test_an_outage_past_max_outage_is_counted_in_the_aborted_summary(sandbox, tmp_path) -> None:
    """Nothing listens any more, after the API answered: exit 3, with the outage's seconds."""
    path = write_csv(tmp_path / "in.csv", customers(40, salt="outages"))
    args = ("--max-outage", "2s", "--rate", "20", "--progress-interval", "1")
    with refusing_once_answered(sandbox):
        result = job(sandbox, path, tmp_path / "out", *args)
    assert result.exit_code == 3, result.stderr
    summary = result.summary()
    assert summary["state"] == "aborted"
    assert summary["outage_seconds"] >= 2.0  # not 0.0: the outage that ended the run counts
    began, lasting = outage_lines(result)
    assert len(began) == 1
    assert "cannot connect to 127.0.0.1:" in began[0]["cause"]
    assert lasting  # the 2 s waited out were not silent
    assert events(result.stderr, "outage_over") == []


def test_sigterm_while_an_outage_is_waited_out_stops_at_once(sandbox, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", customers(200, salt="outages"))
    out = tmp_path / "out"
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobs", *base_args(sandbox, path, out), "--rate", "50"],
            env={**os.environ, "KOSCOM_API_KEY": API_KEY},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 60
        while sandbox.sandbox.stats.requests < 20:  # the API has answered: then it goes away
            assert proc.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, "the run never began asking"
            time.sleep(0.01)
        sandbox.sandbox.start_outage("refused", 120)
        while not events(stderr.read_text(), "outage"):
            assert proc.poll() is None, stderr.read_text()
            assert time.monotonic() < deadline, "the outage never began"
            time.sleep(0.05)
        time.sleep(1.5)  # well into the wait: the probes' backoff has begun
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr.read_text()
    assert took < 4, f"{took:.1f} s"  # the 2 s, with room for a loaded machine
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["state"] == "stopped"
    assert summary["outage_seconds"] >= 1.0
    assert summary["unanswered"] > 0
    assert not (out / "reconciled.parquet").exists()
