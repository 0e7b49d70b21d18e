"""The daily cap the API reports, and the reserve the job leaves to the live app."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(slots=True)
class DailyQuota:
    """Tracks each API's remaining daily cap and refuses to spend the reserve.

    The gateway reports the remaining cap on every answer, but requests in flight
    are not counted in it yet, so the estimate subtracts them: the job never goes
    below the reserve even with `concurrency` requests on the wire.
    """

    reserve: int
    remaining: dict[str, int] = field(default_factory=dict)
    limit: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)

    def try_spend(self, apis: Iterable[str]) -> bool:
        """Take one request of each API from the estimate, or none if any would hit the reserve."""
        apis = tuple(apis)
        if any(api in self.remaining and self.remaining[api] - 1 < self.reserve for api in apis):
            return False
        for api in apis:
            if api in self.remaining:
                self.remaining[api] -= 1
            self.in_flight[api] = self.in_flight.get(api, 0) + 1
        return True

    def settle(self, api: str, remaining: int | None, limit: int | None) -> None:
        """Record one answer of `api` and what it said of the cap, if anything."""
        self.in_flight[api] = max(0, self.in_flight.get(api, 0) - 1)
        if limit is not None:
            self.limit[api] = limit
        if remaining is not None:
            # Answers can arrive out of order, so an older, higher reading never
            # raises the estimate; a reset during a run only makes us pause early.
            estimate = remaining - self.in_flight[api]
            self.remaining[api] = min(self.remaining.get(api, estimate), estimate)
