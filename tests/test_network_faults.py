"""What a user notices when the API's server misbehaves: the job against sandbox faults, end to end.

The real CLI, in-process against the session's sandbox thread (fast) or against a sandbox in
a process of its own where timing matters; and a few checks of the HTTP transport alone
against a raw server, where the exact bytes on the wire are the point.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Self

import orjson
import pandas as pd
import pytest

from batch.http.transport import HttpTransport, TransportSettings
from jobs.sandbox.server import Fault
from tests.conftest import API_KEY, ROOT, base_args, customers, job, write_csv
from tests.test_end_to_end import check_truth, expected
from tests.test_outages import refusing_once_answered

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


@pytest.fixture(autouse=True)
def _no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback servers only: a proxy set in the shell that runs the tests must not take part."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


# --- an answer sent twice, on the wire ------------------------------------------------------


class TwiceServer:
    """Answers request k with {"seq": k}; its very first answer goes out twice.

    `gap` None writes both copies at once (they arrive in one read); a number of seconds
    writes the copy that much later, while the connection sits idle in the client's pool.
    """

    def __init__(self, gap: float | None) -> None:
        self.gap = gap
        self.seq = 0
        self.connections = 0
        self._server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                self.seq += 1
                first = self.seq == 1
                body = orjson.dumps({"seq": self.seq})
                answer = (
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
                if first and self.gap is None:
                    writer.write(answer + answer)
                else:
                    writer.write(answer)
                if first and self.gap is not None:
                    await asyncio.sleep(self.gap)
                    writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def transport_to() -> AsyncIterator[Callable[[str], Awaitable[HttpTransport]]]:
    opened: list[HttpTransport] = []

    async def open_transport(base_url: str) -> HttpTransport:
        transport = HttpTransport(TransportSettings(base_url=base_url, headers={}, connections=1))
        await transport.__aenter__()
        opened.append(transport)
        return transport

    yield open_transport
    for transport in opened:
        await transport.__aexit__(None, None, None)


@pytest.mark.parametrize("gap", [None, 0.02], ids=["in-the-same-read", "while-idle"])
async def test_an_answer_sent_twice_is_never_read_as_the_next_one_and_is_counted(
    transport_to, gap: float | None
) -> None:
    async with TwiceServer(gap) as server:
        transport = await transport_to(server.base_url)
        first = await transport.post("search", b"{}")
        await asyncio.sleep(0.2)  # the second copy, if it comes late, has arrived by now
        second = await transport.post("search", b"{}")
        third = await transport.post("search", b"{}")
    assert [orjson.loads(a.body) for a in (first, second, third)] == [
        {"seq": 1},
        {"seq": 2},  # not the copy of answer 1 that waited on the first connection
        {"seq": 3},
    ]
    assert transport.unsolicited_answers == 1  # the summary's unsolicited_answers
    # The connection that carried the copy was closed, and none is reused after it: a
    # gateway that repeats answers makes any reused connection a place to misread one.
    assert server.connections == 3


# --- the job against the sandbox's faults ----------------------------------------------------


@pytest.fixture
def people(tmp_path: Path) -> tuple[Path, list[str]]:
    rows = customers(40, salt="faults")
    return write_csv(tmp_path / "in.csv", rows), [ci for ci, _ in rows]


def test_answers_gzipped_whatever_was_asked_give_exact_outputs(sandbox, people, tmp_path) -> None:
    sandbox.sandbox.configure(gzip=True)
    path, cis = people
    result = job(sandbox, path, tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    check_truth(result, cis)


def test_connections_closed_silently_lose_no_row(sandbox, tmp_path) -> None:
    """tinyproxy's way: a connection closed after 3 answers, no `Connection: close` said."""
    people = customers(100, salt="faults")
    sandbox.sandbox.configure(close_after=3, close_silently=True)
    result = job(sandbox, write_csv(tmp_path / "in.csv", people), tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    check_truth(result, [ci for ci, _ in people])
    summary = result.summary()
    assert sandbox.sandbox.stats.closed >= 200 // 3 - 16  # the server did close them
    assert summary["error"] == 0
    # A connection closed without a word is found out by the next request on it, which
    # goes again at once on another: 1-2 retries in 200 here, where backing off each paid
    # 10-20% (and the hand-written client of old up to 50%).
    assert summary["retries"] <= 0.05 * summary["requests"]


def test_answers_sent_twice_are_never_read_as_another_customers(sandbox, people, tmp_path) -> None:
    """A gateway that repeats an answer on the connection: the copy is dropped, and counted."""
    sandbox.sandbox.configure(faults=(Fault("duplicate", 0.3),))
    path, cis = people
    # One connection, requests 20 ms apart: each copy has arrived before the next request.
    result = job(sandbox, path, tmp_path / "out", "--concurrency", "1", "--rate", "50")
    assert result.exit_code == 0, result.stderr
    check_truth(result, cis)
    duplicated = sandbox.sandbox.stats.faults["duplicate"]
    assert duplicated > 10
    # Counted until the first: after it no connection is reused, and a copy that comes
    # after its connection was let go is never read by anyone.
    assert 1 <= result.summary()["unsolicited_answers"] <= duplicated


def test_a_limit_the_gateway_states_is_kept_from_its_first_answers(sandbox, tmp_path) -> None:
    people = customers(60, salt="faults")
    sandbox.sandbox.configure(rate_limit=50, limit_headers=True)
    result = job(sandbox, write_csv(tmp_path / "in.csv", people), tmp_path / "out", "--rate", "200")
    assert result.exit_code == 0, result.stderr
    check_truth(result, [ci for ci, _ in people])
    assert sandbox.sandbox.stats.over_limit <= 2
    assert result.summary()["http_429"] <= 2


def test_a_short_outage_is_waited_out(sandbox, tmp_path) -> None:
    people = customers(200, salt="faults")
    path = write_csv(tmp_path / "in.csv", people)
    sandbox.sandbox.start_outage("html", 2.5, after=0.5)
    result = job(sandbox, path, tmp_path / "out", "--rate", "200")
    assert result.exit_code == 0, result.stderr
    check_truth(result, [ci for ci, _ in people])
    summary = result.summary()
    stats = sandbox.sandbox.stats
    assert summary["error"] == 0
    assert summary["outages"] >= 1
    # Into the outage went the 5 failures that opened the circuit, what else was in flight
    # then, and the probes: far from what 16 workers at 200 r/s would have sent.
    assert 5 <= stats.in_outage <= 16 + 4


def test_an_outage_longer_than_max_outage_stops_with_a_summary(sandbox, people, tmp_path) -> None:
    """Nothing listens any more: exit 3 after --max-outage, and few requests sent meanwhile.

    The API answered first: a port refused from the start is configuration (exit 2 at once).
    """
    path, _ = people
    out = tmp_path / "out"
    with refusing_once_answered(sandbox):
        # 16 workers, each with both questions waiting for their turn at 20 r/s.
        result = job(sandbox, path, out, "--max-outage", "2s", "--rate", "20")
    assert result.exit_code == 3
    assert "member-recon: the API has been down for " in result.stderr
    summary = result.summary()
    assert summary["state"] == "aborted"
    assert "longer than the 2 s allowed (last: cannot connect to 127.0.0.1" in summary["reason"]
    assert summary["unanswered"] > 20
    assert summary["outages"] == 1
    # The 5 failures that opened the circuit, and a probe; not the questions in the queue.
    assert summary["requests"] - sandbox.sandbox.stats.requests <= 8
    assert not (out / "reconciled.parquet").exists()


def test_a_few_customers_that_always_fail_end_in_error_not_in_an_outage(sandbox, tmp_path) -> None:
    # The last ones, asked when no one else is left: the circuit opens on them, and its
    # probe (the last request answered) shows the API is up, so they spend their attempts.
    people = customers(20, salt="faults")
    failing = frozenset(ci for ci, _ in people[-4:])
    sandbox.sandbox.configure(faults=(Fault("http500", first_attempts=99, cis=failing),))
    out = tmp_path / "out"
    path = write_csv(tmp_path / "in.csv", people)
    result = job(sandbox, path, out, "--max-outage", "3s", "--attempts", "3")
    assert result.exit_code == 1, result.stderr  # done; 4 of 20 in error is over 5%
    frame = result.reconciled().set_index("ci")
    assert set(frame.index[frame["status"] == "error"]) == failing


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            Fault("redirect", 1.0),
            r"(register|consent)/search: HTTP 302 redirect; check the API's base URL",
        ),
        (
            Fault("unknown_shape", 1.0, api="consent/search"),
            "consent/search: answered without vtAccList",
        ),
    ],
    ids=["redirect", "unknown_shape"],
)
def test_answers_the_job_cannot_use_stop_it_early(sandbox, tmp_path, fault: Fault, message) -> None:
    sandbox.sandbox.configure(faults=(fault,))
    out = tmp_path / "out"
    result = job(sandbox, write_csv(tmp_path / "in.csv", customers(500)), out)
    assert result.exit_code == 3
    assert re.search(message, result.stderr), result.stderr
    assert "the API may have changed: stopping before the quota burns" in result.stderr
    assert sandbox.sandbox.stats.requests <= 100
    assert result.summary()["state"] == "aborted"
    assert not (out / "reconciled.parquet").exists()


def _high_water(pid: int) -> int:
    """VmHWM of a live process in bytes (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, flags=re.MULTILINE)
    return int(found.group(1)) * 1024 if found else 0


def run_process(args: list[str], folder: Path, timeout: float) -> tuple[int, str, int]:
    """The CLI as a process of its own: exit code, stderr, and its peak memory in bytes."""
    stderr = folder / "stderr.txt"
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobs", *args],
            env={**os.environ, "KOSCOM_API_KEY": API_KEY},
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    deadline = time.monotonic() + timeout
    peak = 0
    while True:
        # Its own memory's high-water mark: wait4's ru_maxrss would also hold this test
        # process's size at the fork, which Linux carries across exec.
        peak = max(peak, _high_water(proc.pid))
        pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, stderr.read_text(), peak
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"the run hung: {stderr.read_text()[-2000:]}")
        time.sleep(0.05)


def test_endless_headers_and_huge_bodies_fail_their_customers_only(sandbox, tmp_path) -> None:
    people = customers(40, salt="faults")
    # Two customers: fewer than the three whose failures alone would look like an outage.
    endless = frozenset({people[5][0]})
    huge = frozenset({people[25][0]})
    sandbox.sandbox.configure(
        faults=(
            Fault("endless_headers", first_attempts=99, cis=endless),
            Fault("huge_body", first_attempts=99, cis=huge),
        ),
        endless_headers_bytes=512 * 2**20,  # read whole, either would take gigabytes
        huge_body_bytes=512 * 2**20,
    )
    out = tmp_path / "out"
    path = write_csv(tmp_path / "in.csv", people)
    args = [*base_args(sandbox, path, out), "--attempts", "2", "--max-error-rate", "0.2"]
    code, stderr, peak = run_process(args, tmp_path, timeout=60)
    assert code == 0, stderr
    frame = pd.read_parquet(out / "reconciled.parquet").set_index("ci")
    reasons = frame["error"].dropna().to_dict()
    assert set(reasons) == endless | huge  # no other row is affected...
    not_http = r"register/search: an answer that is not valid HTTP \(.+\) after 2 attempts; .+"
    too_big = r"register/search: an answer of \d+ bytes, over 1048576 after 2 attempts; .+"
    assert all(re.fullmatch(not_http, reasons[ci]) for ci in endless), reasons
    assert all(re.fullmatch(too_big, reasons[ci]) for ci in huge), reasons
    for ci, row in frame.drop(index=sorted(endless | huge)).iterrows():
        assert (row.membership, row.linked_accounts, row.status, row.next_action) == expected(ci)
    stats = sandbox.sandbox.stats
    # 8 hostile answers of 512 MiB each: the job hung up on every one long before its end...
    assert stats.streamed_bytes < 256 * 2**20
    assert 50 * 2**20 < peak < 400 * 2**20  # ...and its memory stayed what a run takes (~150 MiB)
