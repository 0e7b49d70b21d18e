"""Request pacing that tells a gateway's limit from its noise: one timer wakes waiters in order.

`AcceptanceModel` (pure: the clock is passed in) models the gateway by what it accepts,
as BBR models a path by its delivery rate rather than by its losses. Every answer is
kept for one window; a judgement every quarter window reads the refused share:

* over `OVER_SHARE` (with at least `MIN_REFUSED` refusals; a lone 429 among accepted
  answers is noise, retried by its request and nothing more), `GROSS_REFUSED` in a
  quarter window, or a Retry-After longer than a window: the job is over the limit.
  The first cut goes a little under what the gateway accepted; once a limit was found,
  cuts step down by `LATER_CUT` at most, for a strict gateway refuses half of a rate a
  hair over its limit, and what it accepted then says little.
* probing past a limit found before, one refusal is enough: back to the last good rate.
* clean: the rate is held for a plateau (growing while cuts keep landing at the same
  rate, as against a strict gateway), then probes upward, slowly and then faster,
  so that a limit that moved up (a live app that went quiet) is found in seconds.

`AdaptiveLimiter` spaces starts at that rate, in the way of aiolimiter's leaky bucket
(one timer, waiters woken in their order, no polling): never two starts closer than the
interval with its margin, lateness after a stall lost rather than paid back in a burst,
and a log of the last starts keeps at most `rate` starts in any window plus a guard, so
that a loaded machine that delays a few requests on their way out does not crowd a
window at the server. It keeps time on the monotonic clock: uvloop's loop time is the
millisecond its iteration began, and spacing measured on it jittered by 5% of a 20 ms
interval, which a gateway that counts every gap (nginx's limit_req without burst) refuses.
"""

from __future__ import annotations

import asyncio
import collections
import math
from time import monotonic

OVER_SHARE = 0.03  # refused share of a window's answers that says the job is over the limit
MIN_REFUSED = 3  # one or two refusals are never a verdict: noise, or a gap a hair short
GROSS_REFUSED, GROSS_SHARE = 3, 0.25  # so far over that the last quarter window tells
JUDGE_EVERY = 0.25  # of a window
FIRST_PLATEAU = 1.0  # windows a new rate is held before probing upward
MAX_PLATEAU = 16.0  # windows, when cuts keep landing at the same rate
LATER_CUT = 0.1  # the deepest cut once a limit was found: the next ones step down
SAME_RATE = 0.05  # two cuts within this share of each other found the same limit
PROBE_START = 0.02  # of the rate per window, right after the plateau
PROBE_MAX = 0.25  # of the rate per window, after doubling each window of clean answers
# A gateway's word on a longer pause (an hour's window spent) is checked again after this:
# the next answer says whether to wait on, and a run never sleeps into its watchdog.
MAX_HOLD = 60.0
MARGIN = 0.005  # the spacing's margin over the interval, for jitter on the way
STRICT_MARGIN = 0.02  # ... after a cut; it narrows back to MARGIN while answers are clean
MARGIN_STEP, MAX_MARGIN = 0.01, 0.1  # a refusal below the last good rate widens it so far
GUARD = 0.015  # of a window: the hard log counts `rate` starts over this much longer
# A woken caller runs a little after its timer (the loop's other work, the wake itself):
# the timer is set that much early, as measured, so that spacing is not that much wider.
# A stall's lateness is lost, never paid back, and the hard log keeps any window at the rate.
LEAD_WEIGHT = 0.1  # of each new measure of the lateness, in its running mean
MAX_LEAD = 0.002  # seconds, and never more than a quarter interval
TIMER_TICK = 0.001  # uvloop's timers count whole milliseconds of a clock read per tick
_NEGLIGIBLE_WAIT = 0.0005
_STRICT_NEGLIGIBLE_WAIT = 0.00005  # strict spacing wakes again rather than start early


class AcceptanceModel:
    """The rate to send at, from the answers of the last window (pure; times in seconds)."""

    def __init__(self, ceiling: float, period: float = 1.0) -> None:
        self.ceiling = ceiling
        self.period = period
        self.rate = ceiling
        self.floor = min(ceiling, 0.5 / period)
        self.cuts = 0
        self._good = ceiling  # the highest rate a whole clean window was sent at
        self._answers: collections.deque[tuple[float, bool]] = collections.deque()
        self._since = -math.inf  # answers before this (a cut, the start) do not count
        self._judged = -math.inf
        self._held_rates: collections.deque[tuple[float, float]] = collections.deque()
        self._steady_from = -math.inf  # probing starts a plateau after this
        self._plateau = FIRST_PLATEAU * period
        self._last_cut_rate = 0.0
        self._failed_at = math.inf  # the rate the last cut was made at
        # The spacing's margin over the interval: small until the gateway has refused the
        # job, then whatever keeps refusals rare, for a gateway that counts every gap
        # (nginx's limit_req without burst) sees the jitter of a busy machine as bursts.
        self.margin = MARGIN
        self.strict = False

    @property
    def never_early(self) -> bool:
        """Whether the gateway may count every gap: it refused lately, or a rate it took."""
        return self.strict or self.margin > MARGIN

    def answered(self, now: float, *, refused: bool, retry_after: float | None = None) -> bool:
        """Record one answer; True if it cut the rate."""
        if self._since == -math.inf:
            self._since = self._judged = self._steady_from = now
        self._answers.append((now, refused))
        if refused and self.cuts and self.rate <= self._good:
            self.margin = min(MAX_MARGIN, self.margin + MARGIN_STEP)
            self.strict = True
        if refused and retry_after is not None and retry_after > self.period:
            return self._cut(now)  # the gateway says its window is spent: no doubt left
        if refused and self.rate > self._good and self._failed_at < math.inf:
            # Probing past a limit found before: back to the last good rate, or (while the
            # limit climbs and the good rate lags) a step below the one refused.
            return self._cut(now, to=max(self._good, self.rate * (1 - LATER_CUT / 2)))
        if refused and self._far_over(now):
            return self._cut(now)  # no need to wait for half a window
        if now - self._judged < JUDGE_EVERY * self.period:
            return False
        return self.judge(now)

    def judge(self, now: float) -> bool:
        """Read the last window: cut if it says the job is over the limit, else maybe probe."""
        self._judged = now
        while self._answers and self._answers[0][0] <= now - self.period:
            self._answers.popleft()
        seen = min(self.period, now - self._since)
        refused = sum(1 for _, was_refused in self._answers if was_refused)
        if seen < self.period / 2:
            return False  # too little since the last cut to say anything new
        if refused >= MIN_REFUSED and refused > OVER_SHARE * len(self._answers):
            return self._cut(now)
        if not refused:  # clean: the margin narrows back, and with it strict spacing ends
            self.margin = max(MARGIN, self.margin - MARGIN_STEP / 20)
        self._remember_good(now)
        self._probe(now)
        return False

    def _far_over(self, now: float) -> bool:
        """The last quarter window's refusals say the job is far over the limit."""
        since = now - JUDGE_EVERY * self.period
        recent = refused = 0
        for when, was_refused in reversed(self._answers):
            if when <= since:
                break
            recent += 1
            refused += was_refused
        # Before any verdict the job may start far over a strict limit: two tell then.
        least = GROSS_REFUSED - (not self.cuts and now - self._since < self.period)
        return refused >= least and refused > GROSS_SHARE * recent

    def state_limit(self, per_second: float) -> None:
        """The gateway stated its limit: never go above it."""
        if per_second < self.ceiling:
            self.ceiling = max(per_second, self.floor)
            self.rate = min(self.rate, self.ceiling)
            self._good = min(self._good, self.ceiling)

    def _cut(self, now: float, to: float | None = None) -> bool:
        # What the gateway accepted per second, over the span its answers came in: the
        # first answers of a run come late (connections are being made), not fewer.
        first = self._answers[0][0] if self._answers else now
        seen = max(min(self.period, now - first), self.period / 10)
        took = [when for when, refused in self._answers if not refused]
        span = took[-1] - took[0] if took else 0.0
        # n accepted answers span n - 1 of the intervals of a gateway that spaces them.
        if len(took) >= 3 and span > 0:
            accepted = (len(took) - 1) * self.period / span
        else:
            accepted = len(took) * self.period / seen
        # Probing above the last good rate found the limit: back to that rate. Otherwise
        # the limit came down to meet the job: what the gateway takes now.
        probing = self.rate > self._good
        if not self.cuts:  # answers come back closer than they went out: a little under
            accepted *= 1 - 2 * OVER_SHARE
        if to is not None:
            new_rate = to
        else:
            new_rate = max(accepted, self._good) if probing else accepted
            if self.cuts:  # near a limit found before: a step (see the module docstring)
                new_rate = max(new_rate, self.rate * (1 - LATER_CUT))
        # A window begun at a cut may still hold refusals the cut has not reached: never
        # below half the rate in one cut; the next window cuts again if it must.
        new_rate = max(self.floor, self.rate / 2, min(self.rate, new_rate))
        if abs(new_rate - self._last_cut_rate) <= SAME_RATE * new_rate:
            self._plateau = min(self._plateau * 4, MAX_PLATEAU * self.period)
        else:
            self._plateau = FIRST_PLATEAU * self.period
        self._last_cut_rate = new_rate
        # The limit lies near what was accepted when the refusals were many: a rate far
        # above it says nothing about where to probe.
        self._failed_at = min(self.rate, max(new_rate, accepted) * (1 + 2 * OVER_SHARE))
        self.rate = self._good = new_rate
        self.cuts += 1
        self.margin = max(self.margin, STRICT_MARGIN)
        self._answers.clear()
        self._held_rates.clear()
        self._since = self._steady_from = self._judged = now
        return True

    def _remember_good(self, now: float) -> None:
        """The rate held a whole window ago has now had a clean window: it is good."""
        self._held_rates.append((now, self.rate))
        while len(self._held_rates) > 1 and self._held_rates[1][0] <= now - self.period:
            self._held_rates.popleft()
        when, rate = self._held_rates[0]
        if when <= now - self.period + JUDGE_EVERY * self.period:
            self._good = max(self._good, rate)

    def _probe(self, now: float) -> None:
        if self.rate >= self.ceiling:
            return
        steady = now - self._steady_from - self._plateau
        if steady <= 0:
            return
        if self.rate < self._good:  # below the last good rate (a stated limit lifted): back
            self.rate = min(self._good, self.ceiling)
            return
        # Far below the rate that failed, close a quarter of the gap each judgement; near
        # it (or past it: the limit moved up), probe slowly, faster the longer all is well.
        gap = (self._failed_at - self.rate) / self.rate if self._failed_at < math.inf else 0
        growth = max(min(gap, 1.0), min(PROBE_MAX, PROBE_START * 2 ** (steady / self.period)))
        self.rate = min(self.ceiling, self.rate * (1 + growth * JUDGE_EVERY))


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
        if self._woken:
            return math.inf  # the one woken last has not run yet: its run times the next
        while self._log and self._log[0] <= now - self._log_window:
            self._log.popleft()
        interval = self.period / self.model.rate
        # A gateway may count every gap (nginx's limit_req without burst does): no start
        # closer than the interval with its margin, woken early by the measured lateness.
        least = interval * (1 + self.model.margin)
        lead = min(self._lead, interval / 4) if woken else 0.0  # one not woken runs at once
        due = max(self._next_start, self._last_start + least) - lead
        due = max(due, self._held_until)
        if len(self._log) >= max(1, math.floor(self.model.ceiling * self.period)):
            due = max(due, self._log[0] + self._log_window)
        return due

    def _ready(self, due: float, now: float) -> bool:
        """Whether a start due at `due` may go now: within half a millisecond, unless the
        gateway counts every gap (its timers are no finer; measured with uvloop, waiting
        out microseconds fired 70 wake-ups per request)."""
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
