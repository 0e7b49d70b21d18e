"""The limiter's promise: never more than `rate` starts in any window, and no bursts."""

from __future__ import annotations

import asyncio
import time

from batch.quota import DailyQuota
from batch.ratelimit import PacedLimiter


async def starts(limiter: PacedLimiter, callers: int, each: int) -> list[float]:
    times: list[float] = []

    async def caller() -> None:
        for _ in range(each):
            await limiter.acquire()
            times.append(time.monotonic())

    await asyncio.gather(*(caller() for _ in range(callers)))
    return sorted(times)


def most_in_window(times: list[float], window: float) -> int:
    best, left = 0, 0
    for right, t in enumerate(times):
        while t - times[left] >= window:
            left += 1
        best = max(best, right - left + 1)
    return best


async def test_no_window_holds_more_than_the_rate_and_starts_are_spread() -> None:
    limiter = PacedLimiter(rate=40, period=0.5)  # a short period keeps the test quick
    times = await starts(limiter, callers=16, each=5)  # 80 starts: two full windows
    assert len(times) == 80
    assert most_in_window(times, 0.5) <= 40
    # A plain sliding log would let all 40 of a window go at once; pacing spreads them
    # (4 per 50 ms, with room for a late wake-up of the loop).
    assert most_in_window(times, 0.05) <= 8


async def test_slow_down_halves_the_rate_and_holds_new_starts() -> None:
    limiter = PacedLimiter(rate=100)
    limiter.slow_down(retry_after=0.2)
    assert 49 <= limiter.rate <= 52
    before = time.monotonic()
    await limiter.acquire()
    assert time.monotonic() - before >= 0.19


async def test_after_a_429_the_rate_climbs_back_to_the_ceiling() -> None:
    limiter = PacedLimiter(rate=100, recovery=1.0)
    limiter.slow_down(retry_after=None)
    low = limiter.rate
    assert low < 60
    await asyncio.sleep(0.05)
    assert low < limiter.rate < 100  # climbing
    await asyncio.sleep(1.0)
    assert limiter.rate == 100  # and never above the ceiling


def test_daily_quota_never_spends_the_reserve() -> None:
    quota = DailyQuota(reserve=10)
    assert quota.try_spend(["a", "b"])  # nothing known yet: go
    quota.settle("a", remaining=12, limit=100)
    quota.settle("b", remaining=50, limit=100)
    assert quota.try_spend(["a", "b"])  # a: 12 -> 11
    assert quota.try_spend(["a", "b"])  # a: 11 -> 10 (two in flight)
    assert not quota.try_spend(["a", "b"])  # would go below the reserve
    assert quota.remaining["b"] == 48  # b was not spent by the refused call
    quota.settle("a", remaining=11, limit=100)  # one answer; one still in flight
    assert quota.remaining["a"] == 10
    assert not quota.try_spend(["a"])
