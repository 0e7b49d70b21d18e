"""A keep-alive HTTP/1.1 client that POSTs small bodies to one origin: the asking hot path.

Why not aiohttp's ClientSession here: on the benchmark machine it spent 1.8 times the
CPU per request of this module (`make bench` measures both), and with a generous quota the client's
CPU is what bounds a whole run. This module does only what a JSON API over one origin
needs: POST with Content-Length; answers framed by Content-Length, chunks or the end of
the connection (parsed by httptools, the llhttp binding uvicorn uses); keep-alive reuse;
TLS through the event loop; one deadline per request that covers connect, send and answer.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Self, cast
from urllib.parse import urlsplit

import httptools

from batch.errors import ConnectionFailure, RequestTimeout

# Past this, an idle connection is closed rather than reused: servers and gateways drop
# idle keep-alive connections (nginx after 75 s), and a request sent into one they are
# closing dies with a reset it did not deserve. aiohttp's default is the same 15 s.
IDLE_SECONDS = 15.0
MAX_BODY = 1 << 20  # an API answer is a few hundred bytes; anything this big is broken
# Deadlines are checked by one timer this often (at most), not by a timer per request:
# a timeout fires up to this much late, and a request costs no timer of its own.
SWEEP_SECONDS = 0.25


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """One answer: header names are lower-case (HTTP names are case-insensitive)."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection, carrying one request at a time."""

    __slots__ = (
        "_answer",
        "_body",
        "_headers",
        "_parser",
        "_size",
        "_status",
        "closed",
        "deadline",
        "idle_since",
        "transport",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.deadline = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[HttpResponse] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._status = 0
        self._size = 0

    def send(self, data: bytes) -> asyncio.Future[HttpResponse]:
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self._headers, self._body, self._status, self._size = {}, [], 0, 0
        self.transport.write(data)
        return self._answer

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def time_out(self, timeout: float) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(RequestTimeout(f"no answer within {timeout:g} s"))
        self.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance here.
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        if self._answer is None:  # bytes nobody asked for: the stream is out of step
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionFailure(f"not an HTTP answer ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._answer is None or self._answer.done():
            return
        # An answer with neither length nor chunks ends where the connection does.
        framed = "content-length" in self._headers or "transfer-encoding" in self._headers
        if self._status and not framed:
            self._deliver()
            return
        reason = type(exc).__name__ if exc else "closed by the server"
        self._fail(ConnectionFailure(f"connection lost before the whole answer ({reason})"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._size += len(body)
        if self._size > MAX_BODY:
            self._fail(ConnectionFailure(f"answer longer than {MAX_BODY} bytes"))

    def on_message_complete(self) -> None:
        if 100 <= self._status < 200:  # an interim answer (100 Continue): the real one follows
            self._headers, self._body, self._status, self._size = {}, [], 0, 0
            return
        if not self._parser.should_keep_alive():
            self.closed = True  # the server said close: deliver, then never reuse
        self._deliver()

    def _deliver(self) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_result(HttpResponse(self._status, self._headers, b"".join(self._body)))

    def _fail(self, exc: ConnectionFailure) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.set_exception(exc)
        self.close()


class HttpPool:
    """POSTs to one origin over reused connections; the caller bounds how many at once.

    `post` raises `RequestTimeout` past `timeout` seconds and `ConnectionFailure` when no
    whole answer came (both retryable, see batch/errors.py); either way that connection
    is dropped, never reused.
    """

    __slots__ = (
        "_busy",
        "_heads",
        "_heads_template",
        "_host",
        "_idle",
        "_port",
        "_prefix",
        "_ssl",
        "_sweeper",
        "_timeout",
    )

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        for name, value in headers.items():
            if any(c in name + value for c in "\r\n\0") or ":" in name:
                raise ValueError(f"header {name!r} holds a character that would split it")
        self._host = url.hostname
        self._port = url.port or (443 if url.scheme == "https" else 80)
        self._ssl = (ssl_context or ssl.create_default_context()) if url.scheme == "https" else None
        default_port = self._port == (443 if url.scheme == "https" else 80)
        host = url.hostname if default_port else f"{url.hostname}:{self._port}"
        if ":" in url.hostname:  # an IPv6 literal goes back into brackets
            host = f"[{url.hostname}]" if default_port else f"[{url.hostname}]:{self._port}"
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._prefix = url.path.rstrip("/")
        self._heads: dict[str, bytes] = {}
        self._heads_template = f"HTTP/1.1\r\nHost: {host}\r\n{lines}Content-Length: "
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()
        self._sweeper: asyncio.TimerHandle | None = None
        self._timeout = timeout

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Drop every connection; requests still waiting fail with ConnectionFailure."""
        for connection in (*self._idle, *self._busy):
            connection.close()
        self._idle.clear()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    async def post(self, path: str, body: bytes) -> HttpResponse:
        """POST `body` to `path` under the base URL; the deadline covers the whole exchange."""
        head = self._heads.get(path)
        if head is None:
            head = self._heads[path] = f"POST {self._prefix}/{path} {self._heads_template}".encode()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout  # the loop's clock: call_at and timeout_at read it
        connection = await self._take(deadline)
        connection.deadline = deadline
        answer = connection.send(b"%s%d\r\n\r\n%s" % (head, len(body), body))
        self._busy.add(connection)
        if self._sweeper is None:  # nothing else in flight: this deadline is the soonest
            self._sweeper = loop.call_at(deadline, self._sweep)
        try:
            response = await answer
        except BaseException:
            connection.close()  # mid-exchange: its stream is in an unknown state
            raise
        finally:
            self._busy.discard(connection)
        self._give_back(connection)
        return response

    def _sweep(self) -> None:
        """Fail the requests past their deadline; look again while any are in flight."""
        self._sweeper = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        late = [connection for connection in self._busy if connection.deadline <= now]
        for connection in late:
            connection.time_out(self._timeout)
        if self._busy:
            soonest = min(connection.deadline for connection in self._busy)
            self._sweeper = loop.call_at(max(soonest, now + SWEEP_SECONDS), self._sweep)

    async def _take(self, deadline: float) -> _Connection:
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.idle_since < IDLE_SECONDS:
                return connection
            connection.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                _, connection = await loop.create_connection(
                    _Connection, self._host, self._port, ssl=self._ssl
                )
        except TimeoutError:
            raise RequestTimeout(f"no connection within {self._timeout:g} s") from None
        except OSError as exc:
            raise ConnectionFailure(f"cannot connect ({type(exc).__name__})") from exc
        return connection

    def _give_back(self, connection: _Connection) -> None:
        if connection.closed:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        self._idle.append(connection)  # last in, first out: the warmest connection next
