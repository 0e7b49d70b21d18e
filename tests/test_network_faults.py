"""What a user notices when the API's server misbehaves: the job against sandbox faults, end to end.

The real CLI, in-process against the session's sandbox thread (fast) or against a sandbox in
a process of its own where timing matters; and a few checks of the HTTP transport alone
against a raw server, where the exact bytes on the wire are the point.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Self

import orjson
import pytest

from batch.transport import HttpTransport, TransportSettings
from tests.conftest import customers, job, write_csv

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
    assert server.connections == 2  # the connection that carried the copy was closed


# --- the job against the sandbox's faults ----------------------------------------------------


@pytest.fixture
def people(tmp_path: Path) -> tuple[Path, list[str]]:
    rows = customers(40, salt="faults")
    return write_csv(tmp_path / "in.csv", rows), [ci for ci, _ in rows]


def test_an_outage_longer_than_max_outage_stops_with_a_summary(sandbox, people, tmp_path) -> None:
    """Nothing listens any more: exit 3 after --max-outage, and few requests sent meanwhile."""
    sandbox.sandbox.start_outage("refused", 60, after=0.0)
    path, _ = people
    out = tmp_path / "out"
    # 16 workers, each with both questions waiting for their turn at 20 r/s.
    result = job(sandbox, path, out, "--max-outage", "2s", "--rate", "20")
    assert result.exit_code == 3
    assert "member-recon: the API has been down for " in result.stderr
    summary = result.summary()
    assert summary["state"] == "aborted"
    assert "longer than the 2 s allowed (last: cannot connect to 127.0.0.1" in summary["reason"]
    assert summary["unanswered"] == 40
    assert summary["outages"] == 1
    # The 5 failures that opened the circuit, and a probe; not the 32 questions in the queue.
    assert summary["requests"] <= 8
    assert not (out / "reconciled.parquet").exists()
