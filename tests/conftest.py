"""Shared fixtures: a real sandbox on loopback, input files, and the CLI run in-process."""

from __future__ import annotations

import contextlib
import csv
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import stamina
from click.testing import CliRunner

from jobs.cli.main import cli
from jobs.sandbox.server import Sandbox, SandboxConfig, SandboxThread, synthetic_ci, synthetic_name

API_KEY = "test-key-7f3a9c2e51"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sandbox_thread() -> Iterator[SandboxThread]:
    server = SandboxThread(Sandbox(SandboxConfig(api_key=API_KEY))).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_thread: SandboxThread) -> SandboxThread:
    """The session's sandbox, reset to an honest, unlimited API for each test."""
    sandbox_thread.sandbox.reset(SandboxConfig(api_key=API_KEY))
    return sandbox_thread


@pytest.fixture(autouse=True)
def _no_retry_sleeps() -> Iterator[None]:
    """In-process runs retry as configured but never sleep between attempts."""
    stamina.set_testing(True, attempts=100, cap=True)
    yield
    stamina.set_testing(False)


def customers(n: int, salt: str = "t") -> list[tuple[str, str]]:
    cis = [synthetic_ci(i, salt) for i in range(n)]
    return [(ci, synthetic_name(ci)) for ci in cis]


def write_csv(
    path: Path,
    rows: Sequence[Sequence[str]],
    header: Sequence[str] = ("ci", "kor_name"),
    encoding: str = "utf-8",
) -> Path:
    opener: Any = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding=encoding, newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
    out_dir: Path

    def summary(self) -> dict[str, Any]:
        return json.loads((self.out_dir / "summary.json").read_text(encoding="utf-8"))

    def reconciled(self, ext: str = "parquet") -> pd.DataFrame:
        if ext == "csv":
            return pd.read_csv(self.out_dir / "reconciled.csv", encoding="utf-8-sig", dtype=str)
        return pd.read_parquet(self.out_dir / "reconciled.parquet")

    def accounts(self) -> pd.DataFrame:
        return pd.read_parquet(self.out_dir / "accounts.parquet")

    def rejects(self) -> pd.DataFrame:
        return pd.read_csv(self.out_dir / "rejects.csv", encoding="utf-8-sig", dtype=str)


def base_args(
    sandbox: SandboxThread | SandboxProcess, input_path: Path, out_dir: Path
) -> list[str]:
    return [
        "run",
        str(input_path),
        "--base-url",
        sandbox.base_url,
        "--com-id",
        "F0995",
        "--srv-id",
        "297",
        "--out",
        str(out_dir),
        "--rate",
        "2000",
        "--concurrency",
        "16",
        "--log-format",
        "json",
    ]


def run_cli(
    args: Sequence[str], env: dict[str, str] | None = None, out_dir: Path | None = None
) -> CliResult:
    """The real CLI, in this process (the sandbox serves from its own thread)."""
    environment = {"KOSCOM_API_KEY": API_KEY, **(env or {})}
    result = CliRunner().invoke(cli, list(args), env=environment, catch_exceptions=False)
    return CliResult(result.exit_code, result.stdout, result.stderr, out_dir or Path())


def job(
    sandbox: SandboxThread | SandboxProcess,
    input_path: Path,
    out_dir: Path,
    *extra: str,
    **env: str,
) -> CliResult:
    return run_cli([*base_args(sandbox, input_path, out_dir), *extra], env, out_dir)


@dataclass
class SandboxProcess:
    """The sandbox in a process of its own, as a real gateway is: no GIL or GC shared."""

    base_url: str

    def stats(self) -> dict[str, Any]:
        root = self.base_url.split("/v1/")[0]
        with urllib.request.urlopen(f"{root}/_sandbox/stats", timeout=10) as answer:
            return dict(json.load(answer))

    def configure(self, **changes: Any) -> None:
        """Change the running sandbox through `POST /_sandbox/configure`."""
        root = self.base_url.split("/v1/")[0]
        request = urllib.request.Request(
            f"{root}/_sandbox/configure", data=json.dumps(changes).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.load(answer) == {"ok": True}


@contextlib.contextmanager
def sandbox_process(*flags: str) -> Iterator[SandboxProcess]:
    with tempfile.TemporaryDirectory() as folder:
        ready = Path(folder) / "url"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jobs",
                "sandbox",
                "--port",
                "0",
                "--ready-file",
                str(ready),
                *flags,
            ],
            env={**os.environ, "SANDBOX_API_KEY": API_KEY},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 20
            while not (ready.exists() and ready.read_text().strip()):
                assert time.monotonic() < deadline, "sandbox process did not start"
                time.sleep(0.05)
            yield SandboxProcess(ready.read_text().strip())
        finally:
            proc.terminate()
            proc.wait(10)


def spawn(args: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """The real CLI as a separate process, for kill and signal tests."""
    environment = {**os.environ, "KOSCOM_API_KEY": API_KEY, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "jobs", *args],
        env=environment,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
