"""What a gateway says of its limits in its answer headers (pure parsing).

Kong (a common API gateway) sends `X-RateLimit-Limit-<Window>` and
`X-RateLimit-Remaining-<Window>` for each configured window, and the IETF draft's
`RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` for the tightest one.
Header names are looked up lower-case.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

_WINDOW_SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}


@dataclass(frozen=True, slots=True)
class StatedLimits:
    """The gateway's own word on one answer: a rate never to exceed, and a pause it asks for."""

    per_second: float | None  # the tightest stated window, as requests per second
    hold_for: float | None  # seconds until the spent window resets (remaining was 0)
    day_limit: int | None
    day_remaining: int | None


def stated_limits(headers: Mapping[str, str]) -> StatedLimits:
    """Read every rate-limit header the gateway sent; absent or unreadable ones are None."""
    rates = [
        limit / seconds
        for window, seconds in _WINDOW_SECONDS.items()
        if (limit := _int(headers.get(f"x-ratelimit-limit-{window}"))) is not None and limit > 0
    ]
    hold = None
    if _int(headers.get("ratelimit-remaining")) == 0:
        hold = _float(headers.get("ratelimit-reset"))
    for window, seconds in _WINDOW_SECONDS.items():
        if _int(headers.get(f"x-ratelimit-remaining-{window}")) == 0 and hold is None:
            hold = _float(headers.get("ratelimit-reset")) or seconds
    if hold is not None and hold <= 1.0:
        # A spent second: the pacing under the stated limit already spreads the next ones,
        # and Kong rounds the reset up to a whole second, so waiting it out halves the rate.
        hold = None
    return StatedLimits(
        per_second=min(rates) if rates else None,
        hold_for=hold,
        day_limit=_int(headers.get("x-ratelimit-limit-day")),
        day_remaining=_int(headers.get("x-ratelimit-remaining-day")),
    )


def retry_after(headers: Mapping[str, str], now: dt.datetime | None = None) -> float | None:
    """Seconds the server asked us to wait: delta-seconds or an HTTP date."""
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    seconds = _float(value)
    if seconds is not None:
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


def _int(value: str | None) -> int | None:
    try:
        return None if value is None else int(value.strip())
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return None if value is None else float(value.strip())
    except ValueError:
        return None
