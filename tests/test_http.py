"""The job's HTTP/1.1 client against scripted servers on loopback: framing, reuse, faults."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import trustme

from batch.errors import ConnectionFailure, RequestTimeout
from batch.http import MAX_BODY, HttpPool

HEADERS = {"apikey": "test-key", "Content-Type": "application/json"}
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

# What the server does with one request: write bytes back (or not) and say whether to
# keep the connection open for the next request.
Reply = Callable[[asyncio.StreamWriter], Awaitable[bool]]


@dataclass
class Seen:
    """What the scripted server saw."""

    connections: int = 0
    requests: list[tuple[bytes, dict[str, str], bytes]] = field(default_factory=list)


def send(data: bytes, *, keep: bool = True) -> Reply:
    async def reply(writer: asyncio.StreamWriter) -> bool:
        writer.write(data)
        await writer.drain()
        return keep

    return reply


def silence() -> Reply:
    async def reply(_: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(30)
        return False

    return reply


@asynccontextmanager
async def scripted(
    *replies: Reply, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[str, Seen]]:
    """A server answering its n-th request (over all connections) with `replies[n]`."""
    seen = Seen()
    script = list(replies)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.connections += 1
        try:
            while script:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *lines = head.decode("latin-1").split("\r\n")
                headers = dict(h.split(": ", 1) for h in lines if h)
                body = await reader.readexactly(int(headers.get("Content-Length", "0")))
                seen.requests.append((line.encode(), headers, body))
                if not await script.pop(0)(writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}/v1/common/member", seen
    finally:
        server.close()


async def test_the_request_carries_path_headers_and_body_and_one_connection_serves_many() -> None:
    async with (
        scripted(send(OK), send(OK), send(OK)) as (url, seen),
        HttpPool(url, HEADERS, timeout=5) as pool,
    ):
        for n in range(3):
            answer = await pool.post("register/search", b'{"n":%d}' % n)
            assert (answer.status, answer.body) == (200, b"{}")
            assert answer.headers["content-type"] == "application/json"
    assert seen.connections == 1
    line, headers, body = seen.requests[2]
    assert line == b"POST /v1/common/member/register/search HTTP/1.1"
    assert headers["apikey"] == "test-key"
    assert headers["Host"] == url.split("/")[2]
    assert body == b'{"n":2}'


async def test_chunked_and_until_close_answers_arrive_whole() -> None:
    chunked = (
        b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"6\r\n<html>\r\n7\r\n</html>\r\n0\r\n\r\n"
    )
    until_close = b"HTTP/1.1 500 Internal Server Error\r\n\r\nInternal Server Error"
    replies = (send(chunked), send(until_close, keep=False), send(OK))
    async with scripted(*replies) as (url, seen), HttpPool(url, HEADERS, timeout=5) as pool:
        first = await pool.post("a", b"{}")
        second = await pool.post("a", b"{}")
        third = await pool.post("a", b"{}")
    assert (first.status, first.body) == (502, b"<html></html>")
    assert (second.status, second.body) == (500, b"Internal Server Error")
    assert third.status == 200
    assert seen.connections == 2  # the answer that ended with its connection ended its use


async def test_an_interim_100_continue_is_skipped_for_the_answer_after_it() -> None:
    replies = (send(b"HTTP/1.1 100 Continue\r\n\r\n" + OK), send(OK))
    async with scripted(*replies) as (url, seen), HttpPool(url, HEADERS, timeout=5) as pool:
        first = await pool.post("a", b"{}")
        second = await pool.post("a", b"{}")
    assert (first.status, first.body, second.status) == (200, b"{}", 200)
    assert seen.connections == 1


async def test_connection_close_and_a_server_that_hangs_up_when_idle_cost_no_request() -> None:
    closing = OK.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    replies = (send(closing), send(OK, keep=False), send(OK))
    async with scripted(*replies) as (url, seen), HttpPool(url, HEADERS, timeout=5) as pool:
        statuses = [(await pool.post("a", b"{}")).status]
        statuses.append((await pool.post("a", b"{}")).status)
        await asyncio.sleep(0.05)  # the server's FIN arrives while the connection is idle
        statuses.append((await pool.post("a", b"{}")).status)
    assert statuses == [200, 200, 200]
    assert seen.connections == 3


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (send(OK[:-1] + b"", keep=False), "connection lost"),  # one byte short, then closed
        (send(b"SSH-2.0-OpenSSH_9.2\r\n", keep=False), "not an HTTP answer"),
        (
            send(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1)
                + b"x" * (MAX_BODY + 1)
            ),
            "longer than",
        ),
    ],
    ids=["truncated", "not-http", "too-long"],
)
async def test_a_broken_answer_is_a_connection_error_and_its_connection_is_not_reused(
    reply: Reply, reason: str
) -> None:
    async with scripted(reply, send(OK)) as (url, seen), HttpPool(url, HEADERS, timeout=5) as pool:
        with pytest.raises(ConnectionFailure, match=reason):
            await pool.post("a", b"{}")
        assert (await pool.post("a", b"{}")).status == 200
    assert seen.connections == 2


async def test_no_answer_times_out_near_the_deadline_and_the_next_request_starts_afresh() -> None:
    async with (
        scripted(silence(), send(OK)) as (url, seen),
        HttpPool(url, HEADERS, timeout=0.3) as pool,
    ):
        started = time.monotonic()
        with pytest.raises(RequestTimeout):
            await pool.post("a", b"{}")
        waited = time.monotonic() - started
        assert (await pool.post("a", b"{}")).status == 200
    assert 0.3 <= waited < 2
    assert seen.connections == 2


async def test_each_of_many_requests_in_flight_times_out_on_its_own() -> None:
    async with (
        scripted(*(silence() for _ in range(5))) as (url, _),
        HttpPool(url, HEADERS, timeout=0.3) as pool,
    ):
        results = await asyncio.gather(
            *(pool.post("a", b"{}") for _ in range(5)), return_exceptions=True
        )
    assert all(isinstance(result, RequestTimeout) for result in results)


async def test_a_refused_connection_is_a_connection_error() -> None:
    server = await asyncio.start_server(lambda *_: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    async with HttpPool(f"http://127.0.0.1:{port}/v1", HEADERS, timeout=2) as pool:
        with pytest.raises(ConnectionFailure, match="cannot connect"):
            await pool.post("a", b"{}")


@pytest.mark.parametrize(
    "headers", [{"apikey": "key\r\nX-Evil: 1"}, {"bad:name": "x"}, {"apikey": "a\nb"}]
)
def test_a_header_that_would_split_the_request_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="split"):
        HttpPool("http://127.0.0.1:1/v1", headers, timeout=1)


async def test_tls_verifies_the_server_and_carries_the_exchange() -> None:
    ca = trustme.CA()
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_side)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    async with scripted(send(OK), tls=server_side) as (url, seen):
        async with HttpPool(url, HEADERS, timeout=5) as pool:  # the system's CAs only
            with pytest.raises(ConnectionFailure, match="SSLCertVerificationError"):
                await pool.post("a", b"{}")
        async with HttpPool(url, HEADERS, timeout=5, ssl_context=trusting) as pool:
            answer = await pool.post("a", b'{"tls":1}')
    assert answer.status == 200
    assert seen.requests[-1][2] == b'{"tls":1}'
