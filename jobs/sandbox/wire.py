"""What the sandbox writes past aiohttp: dropped connections, duplicates, hostile streams.

aiohttp's server only writes well-formed answers; the faults here need the raw transport.
Hostile streams wait while the client's side is full, so the server keeps answering others,
and stop as soon as the client goes away.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import NoReturn

from aiohttp import web

from jobs.sandbox.rules import SandboxStats
from jobs.sandbox.truth import Answer

_HIGH_WATER = 256 * 1024  # bytes queued on a connection before a hostile stream waits
_CHUNK = 64 * 1024
_HEADER_LINES = b"".join(b"X-Padding-%02d: %s\r\n" % (i, b"x" * 1000) for i in range(64))


def drop(request: web.Request) -> NoReturn:
    """Reset the connection (a TCP RST, as a crashed or hostile server's) without an answer."""
    if request.transport is not None:
        sock = request.transport.get_extra_info("socket")
        if sock is not None:  # linger 0: close sends RST, not the FIN of a polite close
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        request.transport.abort()
    raise web.HTTPInternalServerError  # aiohttp finds the connection gone and lets it be


def raw(request: web.Request, response: web.StreamResponse, body: bytes) -> bytes:
    """The bytes aiohttp wrote for `response`: its status line, final headers and body."""
    version = request.version
    head = f"HTTP/{version.major}.{version.minor} {response.status} {response.reason}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in response.headers.items())
    return f"{head}\r\n".encode() + body


async def endless_headers(transport: asyncio.Transport, limit: int, stats: SandboxStats) -> None:
    """A status line, then header lines until `limit` bytes are out or the client leaves."""
    transport.write(b"HTTP/1.1 200 OK\r\n")
    await repeat(transport, _HEADER_LINES, limit, stats)


async def repeat(
    transport: asyncio.Transport, piece: bytes, limit: int, stats: SandboxStats
) -> None:
    """`piece` again and again until `limit` bytes are out or the client leaves."""
    stats.streaming += 1
    try:
        sent = 0
        while sent < limit and not transport.is_closing():
            if transport.get_write_buffer_size() > _HIGH_WATER:
                await asyncio.sleep(0.01)  # the client reads slower: let others be served
                continue
            transport.write(piece)
            sent += len(piece)
            stats.streamed_bytes += len(piece)
            await asyncio.sleep(0)
    finally:
        stats.streaming -= 1


async def huge_body(
    request: web.Request, answer: Answer, stats: SandboxStats
) -> web.StreamResponse:
    """A 200 with a valid JSON body of `answer.size` bytes, streamed as the client reads."""
    head, tail = b'{"result": "member", "padding": "', b'"}'
    response = web.StreamResponse(status=answer.status, headers=answer.headers)
    response.content_length = max(answer.size, len(head) + len(tail))
    stats.streaming += 1
    try:
        await response.prepare(request)
        await response.write(head)
        left = response.content_length - len(head) - len(tail)
        padding = b"x" * _CHUNK
        while left > 0:
            piece = padding[: min(left, _CHUNK)]
            await response.write(piece)  # waits while the client's side is full
            left -= len(piece)
            stats.streamed_bytes += len(piece)
        await response.write(tail)
        await response.write_eof()
    except ConnectionError:
        drop(request)
    finally:
        stats.streaming -= 1
    return response
