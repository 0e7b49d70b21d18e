"""The sandbox's behaviours on the wire, seen by raw sockets and a plain aiohttp client."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import aiohttp
import orjson
import pytest

from jobs.sandbox.server import (
    BASE_PATH,
    Fault,
    Sandbox,
    SandboxConfig,
    SandboxThread,
    synthetic_ci,
)
from tests.conftest import API_KEY, sandbox_process
from tests.test_sandbox_rules import envelope

pytestmark = pytest.mark.timeout(20)
CI = synthetic_ci(0, "rules")  # a member: its true answer is a 200
OTHER = synthetic_ci(2, "rules")  # a member too


@dataclass
class Raw:
    """One HTTP answer as read off a socket."""

    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes
    raw: bytes


def request_bytes(api: str = "register/search", ci: str = CI) -> bytes:
    body = envelope(ci)
    head = (
        f"POST {BASE_PATH}/{api} HTTP/1.1\r\nHost: 127.0.0.1\r\napikey: {API_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def read_answer(stream: BinaryIO) -> Raw:
    raw = status_line = stream.readline()
    headers: dict[str, str] = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        raw += line
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = stream.read(int(headers.get("content-length", "0")))
    return Raw(int(status_line.split()[1]), headers, body, raw + b"\r\n" + body)


@contextlib.contextmanager
def connection(port: int) -> Iterator[tuple[socket.socket, BinaryIO]]:
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock, sock.makefile("rb") as f:
        yield sock, f  # both closed after: the socket stays open while its file is


def eventually(check: Callable[[], bool], within: float = 1.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "did not happen in time"
        time.sleep(0.01)


async def post(
    session: aiohttp.ClientSession, url: str, api: str = "register/search", ci: str = CI
) -> tuple[int, dict[str, str], bytes]:
    async with session.post(
        f"{url}/{api}", data=envelope(ci), headers={"apikey": API_KEY}, allow_redirects=False
    ) as answer:
        return answer.status, dict(answer.headers), await answer.read()


def test_gzip_although_the_request_accepts_no_encoding(sandbox: SandboxThread) -> None:
    sandbox.sandbox.configure(gzip=True)
    with connection(sandbox.port) as (sock, stream):
        sock.sendall(request_bytes())
        answer = read_answer(stream)
    assert answer.headers["content-encoding"] == "gzip"
    assert json.loads(gzip.decompress(answer.body))["result"] == "member"


def test_a_duplicated_answer_arrives_twice_for_one_request(sandbox: SandboxThread) -> None:
    sandbox.sandbox.configure(faults=(Fault("duplicate", 1.0),))
    with connection(sandbox.port) as (sock, stream):
        sock.sendall(request_bytes())
        first, second = read_answer(stream), read_answer(stream)
    assert first.raw == second.raw
    assert json.loads(first.body)["result"] == "member"
    assert sandbox.sandbox.stats.requests == 1


@pytest.mark.parametrize(("silently", "connection_header"), [(False, "close"), (True, None)])
def test_close_after_n_answers(
    sandbox: SandboxThread, silently: bool, connection_header: str | None
) -> None:
    sandbox.sandbox.configure(close_after=2, close_silently=silently)
    with connection(sandbox.port) as (sock, stream):
        sock.sendall(request_bytes())
        assert "connection" not in read_answer(stream).headers
        sock.sendall(request_bytes(ci=OTHER))
        last = read_answer(stream)
        assert (last.status, last.headers.get("connection")) == (200, connection_header)
        assert stream.read(1) == b""  # closed by the server
    assert sandbox.sandbox.stats.closed == 1


@pytest.mark.parametrize(
    ("kind", "status", "marker"),
    [("html", 502, b"502 Bad Gateway"), ("http503", 503, b"ring-balancer"), ("reset", 0, b"")],
)
async def test_an_outage_then_recovery(
    sandbox: SandboxThread, kind: str, status: int, marker: bytes
) -> None:
    sandbox.sandbox.start_outage(kind, 0.5)
    async with aiohttp.ClientSession() as session:
        if kind == "reset":
            with pytest.raises(aiohttp.ClientConnectionError):
                await post(session, sandbox.base_url)
        else:
            got, _, body = await post(session, sandbox.base_url)
            assert got == status
            assert marker in body
        await asyncio.sleep(0.55)
        assert (await post(session, sandbox.base_url))[0] == 200
    assert sandbox.sandbox.stats.in_outage == 1


def test_a_refused_outage_stops_listening_then_listens_again(sandbox: SandboxThread) -> None:
    port = sandbox.port
    with connection(port) as (kept, stream):
        kept.sendall(request_bytes())
        assert read_answer(stream).status == 200
        sandbox.sandbox.start_outage("refused", 0.8)

        def refused() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except ConnectionRefusedError:
                return True
            return False

        eventually(refused, within=0.5)
        kept.sendall(request_bytes())  # a kept-alive connection is dropped, not answered
        with contextlib.suppress(ConnectionResetError):
            assert stream.read(1) == b""
    eventually(lambda: not refused(), within=1.5)
    with connection(port) as (sock, stream):
        sock.sendall(request_bytes())
        assert read_answer(stream).status == 200
    assert sandbox.sandbox.stats.in_outage == 1


async def test_kong_limit_headers_on_every_answer(sandbox: SandboxThread) -> None:
    sandbox.sandbox.configure(rate_limit=3, minute_limit=100, limit_headers=True)
    async with aiohttp.ClientSession() as session:
        answers = [await post(session, sandbox.base_url) for _ in range(4)]
    assert [status for status, _, _ in answers] == [200, 200, 200, 429]
    assert [h["X-RateLimit-Remaining-Second"] for _, h, _ in answers] == ["2", "1", "0", "0"]
    assert [h["X-RateLimit-Remaining-Minute"] for _, h, _ in answers] == ["99", "98", "97", "97"]
    for _, headers, _ in answers:
        assert headers["X-RateLimit-Limit-Second"] == "3"
        assert headers["X-RateLimit-Limit-Minute"] == "100"
        assert (headers["RateLimit-Limit"], headers["RateLimit-Reset"]) == ("3", "1")
    assert answers[-1][1]["Retry-After"] == "1"
    assert sandbox.sandbox.stats.over_limit == 1


@pytest.mark.parametrize(
    ("kind", "api", "status", "expected"),
    [
        ("unknown_shape", "consent/search", 200, b'{"data":[]}'),
        ("redirect", "register/search", 302, b"302 Found"),
        ("notjson", "register/search", 200, b"OK"),
    ],
)
async def test_unknown_answers(
    sandbox: SandboxThread, kind: str, api: str, status: int, expected: bytes
) -> None:
    sandbox.sandbox.configure(faults=(Fault(kind, 1.0),))
    async with aiohttp.ClientSession() as session:
        got, headers, body = await post(session, sandbox.base_url, api)
    assert got == status
    assert expected in body
    if kind == "redirect":
        assert headers["Location"] == f"{BASE_PATH}/{api}"


def test_endless_headers_stop_when_the_client_goes_away(sandbox: SandboxThread) -> None:
    stats = sandbox.sandbox.stats
    sandbox.sandbox.configure(faults=(Fault("endless_headers", 1.0, cis=frozenset({CI})),))
    with connection(sandbox.port) as (sock, stream):
        sock.sendall(request_bytes())
        start = stream.read(512 * 1024)
        assert start.startswith(b"HTTP/1.1 200 OK\r\nX-Padding-00: ")
        assert b"\r\n\r\n" not in start
        with connection(sandbox.port) as (other, answers):  # the server still answers others
            other.sendall(request_bytes(ci=OTHER))
            assert read_answer(answers).status == 200
        assert stats.streaming == 1
    eventually(lambda: stats.streaming == 0)
    assert stats.streamed_bytes < 16 * 2**20  # far from the 64 MiB it would have sent


async def test_a_huge_body_is_streamed_until_the_client_leaves(sandbox: SandboxThread) -> None:
    stats = sandbox.sandbox.stats
    sandbox.sandbox.configure(faults=(Fault("huge_body", 1.0),))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{sandbox.base_url}/register/search", data=envelope(), headers={"apikey": API_KEY}
        ) as answer,
    ):
        assert (answer.status, answer.content_length) == (200, 50 * 2**20)
        assert (await answer.content.readexactly(2**20)).startswith(b'{"result": "member"')
    for _ in range(100):
        if stats.streaming == 0:
            break
        await asyncio.sleep(0.01)
    assert stats.streaming == 0
    assert stats.streamed_bytes < 40 * 2**20


async def test_the_control_endpoints(sandbox: SandboxThread) -> None:
    root = sandbox.base_url.removesuffix(BASE_PATH)
    async with aiohttp.ClientSession() as session:
        changes = {"gzip": True, "faults": ["unknown_shape:1"], "close_after": 5}
        async with session.post(f"{root}/_sandbox/configure", json=changes) as answer:
            assert answer.status == 200
        status, headers, body = await post(session, sandbox.base_url)
        assert (status, headers["Content-Encoding"], body) == (200, "gzip", b'{"data":[]}')
        async with session.post(f"{root}/_sandbox/configure", json={"api_key": "x"}) as answer:
            assert answer.status == 400
            assert "cannot set api_key" in (await answer.json())["error"]
        outage = f"{root}/_sandbox/outage?seconds=5&kind=http503"
        async with session.post(outage) as answer:
            assert answer.status == 200
        assert (await post(session, sandbox.base_url))[0] == 503
        async with session.get(f"{root}/_sandbox/stats") as answer:
            assert (await answer.json())["in_outage"] == 1
        async with session.post(f"{root}/_sandbox/outage?kind=http503") as answer:
            assert answer.status == 400  # no seconds
    assert sandbox.sandbox.config.faults == (Fault("unknown_shape", 1.0),)


def test_the_cli_flags_and_the_control_endpoint_of_a_sandbox_process() -> None:
    flags = ("--outage", "html:60", "--gzip", "--close-after", "1", "--limit-headers")
    with sandbox_process(*flags, "--rate-limit", "50", "--fault", "duplicate:1") as gateway:
        port = int(gateway.base_url.split(":")[2].split("/")[0])
        with connection(port) as (sock, stream):
            sock.sendall(request_bytes())
            answer = read_answer(stream)
            assert answer.status == 502  # nginx's page, gzipped as everything else
            assert b"502 Bad Gateway" in gzip.decompress(answer.body)
        gateway.configure(outage=None)
        with connection(port) as (sock, stream):
            sock.sendall(request_bytes())
            first, second = read_answer(stream), read_answer(stream)
            assert first.raw == second.raw
            assert (first.status, first.headers["connection"]) == (200, "close")
            assert first.headers["x-ratelimit-limit-second"] == "50"
            assert orjson.loads(gzip.decompress(first.body))["result"] == "member"
        assert gateway.stats()["in_outage"] == 1


def test_a_stopped_thread_frees_its_port() -> None:
    server = SandboxThread(Sandbox(SandboxConfig(api_key=API_KEY))).start()
    port = server.port
    with connection(port) as (sock, stream):
        sock.sendall(request_bytes())
        assert read_answer(stream).status == 200
    server.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
