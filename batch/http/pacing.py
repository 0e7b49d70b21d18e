"""Request pacing that settles near a gateway's real limit: one timer wakes waiters in order.

The rate starts at the configured ceiling. A 429 cuts it, at most once per
window, to a fraction of what the gateway accepted in the last window; then the rate
probes upward again, slowly while 429s are recent and faster after a quiet spell. A
limit the gateway states in its headers lowers the ceiling, never raises it.

asyncio-throttle's sliding log stays the hard guarantee of at most `ceiling` starts
in any window; the pacing in front of it spaces starts evenly, so that a gateway
counting arrivals never sees a window's quota arrive as one burst.
"""

from __future__ import annotations

import asyncio
import collections
import math

from asyncio_throttle import Throttler

CUT_TO = 0.9  # of what the gateway accepted in the last window
DEEP_CUT = 0.5  # a cut to less than this share of the rate means the window is overfull
QUIET_AFTER = 30.0  # seconds without a 429 before probing fast again
SLOW_GROWTH = 0.02  # of the rate per second, while 429s are recent
FAST_GROWTH = 0.05  # of the ceiling per second, after a quiet spell
# A gateway's word on a longer pause (an hour's window spent) is checked again after this:
# the next answer says whether to wait on, and a run never sleeps into its watchdog.
MAX_HOLD = 60.0
_NEGLIGIBLE_WAIT = 0.0005


class AdaptiveLimiter:
    """At most `rate` starts per `period`, evenly spaced, adapting to the gateway's 429s."""

    def __init__(self, rate: float, period: float = 1.0, margin: float = 0.009) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.period = period
        self._configured = rate
        self._ceiling = rate
        self._rate = rate
        self._margin = 1.0 + margin
        self._floor = min(rate, 0.5 / period)
        self._throttler = Throttler(rate_limit=max(1, math.floor(rate * period)), period=period)
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._next_start = 0.0
        self._held_until = 0.0
        self._grown_at = 0.0
        self._last_cut = -math.inf
        self._last_429 = -math.inf
        self._accepted: collections.deque[float] = collections.deque()
        self._first_start = 0.0
        self.cuts = 0

    @property
    def rate(self) -> float:
        """The rate in force now."""
        return self._rate

    @property
    def ceiling(self) -> float:
        """The most it will ever allow: the configured rate, or less if the gateway said so."""
        return self._ceiling

    async def acquire(self) -> None:
        """Wait for this caller's turn, then for the hard window."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not self._waiters and self._due(now):
            self._started(now)
        else:
            waiter = loop.create_future()
            self._waiters.append(waiter)
            self._arm(loop)
            await waiter  # a cancelled waiter is skipped when its turn comes
        await self._throttler.acquire()

    def answered(self, *, rate_limited: bool, retry_after: float | None = None) -> None:
        """Record one answer: a 429 may cut the rate; anything else was accepted."""
        now = asyncio.get_running_loop().time()
        if not rate_limited:
            self._accepted.append(now)
            return
        self._last_429 = now
        if retry_after is not None and retry_after > self.period:
            # Longer than one window: the gateway's quota is spent for a while; all wait.
            self.hold(retry_after)
        if now - self._last_cut < self.period:
            return  # one cut per window: the 429s of requests already sent say nothing new
        self._last_cut = now
        self.cuts += 1
        while self._accepted and self._accepted[0] <= now - self.period:
            self._accepted.popleft()
        # Early in a run less than a window has been seen: measure over what has been.
        seen = min(self.period, now - self._first_start) if self._first_start else self.period
        accepted = len(self._accepted) * self.period / max(seen, self.period / 10)
        cut = accepted * CUT_TO if accepted else self._rate / 2
        new_rate = max(self._floor, min(self._rate, cut))
        if new_rate < self._rate * DEEP_CUT and retry_after:
            # Far above the limit, the gateway's window is overfull: what starts before it
            # drains is refused too. Waiting out its Retry-After once spares those 429s.
            self.hold(min(retry_after, self.period))
        self._set_rate(new_rate, now)

    def state_limit(self, per_second: float) -> None:
        """The gateway stated its limit: never go above it."""
        if per_second < self._ceiling:
            self._ceiling = max(per_second, self._floor)
            self._throttler.rate_limit = max(1, math.floor(self._ceiling * self.period))
            self._set_rate(min(self._rate, self._ceiling), asyncio.get_running_loop().time())

    def hold(self, seconds: float) -> None:
        """Start nothing for `seconds` (at most MAX_HOLD): the gateway asked for a pause."""
        loop = asyncio.get_running_loop()
        self._held_until = max(self._held_until, loop.time() + min(seconds, MAX_HOLD))

    def _set_rate(self, rate: float, now: float) -> None:
        self._rate = rate
        self._grown_at = now

    def _grow(self, now: float) -> None:
        elapsed = now - self._grown_at
        self._grown_at = now
        if self._rate >= self._ceiling or elapsed <= 0:
            return
        if now - self._last_429 < QUIET_AFTER:
            step = self._rate * SLOW_GROWTH
        else:
            step = self._ceiling * FAST_GROWTH
        self._rate = min(self._ceiling, self._rate + step * elapsed)

    def _started(self, now: float) -> None:
        self._first_start = self._first_start or now
        self._grow(now)
        interval = self.period / self._rate * self._margin
        # Keep to the schedule after a late wake-up, so lateness does not add up, but never
        # two starts at once: a pair would eat the jitter margin at a window's edge.
        self._next_start = max(self._next_start + interval, now + interval / 2)

    def _due(self, now: float) -> bool:
        """A start is due; within half a millisecond counts, as the loop's timers are no finer.

        uvloop rounds timers to the millisecond: waiting out a few microseconds more would
        fire the timer again and again in the same millisecond (measured: 70 wake-ups per
        request at an unthrottled rate).
        """
        return now + _NEGLIGIBLE_WAIT >= self._next_start and now >= self._held_until

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is None and self._waiters:
            self._timer = loop.call_at(max(self._next_start, self._held_until), self._release)

    def _release(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = None
        now = loop.time()
        while self._waiters and self._due(now):
            if self._wake_next():
                self._started(now)
        self._arm(loop)

    def _wake_next(self) -> bool:
        """Wake the first waiter still waiting; False if none was left."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return True
        return False
