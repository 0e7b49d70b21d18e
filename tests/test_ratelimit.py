"""The limiter's promise: never more than `rate` starts in any window, and no bursts."""

from __future__ import annotations

import asyncio
import time

from batch.http.pacing import AdaptiveLimiter
from batch.http.quota import DailyQuota


async def starts(limiter: AdaptiveLimiter, callers: int, each: int) -> list[float]:
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
    limiter = AdaptiveLimiter(rate=40, period=0.5)  # a short period keeps the test quick
    times = await starts(limiter, callers=16, each=5)  # 80 starts: two full windows
    assert len(times) == 80
    assert most_in_window(times, 0.5) <= 40
    # A plain sliding log would let all 40 of a window go at once; pacing spreads them
    # (4 per 50 ms, with room for a late wake-up of the loop).
    assert most_in_window(times, 0.05) <= 8


async def test_a_429_cuts_to_a_fraction_of_what_was_accepted_once_per_window() -> None:
    limiter = AdaptiveLimiter(rate=100)
    await starts(limiter, callers=4, each=10)  # 0.4 s at 100 a second
    for _ in range(10):  # of which the gateway took 10: 25 a second
        limiter.answered(rate_limited=False)
    limiter.answered(rate_limited=True)
    assert 0.9 * 25 * 0.9 <= limiter.rate <= 0.9 * 25 * 1.1
    cut = limiter.rate
    limiter.answered(rate_limited=True)  # the same window: its 429s say nothing new
    assert limiter.rate == cut
    assert limiter.cuts == 1


async def test_after_a_cut_the_rate_probes_upward_but_never_past_the_ceiling() -> None:
    limiter = AdaptiveLimiter(rate=100)
    await limiter.acquire()
    limiter.answered(rate_limited=True)  # nothing accepted yet: halve
    low = limiter.rate
    assert low <= 50
    await asyncio.sleep(0.3)
    await limiter.acquire()
    assert low < limiter.rate < 100  # climbing, slowly while the 429 is recent


async def test_a_stated_limit_lowers_the_ceiling_and_a_long_retry_after_holds_everyone() -> None:
    limiter = AdaptiveLimiter(rate=100)
    limiter.state_limit(10)
    assert limiter.ceiling == limiter.rate == 10
    limiter.state_limit(50)  # a stated limit never raises it
    assert limiter.ceiling == 10
    limiter.answered(rate_limited=True, retry_after=1.2)  # longer than a window
    before = time.monotonic()
    await limiter.acquire()
    assert time.monotonic() - before >= 1.1


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    limiter = AdaptiveLimiter(rate=10)
    await limiter.acquire()
    first = asyncio.ensure_future(limiter.acquire())
    second = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.wait_for(second, 1.0)  # woken at the first's slot, not stranded


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
