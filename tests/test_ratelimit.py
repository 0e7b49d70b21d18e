"""The limiter's promise: never more than `rate` starts in any window, and no bursts; and the
model behind it, which tells a gateway's limit from its noise by what the gateway accepts."""

from __future__ import annotations

import asyncio
import itertools
import random
import time

from batch.http.pacing import AcceptanceModel, AdaptiveLimiter
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


def feed(model: AcceptanceModel, start: float, seconds: float, refused_every: int = 0) -> float:
    """Answers at the model's rate for `seconds`, every `refused_every`-th refused; the end."""
    t, n = start, 0
    while t < start + seconds:
        n += 1
        model.answered(t, refused=bool(refused_every) and n % refused_every == 0)
        t += 1 / model.rate
    return t


def against_limit(
    model: AcceptanceModel, start: float, seconds: float, limit: float, wait: float | None = None
) -> float:
    """Answers as a gateway that accepts `limit` a second gives them: the excess refused,
    naming `wait` (Retry-After) or, as nginx's limit_req does, none."""
    t, owed = start, 1.0  # its first request is accepted, as a real gateway's is
    while t < start + seconds:
        owed += limit / model.rate
        accepted = owed >= 1
        owed -= accepted
        model.answered(t, refused=not accepted, retry_after=None if accepted else wait)
        t += 1 / model.rate
    return t


def test_a_lone_429_among_accepted_answers_is_not_a_verdict() -> None:
    model = AcceptanceModel(100)
    feed(model, 0.0, 5.0, refused_every=100)  # 1%: one 429 a second
    assert model.cuts == 0
    assert model.rate == 100


def test_stray_429s_of_a_noisy_gateway_never_cut_the_rate() -> None:
    model = AcceptanceModel(200)
    feed(model, 0.0, 30.0, refused_every=60)  # 1.7% of answers, spread as noise is
    assert model.cuts == 0
    assert model.rate == 200


def test_a_window_over_the_limit_cuts_to_what_the_gateway_accepted() -> None:
    model = AcceptanceModel(100)
    against_limit(model, 0.0, 1.0, limit=70)
    assert model.cuts <= 2  # at once on the first answers, then a step if still over
    assert 63 <= model.rate <= 77  # what it accepted, not a fraction of that


def test_after_a_cut_the_rate_comes_back_in_seconds_when_the_limit_lifts() -> None:
    model = AcceptanceModel(100)
    t = against_limit(model, 0.0, 2.0, limit=50, wait=1.0)  # a live app's window
    assert model.rate <= 55
    against_limit(model, t, 12.0, limit=100, wait=1.0)  # it went quiet: seconds, not minutes
    assert model.rate >= 95


def test_probing_a_strict_limit_settles_below_it_and_probes_ever_more_rarely() -> None:
    model = AcceptanceModel(100)
    t = against_limit(model, 0.0, 10.0, limit=50)
    cuts = model.cuts
    against_limit(model, t, 20.0, limit=50)
    assert 45 <= model.rate <= 55
    assert model.cuts - cuts <= 4  # the plateau doubles while cuts land at the same rate


def test_a_limit_that_names_a_wait_is_probed_again_after_a_window_when_it_lifts() -> None:
    model = AcceptanceModel(100)
    # A live app's load holds the quota it leaves at 50 a while: cuts land at one rate, but
    # a gateway that names a wait counts a window, and the app's load may fall any second.
    t = against_limit(model, 0.0, 10.0, limit=50, wait=1.0)
    assert model.rate <= 55
    against_limit(model, t, 8.0, limit=100, wait=1.0)
    assert model.rate >= 95


def test_a_gateway_that_counts_gaps_widens_the_spacing_rather_than_cut_the_rate() -> None:
    # nginx's limit_req without burst at the job's own rate: a gap the jitter brought a
    # millisecond short is refused, naming no wait. The margin over the interval settles
    # where few are refused; the rate stays where the gateway takes it.
    model, jitter = AcceptanceModel(50), random.Random(7)
    t, refused, answers = 0.0, 0, 0
    while t < 60.0:
        short = jitter.random() < max(0.0, 0.04 - model.margin)  # 3.5% at first
        model.answered(t, refused=short)
        if t >= 30.0:
            answers, refused = answers + 1, refused + short
        t += (1 + model.margin) / model.rate
    assert model.cuts == 0
    assert model.rate == 50
    assert refused <= 0.02 * answers  # was 3.5%
    assert model.margin <= 0.04  # at no more cost than the refusals it spares


async def test_a_stated_limit_lowers_the_ceiling_and_a_long_retry_after_holds_everyone() -> None:
    limiter = AdaptiveLimiter(rate=100)
    limiter.state_limit(10)
    assert limiter.ceiling == limiter.rate == 10
    limiter.state_limit(50)  # a stated limit never raises it
    assert limiter.ceiling == 10
    limiter.answered(rate_limited=True, retry_after=1.2)  # longer than a window: a verdict
    before = time.monotonic()
    await limiter.acquire()
    assert time.monotonic() - before >= 1.1


async def test_the_first_request_goes_alone_and_the_next_an_interval_after_it_came_back() -> None:
    # The first request pays for the connection, so it reaches the gateway late by an
    # unknown time: the next start counted from its own start came too close (nginx
    # refused the second request of a run at its own rate, and the rate was cut).
    limiter, second_started = AdaptiveLimiter(rate=50), asyncio.Event()

    async def second() -> None:
        async with limiter.turn():
            second_started.set()

    async with limiter.turn():
        waiting = asyncio.ensure_future(second())
        await asyncio.sleep(0.05)  # 2.5 intervals: still out, so nothing else starts
        assert not second_started.is_set()
        back = time.monotonic()
    await asyncio.wait_for(waiting, 1.0)
    assert time.monotonic() - back >= 0.02 - 0.001


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    limiter = AdaptiveLimiter(rate=10)
    await limiter.acquire()
    first = asyncio.ensure_future(limiter.acquire())
    second = asyncio.ensure_future(limiter.acquire())
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.wait_for(second, 1.0)  # woken at the first's slot, not stranded


async def test_after_a_stall_starts_keep_their_spacing_instead_of_a_burst() -> None:
    limiter = AdaptiveLimiter(rate=50)  # 20 ms apart
    await limiter.acquire()
    time.sleep(0.3)  # the loop stalls (a slow answer, a GC pause): 15 starts are late
    times = await starts(limiter, callers=5, each=1)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # A start may make up for a timer tick, never for the stall: no pair closer than
    # three quarters of the interval (it used to pay lateness back at half the interval).
    assert min(gaps) >= 0.75 * 0.020 - 0.001


async def test_once_the_gateway_has_refused_no_two_starts_are_closer_than_the_interval() -> None:
    limiter = AdaptiveLimiter(rate=50)
    limiter.answered(rate_limited=True, retry_after=1.2)  # a verdict: it counts every gap now
    limiter._held_until = 0.0  # the test need not wait out the hold
    await limiter.acquire()
    time.sleep(0.1)
    times = await starts(limiter, callers=4, each=2)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1 / limiter.rate - 0.001


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
