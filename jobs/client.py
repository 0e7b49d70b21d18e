"""The KOSCOM service-integration API client: one customer, two questions, asked in turn."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import orjson

from batch.errors import (
    ConnectionFailure,
    ItemFailure,
    PausedError,
    PermanentFailure,
    RateLimited,
    RequestTimeout,
    TransientFailure,
)
from batch.http import HttpPool
from batch.quota import DailyQuota
from batch.ratelimit import PacedLimiter
from batch.retry import FailureBreaker, RetryPolicy, call_with_retry
from jobs.answers import HttpAnswer, daily_cap, interpret
from jobs.models import Api, ConsentAnswer, Customer, MembershipAnswer, Partner, envelope
from jobs.validation import mask_ci

REQUEST_ID_LENGTH = 20


@dataclass(slots=True)
class RequestStats:
    """What this run sent and got back."""

    requests: int = 0
    retries: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    daily_remaining: dict[str, int] = field(default_factory=dict)

    @property
    def http_429(self) -> int:
        return self.by_status["429"]


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """How to reach the API and how hard to push it."""

    base_url: str
    api_key: str = field(repr=False)
    partner: Partner
    rate: float
    concurrency: int
    timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    failure_streak: int = 50
    daily_reserve: int = 0


class KoscomClient:
    """Asks both APIs about a customer under the rate, concurrency and daily-cap limits."""

    def __init__(self, settings: ClientSettings, log: Any) -> None:
        self.settings = settings
        self.stats = RequestStats()
        self.quota = DailyQuota(reserve=settings.daily_reserve)
        self._log = log
        self._debug = log.is_enabled_for(logging.DEBUG) if hasattr(log, "is_enabled_for") else True
        self._limiter = PacedLimiter(settings.rate)
        self._in_flight = asyncio.Semaphore(settings.concurrency)
        self._breaker = FailureBreaker(settings.failure_streak)
        # A per-run prefix and a counter: unique, 20 characters, traceable to the run.
        prefix = secrets.token_hex(4)
        self.request_ids = (f"{prefix}{n:012x}" for n in itertools.count(1))
        self._http = HttpPool(
            settings.base_url,
            {
                "apikey": settings.api_key,
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": "member-recon",
            },
            timeout=settings.timeout,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._http.close()

    async def check(
        self, customer: Customer
    ) -> tuple[MembershipAnswer | ItemFailure, ConsentAnswer | ItemFailure]:
        """Both answers for one customer; a failure stands in for an answer that never came."""
        if not self.quota.try_spend((Api.REGISTER, Api.CONSENT)):
            raise PausedError(self._paused_message())
        # One question after the other: the caller's workers are the requests in flight,
        # and a customer costs no tasks, no gather and no wait on the in-flight semaphore.
        membership = await self._ask(Api.REGISTER, customer)
        consent = await self._ask(Api.CONSENT, customer)
        return membership, consent

    async def _ask(self, api: Api, customer: Customer) -> Any:
        attempts = 0

        async def attempt_once() -> MembershipAnswer | ConsentAnswer:
            nonlocal attempts
            attempts += 1
            # The first attempt was paid for in check(); every retry pays its own way.
            if attempts > 1 and not self.quota.try_spend((api,)):
                raise PausedError(self._paused_message())
            return await self._attempt(api, customer)

        def on_retry(failure: TransientFailure) -> None:
            self.stats.retries += 1
            if isinstance(failure, RateLimited):
                self._limiter.slow_down(failure.retry_after)

        try:
            return await call_with_retry(self.settings.retry, attempt_once, on_retry)
        except TransientFailure as failure:
            # Retries are spent: what was transient is now this customer's final answer.
            return PermanentFailure(f"{failure.reason} after {attempts} attempts")
        except ItemFailure as failure:
            return failure

    async def _attempt(self, api: Api, customer: Customer) -> MembershipAnswer | ConsentAnswer:
        request_id = next(self.request_ids)
        answer: HttpAnswer | None = None
        async with self._in_flight:
            await self._limiter.acquire()
            self.stats.requests += 1
            started = time.monotonic()
            try:
                body = orjson.dumps(envelope(self.settings.partner, customer, request_id))
                response = await self._http.post(api.value, body)
                answer = HttpAnswer(response.status, response.headers, response.body)
            except (RequestTimeout, ConnectionFailure) as exc:
                failure: TransientFailure = exc
            finally:
                cap = daily_cap(answer.headers) if answer else None
                self.quota.settle(api, cap.remaining if cap else None, cap.limit if cap else None)
        status = str(answer.status) if answer else "none"
        self.stats.by_status[status] += 1
        if self._debug:
            self._log.debug(
                "request",
                api=api.value,
                req_id=request_id,
                ci=mask_ci(customer.ci),
                status=status,
                ms=round((time.monotonic() - started) * 1000),
            )
        if answer is None:
            self._breaker.failed(failure)
            raise failure
        if answer.status == 429 and self._daily_cap_spent(answer):
            raise PausedError(self._paused_message())
        try:
            result = interpret(api, answer)
        except TransientFailure as exc:
            self._breaker.failed(exc)
            raise
        self._breaker.succeeded()
        return result

    def _daily_cap_spent(self, answer: HttpAnswer) -> bool:
        cap = daily_cap(answer.headers)
        return cap.remaining is not None and cap.remaining <= self.settings.daily_reserve

    def _paused_message(self) -> str:
        left = ", ".join(f"{api} {n}" for api, n in sorted(self.quota.remaining.items()))
        return (
            f"the daily cap fell to the reserve of {self.settings.daily_reserve} "
            f"(remaining: {left or 'unknown'})"
        )
