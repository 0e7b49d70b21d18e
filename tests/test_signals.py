"""What a user notices when the job is stopped, or dies, as a process of its own.

SIGINT (Ctrl-C) gives 130 and SIGTERM (systemd, cron's timeout) 143 in every phase: reading
the input, asking, writing the outputs; each leaves a summary.json that says "stopped", and
never a reconciled file that lacks customers. A job that crashes leaves no core dump, which
would hold the API key and the CIs in flight.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import API_KEY, base_args, customers, job, spawn, write_csv
from tests.test_resume import store_meta, wait_for

BIG_ROWS = 200_000  # 100 customers, every other row a duplicate: long to read and to write
SIGNALS = [signal.SIGINT, signal.SIGTERM]


@pytest.fixture(scope="module")
def big_input(tmp_path_factory: pytest.TempPathFactory) -> Path:
    people = customers(100, salt="signals")
    folder = tmp_path_factory.mktemp("signals")
    return write_csv(folder / "big.csv", [people[i % 100] for i in range(BIG_ROWS)])


@pytest.fixture(scope="module")
def answered_folder(sandbox_thread, big_input: Path, tmp_path_factory) -> Path:
    """A folder where every customer is answered: a run there goes straight to writing."""
    out = tmp_path_factory.mktemp("signals") / "answered"
    sandbox_thread.sandbox.configure(latency=0.0, faults=())
    assert job(sandbox_thread, big_input, out, "--keep-progress").exit_code == 0  # the answers
    return out


def published(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}


def stopped(proc: subprocess.Popen[str], signum: signal.Signals, out: Path) -> dict[str, object]:
    """Send `signum`, and check what any stop leaves: the exit code, the line, the summary."""
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum, stderr
    assert (
        f"member-recon: stopped by {signum.name}; progress is saved: run the same command again"
        in stderr
    )
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert (summary["state"], summary["exit_code"]) == ("stopped", 128 + signum)
    assert signum.name in summary["reason"]
    assert not [p.name for p in out.iterdir() if ".partial-" in p.name]
    return summary


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: s.name)
def test_a_signal_while_reading_the_input(sandbox, big_input, tmp_path, signum) -> None:
    out = tmp_path / "out"
    proc = spawn(base_args(sandbox, big_input, out))
    wait_for(lambda: int(store_meta(out, "rows_ingested") or 0) >= 20_000, proc)
    summary = stopped(proc, signum, out)
    assert store_meta(out, "ingest_complete") is None  # it was stopped mid-read
    assert sandbox.sandbox.stats.requests == 0
    assert summary["unanswered"] > 0
    assert sorted(published(out)) == ["summary.json"]  # no reconciled file, no rejects either


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: s.name)
def test_a_signal_while_asking(sandbox, tmp_path, signum) -> None:
    sandbox.sandbox.configure(latency=0.05)
    out = tmp_path / "out"
    path = write_csv(tmp_path / "in.csv", customers(200, salt="signals"))
    proc = spawn([*base_args(sandbox, path, out), "--rate", "200", "--concurrency", "8"])
    wait_for(lambda: sandbox.sandbox.stats.requests >= 40, proc)
    summary = stopped(proc, signum, out)
    assert 0 < summary["answered"] < 200
    assert summary["unanswered"] == 200 - summary["answered"]
    assert sorted(published(out)) == ["summary.json"]


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: s.name)
def test_a_signal_while_writing_the_outputs(
    sandbox, big_input, answered_folder, tmp_path, signum
) -> None:
    out = tmp_path / "out"
    shutil.copytree(answered_folder, out)
    before = published(out)
    # All answered and the store kept: it goes straight to writing.
    proc = spawn([*base_args(sandbox, big_input, out), "--keep-progress"])
    wait_for(lambda: any(".partial-" in p.name for p in out.iterdir()), proc)
    summary = stopped(proc, signum, out)
    assert sandbox.sandbox.stats.requests == 0
    assert summary["unanswered"] == 0
    after = published(out)
    assert after.pop("summary.json") != before.pop("summary.json")  # it says "stopped" now
    assert after == before  # the outputs published before are whole and untouched


# --- no core dump ------------------------------------------------------------------------------

# An in-process run of the job (many tests do one) lowers this pytest process's core limits to
# 0 for good: raising them again needs CAP_SYS_RESOURCE, which root may lack (it does here).
# So a launcher is started when this module is imported, before any test runs, and keeps the
# limits pytest was started with; the processes it starts get its hard limit as their soft one.
_LAUNCHER_CODE = """
import json, resource, subprocess, sys

def allow_core_dumps():
    _, hard = resource.getrlimit(resource.RLIMIT_CORE)
    resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))

for line in sys.stdin:
    order = json.loads(line)
    child = subprocess.Popen(
        order["argv"], cwd=order["cwd"], env=order["env"], preexec_fn=allow_core_dumps,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    print(child.pid, flush=True)
    print(child.wait(), flush=True)
"""
_launcher = subprocess.Popen(
    [sys.executable, "-c", _LAUNCHER_CODE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
)
atexit.register(_launcher.communicate)  # its stdin closes: it ends


@contextlib.contextmanager
def launched(argv: list[str], cwd: Path) -> Iterator[int]:
    """Start `argv` through the launcher; yield its pid; kill it at the end."""
    assert _launcher.stdin is not None
    assert _launcher.stdout is not None
    environment = {**os.environ, "KOSCOM_API_KEY": API_KEY}
    _launcher.stdin.write(json.dumps({"argv": argv, "cwd": str(cwd), "env": environment}) + "\n")
    _launcher.stdin.flush()
    pid = int(_launcher.stdout.readline())
    try:
        yield pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _launcher.stdout.readline()  # its exit status: it is gone


def as_nobody(argv: list[str]) -> list[str]:
    """`argv` as user nobody, still able to read this checkout and write the test's folders.

    Not root, so that /proc shows whether it is dumpable: a process that is not has its
    /proc/PID/status owned by root whatever user it runs as.
    """
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("needs root and util-linux's setpriv to run the job as another user")
    caps = "+dac_override,+dac_read_search"
    ids = ["--reuid=65534", "--regid=65534", "--clear-groups"]
    return [setpriv, *ids, f"--inh-caps={caps}", f"--ambient-caps={caps}", *argv]


def process_view(pid: int) -> tuple[str, int, int]:
    """/proc/PID/limits' core line, and the owners of /proc/PID and of /proc/PID/status."""
    limits = Path(f"/proc/{pid}/limits").read_text(encoding="ascii")
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    return core, Path(f"/proc/{pid}").stat().st_uid, Path(f"/proc/{pid}/status").stat().st_uid


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder that any user can read (pytest's tmp_path is its owner's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="member-recon-shared-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_running_job_can_leave_no_core_dump(sandbox, tmp_path: Path, shared: Path) -> None:
    # The control: a plain Python process, started the same way, may dump core.
    sleeper = [sys.executable, "-c", "import time; time.sleep(30)"]
    with launched(as_nobody(sleeper), tmp_path) as pid:
        time.sleep(0.3)
        core, owner, status_owner = process_view(pid)
    assert (owner, status_owner) == (65534, 65534), "the control is not dumpable"
    if re.fullmatch(r"Max core file size +0 +0 +bytes *", core):
        pytest.skip(f"pytest was started with a hard core limit of 0: {core!r}")

    sandbox.sandbox.configure(latency=0.5)  # it stays alive, asking
    path = write_csv(shared / "in.csv", customers(50, salt="signals"))
    path.chmod(0o644)  # click checks INPUT with access(2), which heeds the real uid alone
    argv = [sys.executable, "-m", "jobs", *base_args(sandbox, path, tmp_path / "out")]
    with launched(as_nobody(argv), tmp_path) as pid:
        deadline = time.monotonic() + 30
        while sandbox.sandbox.stats.requests == 0:
            assert time.monotonic() < deadline, "the job never asked"
            time.sleep(0.01)
        core, owner, status_owner = process_view(pid)
    assert re.fullmatch(r"Max core file size +0 +0 +bytes *", core), core
    assert owner == 65534  # it runs as nobody...
    assert status_owner == 0  # ...yet /proc/PID/status is root's: it is not dumpable
