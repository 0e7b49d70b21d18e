"""The gateway's quotas in the sandbox: sliding windows, the daily cap, and a live app's share.

Pure, like jobs/sandbox/rules.py that calls it: the state is passed in, the clock too.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobs.sandbox.config import SandboxConfig
from jobs.sandbox.truth import Answer, Headers, gateway

if TYPE_CHECKING:
    from jobs.sandbox.rules import SandboxState, SandboxStats


@dataclass(slots=True)
class Window:
    """Arrival times admitted in the last `size` seconds: a sliding quota window."""

    size: float
    times: deque[float] = field(default_factory=deque)

    def used(self, now: float) -> int:
        while self.times and now - self.times[0] >= self.size:
            self.times.popleft()
        return len(self.times)

    def reset_in(self, now: float) -> int:
        """Whole seconds until the oldest admitted request leaves the window."""
        if not self.times:
            return math.ceil(self.size)
        return max(1, math.ceil(self.times[0] + self.size - now))


def limit_answer(
    config: SandboxConfig, state: SandboxState, now: float
) -> tuple[Answer | None, Headers]:
    """A 429 when a sliding window is full (else count the request), and the limit headers."""
    if config.app_load:
        app_arrivals(config, state, now)
    windows = [
        (name, limit, window)
        for name, limit, window in (
            ("Second", config.rate_limit, state.second),
            ("Minute", config.minute_limit, state.minute),
        )
        if limit is not None
    ]
    full = [window for _, limit, window in windows if window.used(now) >= limit]
    if not full:
        for _, _, window in windows:
            window.times.append(now)
    headers = limit_headers(windows, now) if config.limit_headers else ()
    if not full:
        return None, headers
    state.stats.over_limit += 1
    retry = max(window.reset_in(now) for window in full)  # 1 for the second's window
    return gateway(429, "API rate limit exceeded", (*headers, ("Retry-After", str(retry)))), headers


def app_arrivals(config: SandboxConfig, state: SandboxState, now: float) -> None:
    """The live app's requests since the last call, counted into the windows it shares.

    They are stamped `now`: the windows are looked at only when a request comes, and a
    request comes every few milliseconds when the quota matters. Never more than a
    window's worth is owed, so an idle spell does not arrive as one burst.
    """
    peak, period = config.app_load or 0.0, max(config.app_period, 1e-3)
    if state.app_since is None:
        state.app_since = state.app_until = now
    start, since = max(state.app_until, now - 1.0), state.app_since

    def sent_by(t: float) -> float:  # the integral of peak * (1 - cos(2 pi x / period)) / 2
        phase = 2 * math.pi * (t - since) / period
        return peak / 2 * ((t - since) - period / (2 * math.pi) * math.sin(phase))

    state.app_owed += max(0.0, sent_by(now) - sent_by(start))
    state.app_until = now
    windows = [
        (limit, window)
        for limit, window in (
            (config.rate_limit, state.second),
            (config.minute_limit, state.minute),
        )
        if limit is not None
    ]
    while state.app_owed >= 1.0:
        state.app_owed -= 1.0
        if any(window.used(now) >= limit for limit, window in windows):
            state.stats.app_refused += 1
            continue
        state.stats.app_admitted += 1
        for _, window in windows:
            window.times.append(now)


def limit_headers(windows: list[tuple[str, int, Window]], now: float) -> Headers:
    """Kong's headers: each window's limit and what remains, and RateLimit-* for the tightest."""
    headers: list[tuple[str, str]] = []
    tightest: tuple[int, float, int, int] | None = None  # (remaining, -size, limit, reset)
    for name, limit, window in windows:
        remaining = max(0, limit - window.used(now))
        headers += [
            (f"X-RateLimit-Limit-{name}", str(limit)),
            (f"X-RateLimit-Remaining-{name}", str(remaining)),
        ]
        # Kong states the window with the least left; on a tie, the longer one.
        candidate = (remaining, -window.size, limit, window.reset_in(now))
        tightest = candidate if tightest is None else min(tightest, candidate)
    if tightest is not None:
        remaining, _, limit, reset = tightest
        headers += [
            ("RateLimit-Limit", str(limit)),
            ("RateLimit-Remaining", str(remaining)),
            ("RateLimit-Reset", str(reset)),
        ]
    return tuple(headers)


def day_answer(
    config: SandboxConfig, stats: SandboxStats, api: str, headers: Headers
) -> tuple[Answer | None, Headers]:
    """A 429 over the daily cap (else count the request), and the headers with the day's."""
    cap = config.daily_cap
    if cap is None:
        return None, headers
    if stats.day_used[api] >= cap:
        return gateway(429, "API rate limit exceeded", (*headers, *_day(cap, 0))), headers
    stats.day_used[api] += 1
    return None, (*headers, *_day(cap, cap - stats.day_used[api]))


def _day(limit: int, remaining: int) -> Headers:
    return (("X-RateLimit-Limit-Day", str(limit)), ("X-RateLimit-Remaining-Day", str(remaining)))
