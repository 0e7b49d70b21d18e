"""A local emulator of KOSCOM's service-integration API, for the demo, tests and benchmarks.

The rules (jobs/sandbox/rules.py) decide every answer; this module is the aiohttp server
that reads requests and carries answers out, including what only a connection can do: drop
it, close it after N answers, write an answer twice, stream endless headers or a huge body,
stop listening during a `refused` outage. `serve()` is the one server loop, used by the
`member-recon sandbox` command (`run_forever`) and by `SandboxThread` (tests, benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from batch.run import fast_loop_factory
from jobs.sandbox import hostile
from jobs.sandbox.config import (
    FAULT_KINDS,
    OUTAGE_KINDS,
    Fault,
    Outage,
    SandboxConfig,
    config_changes,
)
from jobs.sandbox.rules import Asked, SandboxState, SandboxStats, closes_after, decide, refusing
from jobs.sandbox.truth import (
    APIS,
    BASE_PATH,
    Answer,
    Truth,
    synthetic_ci,
    synthetic_name,
    truth,
)
from jobs.sandbox.wire import drop, endless_headers, huge_body, raw, repeat

__all__ = [  # what tests, bench and scripts import from here
    "APIS",
    "BASE_PATH",
    "FAULT_KINDS",
    "OUTAGE_KINDS",
    "Fault",
    "Outage",
    "Sandbox",
    "SandboxConfig",
    "SandboxStats",
    "SandboxThread",
    "Truth",
    "run_forever",
    "serve",
    "synthetic_ci",
    "synthetic_name",
    "truth",
]

_POLL = 0.02  # seconds between serve()'s looks for a `refused` outage starting or ending


class Sandbox:
    """The emulator's config and state, and its aiohttp application."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.state = SandboxState(random=random.Random(self.config.seed))
        # Answers given per open connection, for `close_after`; gone with the connection.
        self._served: weakref.WeakKeyDictionary[asyncio.BaseTransport, int] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def stats(self) -> SandboxStats:
        return self.state.stats

    def configure(self, **changes: Any) -> None:
        """Change the emulator's behaviour while it runs (thread-safe: one assignment)."""
        self.config = replace(self.config, **changes)

    def start_outage(self, kind: str, seconds: float, after: float = 0.0) -> None:
        """An outage of `kind` for `seconds`, starting `after` seconds from now."""
        self.configure(outage=Outage.starting(kind, seconds, time.monotonic() + after))

    def reset(self, config: SandboxConfig | None = None) -> None:
        """A fresh emulator: `config` (or the current one), no stats, empty quota windows."""
        self.config = config or self.config
        self.state = SandboxState(random=random.Random(self.config.seed))

    def reset_day(self) -> None:
        self.stats.day_used.clear()

    def reset_stats(self) -> None:
        self.state.stats = SandboxStats()

    def refusing(self) -> bool:
        """Whether a `refused` outage is on now (serve() stops listening)."""
        return refusing(self.config, time.monotonic())

    def app(self) -> web.Application:
        app = web.Application()
        for api in APIS:
            app.router.add_post(f"{BASE_PATH}/{api}", self._handler(api))
        app.router.add_get("/_sandbox/stats", self._stats)
        app.router.add_post("/_sandbox/reset-day", self._reset_day)
        app.router.add_post("/_sandbox/reset-stats", self._reset_stats)
        app.router.add_post("/_sandbox/configure", self._configure)
        app.router.add_post("/_sandbox/outage", self._outage)
        app.router.add_route("*", "/{tail:.*}", self._no_route)
        return app

    def _handler(self, api: str) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            asked = Asked(api, request.headers.get("apikey"), await request.read())
            config = self.config
            answer = decide(config, self.state, asked, time.monotonic())
            if answer.delay:
                await asyncio.sleep(answer.delay)
            return await self._send(request, answer, config)

        return handle

    async def _send(
        self, request: web.Request, answer: Answer, config: SandboxConfig
    ) -> web.StreamResponse:
        transport = request.transport
        if transport is None or answer.action == "reset":
            drop(request)
        if answer.action == "endless_headers":
            await endless_headers(transport, answer.size, self.stats)
            drop(request)
        if answer.action == "huge_body":
            return await huge_body(request, answer, self.stats)
        if answer.action == "continue_flood":
            await repeat(transport, hostile.CONTINUE, config.endless_headers_bytes, self.stats)
            drop(request)
        if answer.action in hostile.FRAMING:
            transport.write(hostile.framing(answer.action))
            drop(request)
        response = web.Response(status=answer.status, body=answer.body, headers=answer.headers)
        closing = self._closing(transport, config)
        if closing == "header":
            response.force_close()  # aiohttp sends `Connection: close`, then closes
        if answer.action not in ("duplicate", "late_duplicate") and closing != "silent":
            return response
        await response.prepare(request)
        await response.write_eof()
        if answer.action == "duplicate":
            # The same bytes again: a client that reuses the connection reads them as the
            # answer to its next request.
            transport.write(raw(request, response, answer.body))
        if answer.action == "late_duplicate":  # once the client has sent its next request
            again = raw(request, response, answer.body)
            asyncio.get_running_loop().call_later(hostile.LATE, _write_if_open, transport, again)
        if closing == "silent":
            transport.close()  # after what is queued is sent: a FIN, no header said so
        return response

    def _closing(self, transport: asyncio.BaseTransport, config: SandboxConfig) -> str | None:
        served = self._served.get(transport, 0) + 1
        how = closes_after(config, served)
        if how is None:
            self._served[transport] = served
        else:
            self._served.pop(transport, None)
            self.stats.closed += 1
        return how

    async def _stats(self, _: web.Request) -> web.Response:
        return _json(self.stats.as_dict())

    async def _reset_day(self, _: web.Request) -> web.Response:
        self.reset_day()
        return _json({"ok": True})

    async def _reset_stats(self, _: web.Request) -> web.Response:
        self.reset_stats()
        return _json({"ok": True})

    async def _configure(self, request: web.Request) -> web.Response:
        try:
            self.configure(**config_changes(orjson.loads(await request.read()), time.monotonic()))
        except (ValueError, TypeError) as exc:  # orjson's error is a ValueError
            return _json({"error": str(exc)}, 400)
        return _json({"ok": True})

    async def _outage(self, request: web.Request) -> web.Response:
        query = request.query
        try:
            seconds, after = float(query["seconds"]), float(query.get("after", "0"))
            self.start_outage(query.get("kind", "html"), seconds, after)
        except (KeyError, ValueError) as exc:
            return _json({"error": f"seconds=S[&kind=K][&after=A]: {exc}"}, 400)
        return _json({"ok": True})

    async def _no_route(self, _: web.Request) -> web.Response:
        return _json({"message": "no Route matched with those values"}, 404)


def _write_if_open(transport: asyncio.BaseTransport, data: bytes) -> None:
    if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
        transport.write(data)


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def serve(
    sandbox: Sandbox,
    host: str = "127.0.0.1",
    port: int = 0,
    ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve `sandbox` until `stop` is set or the task is cancelled; `ready` gets the base URL."""
    # A second to finish on stop: a `slow` answer or a hostile stream must not hold it.
    runner = web.AppRunner(sandbox.app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = await _listen(runner, host, port)
        port = runner.addresses[0][1]  # the bound one, when 0 asked for any
        if ready is not None:
            ready(f"http://{f'[{host}]' if ':' in host else host}:{port}{BASE_PATH}")
        await _follow_outages(sandbox, runner, site, (host, port), stop or asyncio.Event())
    finally:
        await runner.cleanup()


async def _listen(runner: web.AppRunner, host: str, port: int) -> web.TCPSite:
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    return site


async def _follow_outages(
    sandbox: Sandbox,
    runner: web.AppRunner,
    site: web.TCPSite | None,
    address: tuple[str, int],
    stop: asyncio.Event,
) -> None:
    """Close the listener while a `refused` outage lasts, so connecting fails; reopen after."""
    while not stop.is_set():
        refusing = sandbox.refusing()
        if refusing and site is not None:
            await site.stop()  # kept connections stay; the rules drop their requests
            site = None
        elif not refusing and site is None:
            with contextlib.suppress(OSError):  # the port is briefly taken: the next poll
                site = await _listen(runner, *address)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), _POLL)


def run_forever(sandbox: Sandbox, host: str, port: int, ready: Callable[[str], None]) -> None:
    """Serve in this process until interrupted: the `member-recon sandbox` command."""

    def listening(url: str) -> None:
        # The emulator stamps arrivals to count its window; a full GC pause would bunch
        # them, which no real gateway does, so what it holds at start is frozen out of GC.
        gc.collect()
        gc.freeze()
        ready(url)

    # uvloop: the emulator shares the machine with the job it measures; the cheaper it
    # answers, the more a benchmark measures the client and not the emulator.
    with (
        contextlib.suppress(KeyboardInterrupt),
        asyncio.Runner(loop_factory=fast_loop_factory()) as loop,
    ):
        loop.run(serve(sandbox, host, port, listening))


class SandboxThread:
    """The emulator on 127.0.0.1 in a thread of its own, for tests and benchmarks."""

    def __init__(self, sandbox: Sandbox, port: int = 0) -> None:
        self.sandbox = sandbox
        self.port = port
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sandbox", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{BASE_PATH}"

    def start(self) -> SandboxThread:
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError("sandbox did not start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        try:
            loop.run_until_complete(
                serve(self.sandbox, "127.0.0.1", self.port, self._listening, self._stop)
            )
        except Exception as exc:
            self._error = exc
        finally:
            self._ready.set()
            loop.close()

    def _listening(self, url: str) -> None:
        self.port = urlsplit(url).port or 0
        self._ready.set()
