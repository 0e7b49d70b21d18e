"""Retry policy: which failures are retried, how long to wait, and when to give up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import stamina

from batch.errors import FailureStreak, ItemFailure, TransientFailure

T = TypeVar("T")

# stamina's default hooks log every retry with the exception's repr; ours are
# counted and logged by the caller, masked, so the defaults are switched off.
stamina.instrumentation.set_on_retry_hooks([])


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently one request is tried."""

    attempts: int = 5
    timeout: float = 120.0
    wait_initial: float = 0.5
    wait_max: float = 15.0
    wait_jitter: float = 0.5
    max_retry_after: float = 60.0

    def backoff_hook(self, exc: Exception) -> bool | float:
        """Retry transient failures, waiting what the server asked for where it did."""
        if not isinstance(exc, TransientFailure):
            return False
        if exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self.max_retry_after)
        return True


class FailureBreaker:
    """Counts failed attempts in a row across all items; too many aborts the run."""

    __slots__ = ("limit", "streak")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.streak = 0

    def succeeded(self) -> None:
        self.streak = 0

    def failed(self, failure: ItemFailure) -> None:
        self.streak += 1
        if self.streak >= self.limit:
            raise FailureStreak(
                f"{self.streak} requests in a row failed (last: {failure.reason}); "
                "stopping so as not to burn the quota"
            )


async def call_with_retry(
    policy: RetryPolicy,
    attempt_once: Callable[[], Awaitable[T]],
    on_retry: Callable[[TransientFailure], None],
) -> T:
    """Run `attempt_once` until it answers, a permanent failure, or the policy gives up.

    Most requests succeed at once, and building stamina's retrier costs as much as a
    request's own bookkeeping; so the first attempt runs bare and only a transient
    failure hands over to stamina, replaying that failure as its first attempt so that
    its backoff (or the Retry-After) decides the wait before the second.
    """
    try:
        return await attempt_once()
    except TransientFailure as failure:
        if policy.attempts <= 1:
            raise
        on_retry(failure)
        replay: TransientFailure | None = failure
    async for attempt in stamina.retry_context(
        on=policy.backoff_hook,
        attempts=policy.attempts,
        timeout=policy.timeout,
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
            except TransientFailure as failure:
                if attempt.num < policy.attempts:
                    on_retry(failure)
                raise
    raise AssertionError("unreachable: stamina re-raises the last failure")  # pragma: no cover
