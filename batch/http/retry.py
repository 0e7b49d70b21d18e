"""Retry policy: which failures are worth another attempt, and how long to wait before it."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import stamina

from batch.errors import AnswerError, RateLimited, RequestError, ServerFailure, TransportError

T = TypeVar("T")


def is_retryable(failure: RequestError) -> bool:
    """Transport errors, 429s and server failures may pass; a refusal or an odd answer won't."""
    return isinstance(failure, TransportError | RateLimited | ServerFailure)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently one request is tried."""

    attempts: int = 5
    wait_initial: float = 0.5
    wait_max: float = 15.0
    wait_jitter: float = 0.5
    max_retry_after: float = 60.0

    def backoff_hook(self, exc: Exception) -> bool | float:
        """Retry what may pass, waiting what the server asked for where it did."""
        if not isinstance(exc, RequestError) or not is_retryable(exc):
            return False
        if isinstance(exc, AnswerError) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self.max_retry_after)
        if isinstance(exc, RateLimited):
            return 0.0  # a 429 without a word on when: the pacing spaces the retry, and slows
        return True


async def call_with_retry(
    policy: RetryPolicy,
    attempt_once: Callable[[], Awaitable[T]],
    on_retry: Callable[[RequestError], None],
) -> T:
    """Run `attempt_once` until it answers, a failure not worth retrying, or the attempts run out.

    Most requests succeed at once, and building stamina's retrier costs as much as a
    request's own bookkeeping; so the first attempt runs bare and only a retryable
    failure hands over to stamina, replaying that failure as its first attempt so that
    its backoff (or the Retry-After) decides the wait before the second.
    """
    try:
        return await attempt_once()
    except RequestError as failure:
        if policy.attempts <= 1 or not is_retryable(failure):
            raise
        on_retry(failure)
        replay: RequestError | None = failure
    # No overall timeout: an outage is waited out inside an attempt, bounded by the circuit.
    async for attempt in stamina.retry_context(
        on=policy.backoff_hook,
        attempts=policy.attempts,
        timeout=None,
        wait_initial=policy.wait_initial,
        wait_max=policy.wait_max,
        wait_jitter=policy.wait_jitter,
    ):
        with attempt:
            if replay is not None:
                known, replay = replay, None
                raise known
            try:
                return await attempt_once()
            except RequestError as failure:
                if attempt.num < policy.attempts and is_retryable(failure):
                    on_retry(failure)
                raise
    raise AssertionError("unreachable: stamina re-raises the last failure")  # pragma: no cover


@contextlib.contextmanager
def quiet_retry_hooks() -> Iterator[None]:
    """Switch stamina's retry hooks off for the run, and give the caller's back after.

    stamina's default hooks log every retry with the exception's repr, which could
    carry a server's words; the gate counts and logs retries itself, masked.
    """
    previous = stamina.instrumentation.get_on_retry_hooks()
    stamina.instrumentation.set_on_retry_hooks([])
    try:
        yield
    finally:
        stamina.instrumentation.set_on_retry_hooks(previous)
