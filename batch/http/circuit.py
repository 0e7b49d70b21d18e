"""The outage circuit: when the server looks down, stop sending and probe until it is back.

Closed, every request goes out. `threshold` outage-like failures in a row (5xx,
gateway pages, connection errors, timeouts; any other answer resets the count), of
at least `min_items` different items, open it; a few items that fail alone are their
own trouble, not an outage. Open, nobody sends, and after growing waits (1, 2, 4 …
`max_wait` s) one caller goes out as the probe. An answer to the probe closes the
circuit and wakes everyone; a failure doubles the wait. Failures while the circuit
is open cost no item an attempt. An outage longer than `max_outage` ends the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import math

from batch.errors import OutageTooLong


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
            self.down_seconds += asyncio.get_running_loop().time() - self._opened_at
            self._opened_at = None
            self._probe_out = False
            self._wait = self.first_wait
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
        return True

    def abandon_probe(self) -> None:
        """The probe went no further (cancelled, or stopped before sending): let another go."""
        if self._probe_out:
            self._probe_out = False
            self._announce()

    def _announce(self) -> None:
        """Wake every waiter to look at the new state."""
        self._changed.set()
        self._changed = asyncio.Event()
