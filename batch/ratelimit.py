"""Request-rate limiting: evenly paced starts under a hard sliding-window cap."""

from __future__ import annotations

import asyncio
import time

from asyncio_throttle import Throttler

_NEGLIGIBLE_WAIT = 0.0005


class PacedLimiter:
    """At most `rate` starts in any `period` window, spaced evenly, slowed down on 429.

    asyncio-throttle's sliding log is the hard guarantee, but on its own it lets a
    whole window's quota leave in one burst, which a gateway counting arrivals in a
    sliding window sees as over the limit as soon as network jitter bunches them.
    So each caller first reserves the next evenly spaced slot (first come, first
    served) and sleeps once until it; the log then almost never has to wait.
    `margin` widens the spacing so that jitter of up to `margin` seconds between two
    requests a window apart cannot push a window over.
    """

    __slots__ = (
        "_ceiling",
        "_floor",
        "_interval_margin",
        "_next_slot",
        "_recovery_per_s",
        "_slowed_at",
        "_slowed_rate",
        "_throttler",
        "period",
    )

    def __init__(
        self, rate: float, period: float = 1.0, margin: float = 0.009, recovery: float = 20.0
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.period = period
        self._ceiling = rate
        self._floor = max(rate / 16, 1 / period / 4)
        self._interval_margin = 1.0 + margin
        # The log allows whole requests only; a fractional rate rounds down, never up.
        self._throttler = Throttler(rate_limit=max(1, int(rate)), period=period)
        self._next_slot = 0.0
        self._slowed_rate = rate
        self._slowed_at = -1e18
        self._recovery_per_s = rate / recovery  # from nothing to full speed in `recovery` s

    @property
    def rate(self) -> float:
        """The rate in force now: the ceiling, or less while recovering from a 429."""
        return self._rate_at(time.monotonic())

    def _rate_at(self, now: float) -> float:
        recovered = self._slowed_rate + (now - self._slowed_at) * self._recovery_per_s
        return min(self._ceiling, recovered)

    async def acquire(self) -> None:
        """Wait for this caller's slot, then for the hard window."""
        now = time.monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + self.period / self._rate_at(now) * self._interval_margin
        # Sleeping a few microseconds costs a loop turn and buys nothing: the hard
        # window below still holds, and the schedule above still advances.
        if slot - now > _NEGLIGIBLE_WAIT:
            await asyncio.sleep(slot - now)
        await self._throttler.acquire()

    def slow_down(self, retry_after: float | None) -> None:
        """Halve the rate after a 429 and hold every new start until `retry_after` has passed."""
        now = time.monotonic()
        self._slowed_rate = max(self._floor, self.rate / 2)
        self._slowed_at = now
        if retry_after:
            self._next_slot = max(self._next_slot, now + retry_after)

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *_: object) -> None:
        return None
