"""What the emulator can be told to do: its config, faults and outages, and how to spell them.

Pure: specs are parsed here for the CLI flags (`--fault`, `--outage`) and for the control
endpoint (`POST /_sandbox/configure` with a JSON object of `SandboxConfig` fields).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobs.sandbox.hostile import HOSTILE_KINDS

FAULT_KINDS = (
    "http500",  # plain-text 500, no platform body
    "http503",  # 503 with Retry-After
    "http429",  # gateway 429 with Retry-After, as if another client used the quota
    "html",  # 502 HTML error page
    "truncated",  # 200 with JSON cut short
    "notjson",  # 200 with a non-JSON body
    "reset",  # connection dropped without an answer
    "slow",  # answers after `slow_seconds`, past any sane client timeout
    "unknown_result",  # 200 with result "maybe" (register) / vtAccList not a list (consent)
    "unknown_shape",  # 200 {"data": []}: JSON with neither the answer nor a platform error
    "redirect",  # 302 with Location, as a moved gateway answers
    "duplicate",  # the true answer, then the same bytes again on the connection
    "endless_headers",  # a status line, then header lines until the client leaves
    "huge_body",  # a 200 whose JSON body is far larger than any answer
    "echo",  # a platform error quoting the CI and the key, with a 100 KB code (hostile)
    *HOSTILE_KINDS,  # the attacks of jobs/sandbox/hostile.py
)
OUTAGE_KINDS = ("html", "http503", "reset", "refused")


@dataclass(frozen=True, slots=True)
class Fault:
    """Inject `kind` on `api` ("*" for both): at random, on each pair's first attempts, or on
    every attempt about a share of the customers until the fault is taken away (healed)."""

    kind: str
    probability: float = 0.0
    first_attempts: int = 0
    api: str = "*"
    cis: frozenset[str] = frozenset()  # only these CIs, when given
    customers: float = 0.0  # this share of customers, chosen by their CI, fails until healed

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """`KIND:P[:API]` (random), `KIND:firstN[:API]` (first N attempts of each pair) or
        `KIND:customersP[:API]` (every attempt about a share P of customers, until healed)."""
        kind, _, rest = spec.partition(":")
        amount, _, api = rest.partition(":")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        api = api or "*"
        if amount.startswith("first"):
            return cls(kind, first_attempts=int(amount[5:]), api=api)
        if amount.startswith("customers"):
            return cls(kind, customers=float(amount[9:]), api=api)
        return cls(kind, probability=float(amount or 1), api=api)


@dataclass(frozen=True, slots=True)
class Outage:
    """For `seconds` from `start` (a `time.monotonic()` value) every API request fails."""

    kind: str  # html (nginx 502 page) | http503 | reset | refused (nothing listens)
    seconds: float
    start: float

    def covers(self, now: float) -> bool:
        return self.start <= now < self.start + self.seconds

    @classmethod
    def parse(cls, spec: str, now: float) -> Outage:
        """`KIND:SECONDS[@AFTER]`: SECONDS long, starting AFTER seconds from `now`."""
        kind, _, rest = spec.partition(":")
        seconds, _, after = rest.partition("@")
        delay = _number(after or "0", spec)
        if delay < 0:
            raise ValueError(f"{spec!r}: AFTER must be >= 0")
        return cls.starting(kind, _number(seconds, spec), now + delay)

    @classmethod
    def starting(cls, kind: str, seconds: float, start: float) -> Outage:
        """A checked outage."""
        if kind not in OUTAGE_KINDS:
            raise ValueError(f"unknown outage {kind!r}; known: {', '.join(OUTAGE_KINDS)}")
        if seconds <= 0:
            raise ValueError("an outage needs SECONDS > 0")
        return cls(kind, seconds, start)


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Everything the emulator does; replace it whole at runtime with `Sandbox.configure`."""

    api_key: str = "sandbox-key"
    rate_limit: int | None = None  # requests per sliding second, both APIs together
    minute_limit: int | None = None  # requests per sliding minute, both APIs together
    limit_headers: bool = False  # state the limits as Kong does (X-RateLimit-*, RateLimit-*)
    daily_cap: int | None = None  # per API
    latency: float = 0.0  # seconds added to every answer
    slow_seconds: float = 30.0
    faults: tuple[Fault, ...] = ()
    answer_salt: str = ""
    seed: int = 7
    gzip: bool = False  # every answer gzipped, asked for or not (RFC 9110 allows it)
    close_after: int | None = None  # answers per connection before the server closes it
    close_silently: bool = False  # ... without `Connection: close`, as tinyproxy does
    outage: Outage | None = None
    # A live app sharing the per-second (and minute) quota: its load swings from 0 to
    # `app_load` requests a second and back every `app_period` seconds, evenly spread.
    app_load: float | None = None
    app_period: float = 60.0
    huge_body_bytes: int = 50 * 2**20
    endless_headers_bytes: int = 64 * 2**20


def config_changes(payload: Any, now: float) -> dict[str, Any]:
    """`SandboxConfig` changes from a JSON object; faults and the outage spelled as flags."""
    if not isinstance(payload, dict):
        raise TypeError("expected a JSON object of SandboxConfig fields")
    readers: dict[str, Callable[[Any], Any]] = {
        "rate_limit": _count_or_none,
        "minute_limit": _count_or_none,
        "daily_cap": _count_or_none,
        "close_after": _count_or_none,
        "huge_body_bytes": _count,
        "endless_headers_bytes": _count,
        "limit_headers": _flag,
        "gzip": _flag,
        "close_silently": _flag,
        "latency": _seconds,
        "app_load": lambda value: None if value is None else _seconds(value),
        "app_period": _seconds,
        "slow_seconds": _seconds,
        "answer_salt": _text,
        "faults": lambda specs: tuple(Fault.parse(_text(spec)) for spec in _list(specs)),
        "outage": lambda spec: None if spec is None else Outage.parse(_text(spec), now),
    }
    unknown = sorted(set(payload) - set(readers))
    if unknown:  # api_key and seed are fixed at start: a test would not expect them to move
        raise ValueError(f"cannot set {', '.join(unknown)}; settable: {', '.join(readers)}")
    return {name: readers[name](value) for name, value in payload.items()}


def _number(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{spec!r} is not KIND:SECONDS[@AFTER]") from None


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number >= 0, got {value!r}")
    return value


def _count_or_none(value: Any) -> int | None:
    return None if value is None else _count(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"expected seconds >= 0, got {value!r}")
    return float(value)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {value!r}")
    return value
