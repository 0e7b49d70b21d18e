"""The breakers: the outage circuit, and the answer breaker.

The outage circuit: when the server looks down, stop sending and probe until it is back.

Closed, every request goes out. `threshold` outage-like failures in a row (5xx,
gateway pages, connection errors, timeouts; any other answer resets the count), of
at least `min_items` different items, open it; a few items that fail alone are their
own trouble, not an outage. Open, nobody sends, and after growing waits (1, 2, 4 …
`max_wait` s) one caller goes out as the probe. An answer to the probe closes the
circuit and wakes everyone; a failure doubles the wait. Failures while the circuit
is open cost no item an attempt. An outage longer than `max_outage` ends the run.

An outage is logged: a line when it begins (the cause, since when, the next probe), one
every `report_every` seconds while it lasts, and one when it ends.

The answer breaker: when too many of the last answers could not be used, the API has
probably changed, and the run stops before the quota burns.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import math

from batch.errors import OutageTooLong, RequestError, UnusableAnswers
from batch.log import Log


class OutageCircuit:
    """Holds every sender while the server is down, and lets one probe out at a time."""

    def __init__(
        self,
        threshold: int = 5,
        min_items: int = 3,
        first_wait: float = 1.0,
        max_wait: float = 30.0,
        max_outage: float = 900.0,
    ) -> None:
        self.threshold = threshold
        self.min_items = min_items
        self._failing_items: set[object] = set()
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.max_outage = max_outage
        self._streak = 0
        self._opened_at: float | None = None
        self._wait = first_wait
        self._next_probe = math.inf
        self._probe_out = False
        self._changed = asyncio.Event()
        self.outages = 0
        self.probes = 0
        self.down_seconds = 0.0
        self.last_reason = ""
        self._log: Log | None = None
        self._report_every = 30.0
        self._reports: asyncio.Task[None] | None = None
        self._since = ""  # when the outage under way began, for people (UTC)

    def report_to(self, log: Log, every: float) -> None:
        """Log outages to `log`, with a line every `every` seconds while one lasts."""
        self._log, self._report_every = log, every

    @property
    def outage_seconds(self) -> float:
        """Seconds the server was down in this run, the outage under way included."""
        if self._opened_at is None:
            return self.down_seconds
        return self.down_seconds + asyncio.get_running_loop().time() - self._opened_at

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None

    async def admit(self) -> bool:
        """Return once this caller may send; True if it goes out as the probe."""
        loop = asyncio.get_running_loop()
        while self._opened_at is not None:
            now = loop.time()
            if now - self._opened_at > self.max_outage:
                raise OutageTooLong(
                    f"the API has been down for {now - self._opened_at:.0f} s, longer than "
                    f"the {self.max_outage:.0f} s allowed (last: {self.last_reason})"
                )
            if not self._probe_out and now >= self._next_probe:
                self._probe_out = True
                self.probes += 1
                return True
            until = self._next_probe if not self._probe_out else math.inf
            deadline = min(until, self._opened_at + self.max_outage + 0.001)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - now))
        return False

    def succeeded(self) -> None:
        """The server answered: close the circuit if it was open."""
        self._streak = 0
        self._failing_items.clear()
        if self._opened_at is not None:
            down = asyncio.get_running_loop().time() - self._opened_at
            self.down_seconds += down
            self._opened_at = None
            self._probe_out = False
            self._wait = self.first_wait
            self.stop_reports()
            if self._log is not None:
                self._log.info("outage_over", down_s=round(down, 1), probes=self.probes)
            self._announce()

    def failed(self, reason: str, *, probe: bool, item: object) -> bool:
        """Count an outage-like failure; True if the circuit is open (no attempt is spent)."""
        self.last_reason = reason
        now = asyncio.get_running_loop().time()
        if self._opened_at is not None:
            if probe:
                self._probe_out = False
                self._wait = min(self._wait * 2, self.max_wait)
                self._next_probe = now + self._wait
                self._announce()
            return True
        self._streak += 1
        self._failing_items.add(item)
        if self._streak < self.threshold or len(self._failing_items) < self.min_items:
            return False
        self.outages += 1
        self._opened_at = now
        self._wait = self.first_wait
        self._next_probe = now + self._wait
        if self._log is not None:
            self._since = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            self._log.warning("outage", cause=reason, since=self._since, next_probe_s=self._wait)
            self._reports = asyncio.get_running_loop().create_task(self._report())
        return True

    async def _report(self) -> None:
        """A line every `report_every` seconds while the server stays down."""
        assert self._log is not None
        loop = asyncio.get_running_loop()
        while self._opened_at is not None:
            await asyncio.sleep(self._report_every)
            now = loop.time()
            self._log.warning(
                "outage_continues",
                cause=self.last_reason,
                since=self._since,
                down_s=round(self.outage_seconds),
                next_probe_s=0.0 if self._probe_out else round(max(self._next_probe - now, 0.0), 1),
                probes=self.probes,
            )

    def stop_reports(self) -> None:
        """No more outage lines: the outage ended, or the run did."""
        if self._reports is not None:
            self._reports.cancel()
            self._reports = None

    def abandon_probe(self) -> None:
        """The probe went no further (cancelled, or stopped before sending): let another go."""
        if self._probe_out:
            self._probe_out = False
            self._announce()

    def _announce(self) -> None:
        """Wake every waiter to look at the new state."""
        self._changed.set()
        self._changed = asyncio.Event()


class AnswerBreaker:
    """Stops the run when too many of the last answers could not be used."""

    def __init__(self, window: int, limit: int) -> None:
        self._recent: collections.deque[bool] = collections.deque(maxlen=window)
        self._bad = 0
        self._limit = limit

    def record(self, failure: RequestError | None, path: str = "") -> None:
        if len(self._recent) == self._recent.maxlen:
            self._bad -= self._recent[0]
        self._recent.append(failure is not None)
        self._bad += failure is not None
        if failure is not None and self._bad >= self._limit:
            raise UnusableAnswers(
                f"{self._bad} of the last {len(self._recent)} answers could not be used "
                f"(last: {path}: {failure.reason}); the API may have changed: stopping before the "
                "quota burns"
            )
