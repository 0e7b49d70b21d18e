"""The emulator's rules: what the gateway answers, as a function of config, state and clock.

No I/O here. `decide` turns one request (API, `apikey` header, body) and `now` into an
`Answer`; jobs/sandbox/server.py sends it. The state it updates (quota windows, stats) is passed in,
so tests drive the rules with a made-up clock. The order follows a Kong gateway in front of
the platform: outage (nginx before Kong), key, per-second/minute limit, daily cap, envelope,
then the injected fault or the true answer. The quotas live in jobs/sandbox/quota.py, the
config and its spellings in jobs/sandbox/config.py and the true answers in
jobs/sandbox/truth.py, all pure as well.
"""

from __future__ import annotations

import gzip
import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from jobs.sandbox import hostile
from jobs.sandbox.config import SandboxConfig
from jobs.sandbox.quota import Window, day_answer, limit_answer
from jobs.sandbox.truth import (
    BASE_PATH,
    HTML,
    JSON,
    TEXT,
    Answer,
    Headers,
    check_envelope,
    gateway,
    json_answer,
    nginx_page,
    platform,
    truthful,
)

# Raw streams and bombs: nothing to gzip.
_UNENCODED = ("reset", "endless_headers", "huge_body", *hostile.STREAMED)


@dataclass(slots=True)
class SandboxStats:
    """What the emulator has seen; read by tests and benchmarks."""

    requests: int = 0
    answered: Counter[str] = field(default_factory=Counter)
    over_limit: int = 0
    rejected_auth: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    # "api ci" -> count: string keys, because tuples are GC-tracked and a full collection
    # over a big night's worth of them pauses the loop long enough to bunch arrival times.
    attempts: Counter[str] = field(default_factory=Counter)
    request_ids: set[str] = field(default_factory=set)
    bad_request_ids: int = 0
    day_used: Counter[str] = field(default_factory=Counter)
    in_outage: int = 0  # requests received during an outage
    closed: int = 0  # connections closed by `close_after`
    streaming: int = 0  # hostile answers being written right now
    streamed_bytes: int = 0  # what the hostile answers wrote in all
    first_at: float | None = None
    last_at: float | None = None
    app_admitted: int = 0  # the live app's requests the quota took (`app_load`)
    app_refused: int = 0

    def asked(self, api: str, ci: str) -> int:
        return self.attempts[f"{api} {ci}"]

    def cis_asked(self, more_than: int = 0) -> set[str]:
        """CIs asked more than `more_than` times on either API."""
        return {key.split(" ", 1)[1] for key, n in self.attempts.items() if n > more_than}

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "answered": dict(self.answered),
            "over_limit": self.over_limit,
            "rejected_auth": self.rejected_auth,
            "faults": dict(self.faults),
            "distinct_cis": len(self.cis_asked()),
            "bad_request_ids": self.bad_request_ids,
            "day_used": dict(self.day_used),
            "in_outage": self.in_outage,
            "closed": self.closed,
            "streaming": self.streaming,
            "streamed_bytes": self.streamed_bytes,
            "span_s": (self.last_at - self.first_at) if self.first_at and self.last_at else 0.0,
            "app_admitted": self.app_admitted,
            "app_refused": self.app_refused,
        }


@dataclass(slots=True)
class SandboxState:
    """What the rules remember between requests."""

    stats: SandboxStats = field(default_factory=SandboxStats)
    second: Window = field(default_factory=lambda: Window(1.0))
    minute: Window = field(default_factory=lambda: Window(60.0))
    random: random.Random = field(default_factory=lambda: random.Random(7))
    app_since: float | None = None  # when the live app's load began to swing
    app_until: float = 0.0  # its requests up to here are in the windows
    app_owed: float = 0.0  # a fraction of a request, carried to the next


@dataclass(frozen=True, slots=True)
class Asked:
    """One API request as the rules see it."""

    api: str
    apikey: str | None
    body: bytes


def decide(config: SandboxConfig, state: SandboxState, asked: Asked, now: float) -> Answer:
    """What the gateway answers to `asked` at `now`; updates `state` as the gateway would."""
    stats = state.stats
    stats.requests += 1
    stats.first_at = stats.first_at or now
    stats.last_at = now
    answer = outage_answer(config, stats, now) or auth_answer(config, stats, asked.apikey)
    if answer is None:
        answer = _admitted(config, state, asked, now)
    return encoded(answer, config.gzip)


def outage_answer(config: SandboxConfig, stats: SandboxStats, now: float) -> Answer | None:
    """The outage's answer while one covers `now`, else None."""
    outage = config.outage
    if outage is None or not outage.covers(now):
        return None
    stats.in_outage += 1
    if outage.kind == "html":
        return Answer(502, nginx_page(502, "Bad Gateway"), (HTML,))
    if outage.kind == "http503":  # Kong with its upstream gone
        return gateway(503, "failure to get a peer from the ring-balancer")
    return Answer(0, action="reset")  # refused: the listener is closed, kept connections drop


def refusing(config: SandboxConfig, now: float) -> bool:
    """Whether nothing should listen at `now` (a `refused` outage)."""
    outage = config.outage
    return outage is not None and outage.kind == "refused" and outage.covers(now)


def auth_answer(config: SandboxConfig, stats: SandboxStats, apikey: str | None) -> Answer | None:
    """Kong's key-auth 401, or None when the key is right."""
    if apikey == config.api_key:
        return None
    stats.rejected_auth += 1
    if apikey is None:
        return gateway(401, "No API key found in request")
    return gateway(401, "Invalid authentication credentials")


def _admitted(config: SandboxConfig, state: SandboxState, asked: Asked, now: float) -> Answer:
    limited, headers = limit_answer(config, state, now)
    if limited is not None:
        return limited
    capped, headers = day_answer(config, state.stats, asked.api, headers)
    if capped is not None:
        return capped
    try:
        ci, request_id = check_envelope(orjson.loads(asked.body))
    except (ValueError, KeyError, TypeError) as exc:  # orjson's error is a ValueError
        return platform(400, "1001", f"invalid request: {exc}", headers)
    _count(state.stats, asked.api, ci, request_id)
    kind = fault_for(config, state, asked.api, ci)
    if kind is None:
        state.stats.answered[asked.api] += 1
        answer = truthful(asked.api, ci, config.answer_salt, headers)
    else:
        state.stats.faults[kind] += 1
        answer = fault_answer(kind, asked.api, ci, config, headers)
    return replace(answer, delay=answer.delay + config.latency) if config.latency else answer


def _count(stats: SandboxStats, api: str, ci: str, request_id: str) -> None:
    if len(request_id) > 20 or request_id in stats.request_ids:
        stats.bad_request_ids += 1
    stats.request_ids.add(request_id)
    stats.attempts[f"{api} {ci}"] += 1


def share_of(ci: str) -> float:
    """Where a customer falls in [0, 1), the same on every attempt and in every sandbox."""
    digest = hashlib.blake2b(ci.encode(), digest_size=8, person=b"unhealed").digest()
    return int.from_bytes(digest) / 2**64


def fault_for(config: SandboxConfig, state: SandboxState, api: str, ci: str) -> str | None:
    """The fault to inject on this attempt, if any (the first that applies)."""
    for fault in config.faults:
        if fault.api not in ("*", api) or (fault.cis and ci not in fault.cis):
            continue
        if state.stats.asked(api, ci) <= fault.first_attempts:
            return fault.kind
        if fault.customers and share_of(ci) < fault.customers:
            return fault.kind
        if fault.probability and state.random.random() < fault.probability:
            return fault.kind
    return None


def fault_answer(kind: str, api: str, ci: str, config: SandboxConfig, headers: Headers) -> Answer:
    """The answer that injects `kind`."""
    if kind in hostile.HOSTILE_KINDS:
        return hostile.answer(kind, api, ci, headers, key=config.api_key, salt=config.answer_salt)
    if kind == "http500":
        return Answer(500, b"Internal Server Error", (*headers, TEXT))
    if kind == "http503":
        return Answer(503, b"busy", (*headers, TEXT, ("Retry-After", "1")))
    if kind == "http429":
        return gateway(429, "API rate limit exceeded", (*headers, ("Retry-After", "1")))
    if kind == "html":
        return Answer(502, nginx_page(502, "Bad Gateway"), (*headers, HTML))
    if kind == "truncated":
        return Answer(200, b'{"result": "mem', (*headers, JSON))
    if kind == "notjson":
        return Answer(200, b"OK", (*headers, TEXT))
    if kind == "slow":
        return replace(json_answer({"result": "member"}, headers), delay=config.slow_seconds)
    if kind == "unknown_result":
        body = {"result": "maybe"} if api == "register/search" else {"vtAccList": "x"}
        return json_answer(body, headers)
    if kind == "unknown_shape":
        return json_answer({"data": []}, headers)
    if kind == "redirect":  # to itself: however often a client follows, it is sent on again
        location = ("Location", f"{BASE_PATH}/{api}")
        return Answer(302, nginx_page(302, "Found"), (*headers, HTML, location))
    if kind == "duplicate":
        return replace(truthful(api, ci, config.answer_salt, headers), action="duplicate")
    if kind == "endless_headers":
        return Answer(200, action="endless_headers", size=config.endless_headers_bytes)
    if kind == "echo":
        body = {
            "category": "common",
            "code": "9" * 100_000,
            "message": f"bad request for ci={ci} with apikey={config.api_key}",
        }
        return json_answer(body, headers, status=500)
    if kind == "huge_body":
        return Answer(200, b"", (*headers, JSON), action="huge_body", size=config.huge_body_bytes)
    return Answer(0, action="reset")


def encoded(answer: Answer, use_gzip: bool) -> Answer:
    """The answer gzipped when the gateway gzips everything, whatever the client asked."""
    if not use_gzip or answer.action in _UNENCODED:
        return answer
    if any(name.lower() == "content-encoding" for name, _ in answer.headers):
        return answer  # a bomb is encoded already
    body = gzip.compress(answer.body, compresslevel=1, mtime=0)  # mtime 0: duplicates match
    return replace(answer, body=body, headers=(*answer.headers, ("Content-Encoding", "gzip")))


def closes_after(config: SandboxConfig, answers_on_connection: int) -> str | None:
    """How the connection ends after this answer: "header", "silent", or None (kept)."""
    if config.close_after is None or answers_on_connection < config.close_after:
        return None
    return "silent" if config.close_silently else "header"
