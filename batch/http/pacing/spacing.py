"""Starts spaced at the model's rate: one timer wakes waiters in order.

`AdaptiveLimiter` spaces starts at that rate, in the way of aiolimiter's leaky bucket
(one timer, waiters woken in their order, no polling): never two starts closer than the
interval with its margin, lateness after a stall lost rather than paid back in a burst,
and a log of the last starts keeps at most `rate` starts in any window plus a guard. It
keeps time on the monotonic clock: uvloop's loop time is the millisecond its iteration
began, 5% of a 20 ms interval, which a gateway that counts gaps refuses.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
from collections.abc import AsyncIterator
from time import monotonic
from typing import Literal

from batch.http.pacing.acceptance import AcceptanceModel

MAX_HOLD = 60.0  # a longer pause asked for is checked again by the next answer after this
GUARD = 0.015  # of a window: the hard log counts `rate` starts over this much longer
# A woken caller runs a little after its timer (the loop's other work, the wake itself):
# the timer is set that much early, as measured; a stall's lateness is never paid back.
LEAD_WEIGHT = 0.1  # of each new measure of the lateness, in its running mean
MAX_LEAD = 0.002  # seconds, and never more than a quarter interval
TIMER_TICK = 0.001  # uvloop's timers count whole milliseconds of a clock read per tick
_NEGLIGIBLE_WAIT = 0.0005  # waiting out microseconds fired 70 wake-ups per request
_STRICT_NEGLIGIBLE_WAIT = 0.00005  # strict spacing wakes again rather than start early


class AdaptiveLimiter:
    """At most `rate` starts per `period`, evenly spaced, adapting to what the gateway accepts.

    A start counts when its caller runs again, not when it is woken: on a busy loop the
    two can be milliseconds apart, and a gateway that counts arrivals sees the former.
    """

    def __init__(self, rate: float, period: float = 1.0) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.period = period
        self.model = AcceptanceModel(rate, period)
        self._log_window = period * (1 + GUARD)
        self._log: collections.deque[float] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._next_start = -math.inf
        self._last_start = -math.inf  # when the last woken caller ran again
        self._woken = 0  # callers woken that have not run yet
        self._woken_for = math.inf  # the due time the last one was woken for
        self._lead = 0.0  # how late a woken caller runs after its due time, on average
        self._held_until = -math.inf
        # The first turn's request goes alone ("out") until it came back.
        self._first: Literal["to go", "out", "back"] = "to go"

    @property
    def rate(self) -> float:
        """The rate in force now."""
        return self.model.rate

    @property
    def ceiling(self) -> float:
        """The most it will ever allow: the configured rate, or less if the gateway said so."""
        return self.model.ceiling

    @property
    def cuts(self) -> int:
        return self.model.cuts

    async def acquire(self) -> None:
        """Wait for this caller's turn: waiters start in their order, one interval apart."""
        loop = asyncio.get_running_loop()
        now = monotonic()
        if not self._waiters and self._ready(self._due(now, woken=False), now):
            self._scheduled(now)
            self._ran(now)
            return
        waiter = loop.create_future()
        self._waiters.append(waiter)
        self._arm(loop)
        try:
            await waiter  # a cancelled waiter is skipped when its turn comes
        finally:
            if waiter.done() and not waiter.cancelled():
                self._woken -= 1
                now = monotonic()
                late = min(max(now - self._woken_for, 0.0), MAX_LEAD)
                self._lead += LEAD_WEIGHT * (late - self._lead)
                self._ran(now)
                self._arm(loop)

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """A start held while its request is out; the first goes alone, the next an interval
        after it came back (it paid for the connection: when it arrived is unknown)."""
        await self.acquire()
        alone = self._first == "to go"
        if alone:
            self._first = "out"
        try:
            yield
        finally:
            if alone:
                self._first, self._last_start = "back", monotonic()
                self._arm(asyncio.get_running_loop())

    def answered(self, *, rate_limited: bool, retry_after: float | None = None) -> None:
        """Record one answer: refusals in a window may cut the rate; a long Retry-After holds."""
        now = monotonic()
        if rate_limited and retry_after is not None and retry_after > self.period:
            self.hold(retry_after)  # longer than a window: the gateway's quota is spent a while
        self.model.answered(now, refused=rate_limited, retry_after=retry_after)

    def state_limit(self, per_second: float) -> None:
        """The gateway stated its limit: never go above it."""
        self.model.state_limit(per_second)

    def hold(self, seconds: float) -> None:
        """Start nothing for `seconds` (at most MAX_HOLD): the gateway asked for a pause."""
        self._held_until = max(self._held_until, monotonic() + min(seconds, MAX_HOLD))

    def _due(self, now: float, *, woken: bool = True) -> float:
        """When the next start may go: the spacing, a hold, and the hard log all allow it."""
        if self._woken or self._first == "out":
            return math.inf  # the last woken has not run, or the first is out: they time it
        while self._log and self._log[0] <= now - self._log_window:
            self._log.popleft()
        interval = self.period / self.model.rate
        # No start closer than the interval with its margin, woken early by its lateness.
        least = interval * (1 + self.model.margin)
        lead = min(self._lead, interval / 4) if woken else 0.0  # one not woken runs at once
        due = max(self._next_start, self._last_start + least) - lead
        due = max(due, self._held_until)
        if len(self._log) >= max(1, math.floor(self.model.ceiling * self.period)):
            due = max(due, self._log[0] + self._log_window)
        return due

    def _ready(self, due: float, now: float) -> bool:
        """Whether a start due at `due` may go now; only strict spacing waits out microseconds."""
        negligible = _STRICT_NEGLIGIBLE_WAIT if self.model.never_early else _NEGLIGIBLE_WAIT
        return due <= now + negligible

    def _scheduled(self, now: float) -> None:
        """Keep to the schedule: a start a timer tick late is not lost; a stall's lateness is."""
        interval = self.period / self.model.rate * (1 + self.model.margin)
        self._next_start = max(self._next_start + interval, now)

    def _ran(self, now: float) -> None:
        self._last_start = now
        self._log.append(now)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is None and self._waiters:
            now = monotonic()
            due = self._due(now)
            if due != math.inf:
                wait = due - now
                if self.model.never_early:  # nor a tick late
                    wait -= TIMER_TICK  # the timer may fire a tick early; the rest is stepped
                self._timer = loop.call_later(max(wait, 0.0), self._release)

    def _release(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = None
        now = monotonic()
        due = self._due(now)
        if self._waiters and self._ready(due, now) and self._wake_next():
            self._woken += 1
            self._woken_for = due
            self._scheduled(now)
        self._arm(loop)

    def _wake_next(self) -> bool:
        """Wake the first waiter still waiting; False if none was left."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return True
        return False
