"""The rate to send at, from what the gateway accepts: its limit told from its noise.

`AcceptanceModel` (pure: the clock is passed in) models the gateway by what it accepts,
as BBR models a path by its delivery rate rather than by its losses. Every answer is
kept for one window; a judgement every quarter window reads the refused share:

* over `OVER_SHARE` (`GAPS_OVER_SHARE` once the gateway counts gaps, see below) with at
  least `MIN_REFUSED` refusals, `GROSS_REFUSED` in a quarter window, or a Retry-After
  longer than a window: the job is over the limit. A lone 429 is noise, retried by its
  request and nothing more. The first cut goes a little under what the gateway accepted;
  later ones step down by `LATER_CUT` at most.
* probing past a limit found before, one refusal is enough: back to the last good rate.
* clean: the rate is held for a plateau, then probes upward, slowly and then faster,
  so that a limit that moved up (a live app that went quiet) is found in seconds.

A refusal naming no wait at a rate the gateway took says it counts every gap (nginx's
limit_req without burst): jitter on the way, not the rate. The spacing's margin then
widens with each refusal and narrows with each accepted answer until about
`REFUSED_AIM` are refused, and the plateau grows while cuts land at the same rate.
A gateway that names a wait counts a window, as one a live app shares does.
"""

from __future__ import annotations

import collections
import math

OVER_SHARE = 0.03  # refused share of a window's answers that says the job is over the limit
GAPS_OVER_SHARE = 0.25  # it refuses half of a rate a hair over its limit, a few for jitter
MIN_REFUSED = 3  # one or two refusals are never a verdict: noise, or a gap a hair short
GROSS_REFUSED, GROSS_SHARE = 3, 0.25  # so far over that the last quarter window tells
JUDGE_EVERY = 0.25  # of a window
FIRST_PLATEAU = 1.0  # windows a new rate is held before probing upward
MAX_PLATEAU = 16.0  # windows, when cuts keep landing at the same rate
LATER_CUT = 0.1  # the deepest cut once a limit was found: the next ones step down
SAME_RATE = 0.05  # two cuts within this share of each other found the same limit
PROBE_START = 0.02  # of the rate per window, right after the plateau
PROBE_MAX = 0.25  # of the rate per window, after doubling each window of clean answers
MARGIN = 0.005  # the spacing's margin over the interval, for jitter on the way
STRICT_MARGIN = 0.02  # ... after a cut or a refusal at a rate taken
MARGIN_STEP, MAX_MARGIN = 0.005, 0.1  # a refusal below the last good rate widens it so far
REFUSED_AIM = 0.01  # each accepted answer narrows it: a refusal costs one request


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
        self.margin = MARGIN  # the spacing's, over the interval (see the module docstring)
        self.strict = False
        self.gaps_counted = False  # it refused without naming a wait, at a rate it took

    @property
    def never_early(self) -> bool:
        """Whether the gateway may count every gap: it refused lately, or a rate it took."""
        return self.strict or self.margin > MARGIN

    def answered(self, now: float, *, refused: bool, retry_after: float | None = None) -> bool:
        """Record one answer; True if it cut the rate."""
        if self._since == -math.inf:
            self._since = self._judged = self._steady_from = now
        self._answers.append((now, refused))
        if refused and self.rate <= self._good and (self.cuts or retry_after is None):
            # Refused at a rate taken: the gaps, not the rate; a stray 429 names a wait.
            self.gaps_counted |= retry_after is None
            self.margin = min(MAX_MARGIN, max(self.margin + MARGIN_STEP, STRICT_MARGIN))
            self.strict = True
        elif not refused:
            self.margin = max(MARGIN, self.margin - MARGIN_STEP * REFUSED_AIM / (1 - REFUSED_AIM))
        if refused and retry_after is not None and retry_after > self.period:
            return self._cut(now)  # the gateway says its window is spent: no doubt left
        if refused and self.rate > self._good and self._failed_at < math.inf:
            # Past a limit found before: back to the good rate, or a step if that lags.
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
        # Jitter a gateway counts is the margin's to absorb, until it is as wide as it goes.
        absorbing = self.gaps_counted and self.margin < MAX_MARGIN - MARGIN_STEP
        over = GAPS_OVER_SHARE if absorbing else OVER_SHARE
        if refused >= MIN_REFUSED and refused > over * len(self._answers):
            return self._cut(now)
        self._remember_good(now)
        self._probe(now)
        return False

    def _far_over(self, now: float) -> bool:
        """The last quarter window's refusals say the job is far over the limit: two at the
        start, before any verdict, as a start far over a strict limit is."""
        since = now - JUDGE_EVERY * self.period
        recent = refused = 0
        for when, was_refused in reversed(self._answers):
            if when <= since:
                break
            recent += 1
            refused += was_refused
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
        if len(took) >= 2 and span > 0:
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
        # Found again at the same rate: a strict gateway's limit, not a live app's swing.
        same = abs(new_rate - self._last_cut_rate) <= SAME_RATE * new_rate
        if same and self.gaps_counted:
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
