"""The request gate: every request goes through pacing, the daily cap, retry and the breakers.

The gate knows HTTP and limits, not the job: the job hands it a `GateRequest` (a path,
a body, and the daily cap it draws on) and a `read` function that turns a `JsonAnswer`
into the job's typed answer, None for one that is not the job's, or raises what its
platform said. What HTTP says on its own (429, redirects, broken bodies, 5xx) is read
by batch/http/classify.py, the same for every job. The gate decides what follows:

* pacing: `AdaptiveLimiter`, at most the configured rate, cut only when a window's
  refusals say the job is over the gateway's limit;
* the daily cap: `DailyQuota`, never below the reserve (a `PausedError` instead);
* retry: transport errors, 429s and server failures, with stamina's backoff or the
  server's Retry-After, `attempts` times at most;
* the outage circuit: when the server looks down nobody sends, one probe goes out
  after growing waits, and no item spends an attempt until it is back;
* the answer breaker: when too many recent answers cannot be used, the run stops
  before the quota burns.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

from batch.errors import (
    ConnectionFailure,
    ForeignAnswer,
    ItemRejected,
    NameResolutionError,
    PausedError,
    ProtocolError,
    RateLimited,
    RequestError,
    ServerFailure,
    StaleConnection,
    TransportError,
    UnexpectedAnswer,
)
from batch.http.circuit import AnswerBreaker, OutageCircuit
from batch.http.classify import Reader, read_answer
from batch.http.connections import AnswerLedger
from batch.http.limits import stated_limits
from batch.http.pacing import AdaptiveLimiter
from batch.http.quota import DailyQuota
from batch.http.retry import RetryPolicy, call_with_retry, is_retryable, quiet_retry_hooks
from batch.http.transport import HttpAnswer, HttpTransport, Transport, TransportSettings, proxy_for
from batch.log import Log

T = TypeVar("T")
# The engine's name for the item being asked (its place in the store), set around each item.
ASKING: ContextVar[object] = ContextVar("asking", default=None)


@dataclass(frozen=True, slots=True)
class GateRequest:
    """One request as the job builds it; `label` names it in debug logs (already masked)."""

    path: str
    body: bytes
    cap: str  # the daily cap it draws on: the gateway counts one per API
    label: str = ""
    item: object = None  # which item it asks about: an outage fails many items, not one


@dataclass(frozen=True, slots=True)
class GateSettings:
    """How hard to push, how long to wait, and when to give up."""

    transport: TransportSettings
    rate: float
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    daily_reserve: int = 0
    max_outage: float = 900.0
    outage_threshold: int = 5
    unusable_window: int = 100
    unusable_limit: int = 10
    report_every: float = 30.0  # seconds between log lines while an outage lasts


@dataclass(slots=True)
class GateStats:
    """What this run sent and got back."""

    requests: int = 0
    retries: int = 0
    by_status: collections.Counter[str] = field(default_factory=collections.Counter)
    daily_remaining: dict[str, int] = field(default_factory=dict)
    unsolicited_answers: int = 0
    suspect_answers: int = 0  # items answered on a connection that carried an unasked answer
    resent: int = 0  # first attempts sent again at once: their kept-alive connection had closed
    outages: int = 0
    outage_seconds: float = 0.0
    rate_cuts: int = 0
    rate_settled: float = 0.0

    @property
    def http_429(self) -> int:
        return self.by_status["429"]


class RequestGate:
    """Sends requests under the run's limits and turns failures into what the job should see."""

    def __init__(
        self, settings: GateSettings, log: Log, transport: Transport | None = None
    ) -> None:
        """`transport` defaults to aiohttp's, made from `settings.transport`."""
        self.settings = settings
        self.stats = GateStats()
        self.quota = DailyQuota(reserve=settings.daily_reserve)
        self._log = log
        self._debug = log.is_enabled_for(logging.DEBUG)
        self._transport: Transport = transport or HttpTransport(settings.transport)
        self._limiter = AdaptiveLimiter(settings.rate)
        self._circuit = OutageCircuit(
            threshold=settings.outage_threshold, max_outage=settings.max_outage
        )
        self._circuit.report_to(log, settings.report_every)
        self._breaker = AnswerBreaker(settings.unusable_window, settings.unusable_limit)
        self._in_flight = asyncio.Semaphore(settings.transport.connections)
        self._answered_once = False
        # The last request answered in full: the probe when the circuit is open.
        self._canary: tuple[GateRequest, Reader[Any]] | None = None
        self._hooks = quiet_retry_hooks()
        self._ledger = AnswerLedger()

    async def __aenter__(self) -> Self:
        self._hooks.__enter__()
        await self._transport.__aenter__()
        url = self.settings.transport.base_url
        self._log.info("network", api_host=urlsplit(url).hostname, proxy=proxy_for(url) or "none")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._circuit.stop_reports()
        try:
            await self._transport.__aexit__(exc_type, exc, tb)
        finally:
            self._hooks.__exit__(exc_type, exc, tb)
            self._settle_stats()

    @property
    def circuit(self) -> OutageCircuit:
        """The outage circuit: whether the server is down now, and for how long it was."""
        return self._circuit

    async def send(self, request: GateRequest, read: Reader[T]) -> T | RequestError:
        """The answer, or the failure this request ended with; a `RunError` stops the run."""
        attempts = 0

        async def attempt_once() -> T:
            nonlocal attempts
            attempts += 1
            return await self._attempt(request, read, may_resend=attempts == 1)

        def on_retry(_: RequestError) -> None:
            self.stats.retries += 1

        try:
            return await call_with_retry(self.settings.retry, attempt_once, on_retry)
        except RequestError as failure:
            if is_retryable(failure):  # the attempts ran out: this is the item's answer now
                tries = "attempt" if attempts == 1 else "attempts"
                return type(failure)(f"{failure.reason} after {attempts} {tries}")
            return failure

    async def _attempt(self, request: GateRequest, read: Reader[T], *, may_resend: bool) -> T:
        """One counted attempt; failures while the server is down are waited out, not counted.

        A first attempt that met a kept-alive connection closed under it goes again at once
        (RFC 9112 9.3.1.1: a search is safe to repeat), spending the quota again.
        """
        while True:
            probe = await self._circuit.admit()
            if probe and self._canary is not None and self._canary[0] is not request:
                await self._probe_with_canary(*self._canary)
                continue  # answered: the circuit is closed; failed: it waits longer
            try:
                answer = await self._send(request, probe=probe)
            except ProtocolError as failure:
                if not self._answered_once or probe:
                    if self._circuit.failed(failure.reason, probe=probe, item=request.item):
                        continue
                    raise
                # The API has answered well: endless headers, lengths that disagree or lie,
                # a bomb are the API misbehaving, not an outage to wait out.
                self._breaker.record(failure)
                raise
            except TransportError as failure:
                if isinstance(failure, StaleConnection) and may_resend and not probe:
                    may_resend = False
                    self.stats.resent += 1
                    continue
                if self._circuit.failed(failure.reason, probe=probe, item=request.item):
                    continue
                raise
            except NameResolutionError as exc:
                if not self._answered_once:
                    raise  # it never worked: configuration, not an outage
                if self._circuit.failed(str(exc), probe=probe, item=request.item):
                    continue
                raise ConnectionFailure("the API's name stopped resolving") from exc
            except BaseException:
                if probe:
                    self._circuit.abandon_probe()
                raise
            if answer is None:  # the circuit opened while it waited for its turn: wait again
                continue
            self._answered_once = True
            try:
                result = self._read(answer, read)
            except ServerFailure as failure:
                if self._circuit.failed(failure.reason, probe=probe, item=request.item):
                    continue
                raise
            except (RateLimited, ProtocolError):  # answered: up, though not of use
                self._circuit.succeeded()
                raise
            except (UnexpectedAnswer, ItemRejected) as failure:
                self._circuit.succeeded()
                self._breaker.record(failure, request.path)
                raise
            self._circuit.succeeded()
            self._breaker.record(None)
            self._canary = (request, read)
            return result

    async def _probe_with_canary(self, request: GateRequest, read: Reader[Any]) -> None:
        """Probe with the last request the server answered, not with a waiting item's own.

        A few items that always fail would otherwise probe with their own requests, keep
        the circuit open, and pass for an outage until the run gave up.
        """
        try:
            answer = await self._send(request, probe=True)
        except (TransportError, NameResolutionError) as failure:
            self._circuit.failed(str(failure), probe=True, item=request.item)
            return
        except BaseException:
            self._circuit.abandon_probe()
            raise
        if answer is None:
            self._circuit.abandon_probe()
            return
        try:
            self._read(answer, read)
        except ServerFailure as failure:
            self._circuit.failed(failure.reason, probe=True, item=request.item)
            return
        except RequestError:
            pass  # any other answer says the server is up
        self._circuit.succeeded()

    async def _send(self, request: GateRequest, *, probe: bool = False) -> HttpAnswer | None:
        """The answer; None when the circuit opened while this request waited for its turn."""
        async with self._in_flight, self._limiter.turn():
            if self._circuit.is_open and not probe:
                return None
            if not self.quota.try_spend((request.cap,)):
                raise PausedError(self._paused_message())
            self.stats.requests += 1
            started = time.monotonic()
            try:
                answer = await self._transport.post(request.path, request.body)
            except BaseException as exc:
                self.quota.settle(request.cap, None, None)
                self._count(request, type(exc).__name__, started)
                raise
        self._ledger.remember(answer.connection, ASKING.get())
        limits = stated_limits(answer.headers)
        self.quota.settle(request.cap, limits.day_remaining, limits.day_limit)
        self._count(request, str(answer.status), started)
        if answer.status == 429:
            remaining = limits.day_remaining
            if remaining is not None and remaining <= self.settings.daily_reserve:
                raise PausedError(self._paused_message())
        if limits.per_second is not None:
            self._limiter.state_limit(limits.per_second)
        if limits.hold_for:
            self._limiter.hold(limits.hold_for)
        return answer

    def suspects(self) -> set[object]:
        """Items (as `ASKING` named them) whose answer may be another's; each is told once.

        A gateway that sends an answer twice makes a reused connection hand the copy to
        the next request sent on it (`batch/http/connections.py` finds such connections).
        """
        found = self._ledger.answered_on(self._transport.tainted())
        self.stats.suspect_answers += len(found)
        return found

    def _read(self, answer: HttpAnswer, read: Reader[T]) -> T:
        """The job's answer, or the failure it means; a refusal is told to the pacing."""
        refused: RateLimited | None = None
        try:
            return read_answer(answer, read)
        except RateLimited as failure:
            refused = failure
            raise
        except ForeignAnswer as failure:
            if not answer.reused:
                raise
            # Another request's answer, sent twice, reads as this one's on a reused
            # connection: not a sign that the API changed. Asked again on a new one.
            self._transport.distrust(answer.connection)
            raise ProtocolError(f"{failure.reason} on a reused connection") from failure
        finally:  # any other answer, even one nobody can use, the gateway accepted
            wait = refused.retry_after if refused is not None else None
            self._limiter.answered(rate_limited=refused is not None, retry_after=wait)

    def _count(self, request: GateRequest, status: str, started: float) -> None:
        self.stats.by_status[status] += 1
        if self._debug:
            self._log.debug(
                "request",
                path=request.path,
                item=request.label,
                status=status,
                ms=round((time.monotonic() - started) * 1000),
                rate=round(self._limiter.rate, 2),
            )

    def _settle_stats(self) -> None:
        self.stats.daily_remaining = dict(self.quota.remaining)
        self.stats.unsolicited_answers = self._transport.unsolicited_answers
        self.stats.outages = self._circuit.outages
        self.stats.outage_seconds = round(self._circuit.outage_seconds, 1)
        self.stats.rate_cuts = self._limiter.cuts
        self.stats.rate_settled = round(self._limiter.rate, 2)

    def _paused_message(self) -> str:
        left = ", ".join(f"{cap} {n}" for cap, n in sorted(self.quota.remaining.items()))
        return (
            f"the daily cap fell to the reserve of {self.settings.daily_reserve} "
            f"(remaining: {left or 'unknown'})"
        )
