"""A local emulator of KOSCOM's service-integration API, for the demo, tests and benchmarks.

Answers are a pure function of the CI (and `answer_salt`), so a test knows the truth
(`truth()`). Quotas are enforced as the gateway does: a sliding one-second window
(429 + Retry-After, counted in `stats.over_limit`) and a daily cap per API with the
`X-RateLimit-*-Day` headers. Faults are injected by kind, at random (`probability`)
or deterministically for the first N attempts of every (API, CI) pair.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from aiohttp import web

BASE_PATH = "/v1/common/member"
APIS = ("register/search", "consent/search")
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
)
_ALIASES = ("주식투자용", "펀드투자용", "연금저축", "", None, "null")
_SURNAMES = "김이박최정강조윤장임"


@dataclass(frozen=True, slots=True)
class Fault:
    """Inject `kind` on `api` ("*" for both): at random, or on each pair's first attempts."""

    kind: str
    probability: float = 0.0
    first_attempts: int = 0
    api: str = "*"
    cis: frozenset[str] = frozenset()  # only these CIs, when given

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """`KIND:P[:API]` (random) or `KIND:firstN[:API]` (first N attempts of each pair)."""
        kind, _, rest = spec.partition(":")
        amount, _, api = rest.partition(":")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULT_KINDS)}")
        api = api or "*"
        if amount.startswith("first"):
            return cls(kind, first_attempts=int(amount[5:]), api=api)
        return cls(kind, probability=float(amount or 1), api=api)


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Everything the emulator does; replace it whole at runtime with `Sandbox.configure`."""

    api_key: str = "sandbox-key"
    rate_limit: int | None = None  # requests per sliding second, both APIs together
    daily_cap: int | None = None  # per API
    latency: float = 0.0  # seconds added to every answer
    slow_seconds: float = 30.0
    faults: tuple[Fault, ...] = ()
    answer_salt: str = ""
    seed: int = 7


@dataclass(frozen=True, slots=True)
class Truth:
    """What the sandbox answers for one CI."""

    membership: str  # member | nonMember | not_found (platform 3007 on both APIs)
    accounts: tuple[tuple[str, str, str | None], ...]  # (comId as sent, vtAccNo, alias)
    consent_not_found: bool  # consent/search answers 3007 instead of a list


@functools.lru_cache(maxsize=4096)  # both APIs ask about a customer moments apart
def truth(ci: str, salt: str = "") -> Truth:
    """The emulator's answer for a CI: a pure function, so tests know it in advance."""
    h = hashlib.sha256(f"{salt}|{ci}".encode()).digest()
    if h[0] % 50 == 0:
        return Truth("not_found", (), consent_not_found=True)
    non_member = h[0] % 100 < 22
    count = h[2] % 4
    if non_member:
        count = 1 if h[1] % 10 == 0 else 0  # a few inconsistent non-members with an account
    accounts = tuple(
        (
            (" 00002", " 00003", "00004 ")[(h[3] + i) % 3],
            f"{int.from_bytes(h[4 + i * 2 : 6 + i * 2], 'big'):018d}"[-18:].replace(
                "0", str((h[10] + i) % 9 + 1), 4
            ),
            _ALIASES[(h[11] + i) % len(_ALIASES)],
        )
        for i in range(count)
    )
    return Truth(
        "nonMember" if non_member else "member",
        accounts,
        consent_not_found=non_member and count == 0 and h[1] % 2 == 0,
    )


def synthetic_name(ci: str) -> str:
    """A Korean-looking name derived from the CI, for generated inputs."""
    h = hashlib.sha256(ci.encode()).digest()
    syllables = "민서준지하윤도현수영예은우진"
    return _SURNAMES[h[0] % 10] + syllables[h[1] % 14] + syllables[h[2] % 14]


def synthetic_ci(n: int, salt: str = "member-recon") -> str:
    """A synthetic 88-character CI: 64 bytes of hash, never a real person's."""
    return base64.b64encode(hashlib.sha512(f"{salt}:{n}".encode()).digest()).decode()


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
    first_at: float | None = None
    last_at: float | None = None

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
            "span_s": (self.last_at - self.first_at) if self.first_at and self.last_at else 0.0,
        }


class Sandbox:
    """The emulator's state and its aiohttp application."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.stats = SandboxStats()
        self._window: deque[float] = deque()
        self._random = random.Random(self.config.seed)

    def configure(self, **changes: Any) -> None:
        """Change the emulator's behaviour while it runs (thread-safe: one assignment)."""
        self.config = replace(self.config, **changes)

    def reset_day(self) -> None:
        self.stats.day_used.clear()

    def reset_stats(self) -> None:
        self.stats = SandboxStats()

    def app(self) -> web.Application:
        app = web.Application()
        for api in APIS:
            app.router.add_post(f"{BASE_PATH}/{api}", self._handler(api))
        app.router.add_get("/_sandbox/stats", self._stats)
        app.router.add_post("/_sandbox/reset-day", self._reset_day)
        app.router.add_route("*", "/{tail:.*}", self._no_route)
        return app

    def _handler(self, api: str) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._answer(api, request)

        return handle

    async def _answer(self, api: str, request: web.Request) -> web.StreamResponse:
        config = self.config
        now = time.monotonic()
        stats = self.stats
        stats.requests += 1
        stats.first_at = stats.first_at or now
        stats.last_at = now
        key = request.headers.get("apikey")
        if key is None:
            stats.rejected_auth += 1
            return _gateway(401, "No API key found in request")
        if key != config.api_key:
            stats.rejected_auth += 1
            return _gateway(401, "Invalid authentication credentials")
        if config.rate_limit is not None:
            while self._window and now - self._window[0] >= 1.0:
                self._window.popleft()
            if len(self._window) >= config.rate_limit:
                stats.over_limit += 1
                return _gateway(429, "API rate limit exceeded", {"Retry-After": "1"})
            self._window.append(now)
        day_headers: dict[str, str] = {}
        if config.daily_cap is not None:
            if stats.day_used[api] >= config.daily_cap:
                day_headers = _day_headers(config.daily_cap, 0)
                return _gateway(429, "API rate limit exceeded", day_headers)
            stats.day_used[api] += 1
            day_headers = _day_headers(config.daily_cap, config.daily_cap - stats.day_used[api])
        try:
            payload = orjson.loads(await request.read())
            ci, request_id = _check_envelope(payload)
        except (ValueError, KeyError, TypeError) as exc:  # orjson's error is a ValueError
            return _platform(400, "1001", f"invalid request: {exc}", day_headers)
        if len(request_id) > 20 or request_id in stats.request_ids:
            stats.bad_request_ids += 1
        stats.request_ids.add(request_id)
        stats.attempts[f"{api} {ci}"] += 1
        if config.latency:
            await asyncio.sleep(config.latency)
        fault = self._fault_for(api, ci)
        if fault is not None:
            stats.faults[fault] += 1
            return await self._inject(fault, api, request, day_headers)
        stats.answered[api] += 1
        return self._truthful(api, ci, day_headers)

    def _fault_for(self, api: str, ci: str) -> str | None:
        for fault in self.config.faults:
            if fault.api not in ("*", api) or (fault.cis and ci not in fault.cis):
                continue
            if self.stats.asked(api, ci) <= fault.first_attempts:
                return fault.kind
            if fault.probability and self._random.random() < fault.probability:
                return fault.kind
        return None

    def _truthful(self, api: str, ci: str, headers: dict[str, str]) -> web.Response:
        answer = truth(ci, self.config.answer_salt)
        h = hashlib.sha256(ci.encode()).digest()
        if answer.membership == "not_found":
            return _platform(500, "3007", "not found user", headers)
        if api == "register/search":
            body: dict[str, Any] = {"result": answer.membership}
            _maybe(body, "commonTermsExpireDate", f"2027{h[5] % 12 + 1:02d}15", h[6])
            body["someNewField"] = {"ignored": True}
            return _json(body, headers=headers)
        if answer.consent_not_found:
            return _platform(500, "4004", "CI Not Found", headers)
        entries = []
        for com_id, number, alias in answer.accounts:
            entry: dict[str, Any] = {"comId": com_id, "vtAccNo": number}
            if alias is not None or h[7] % 2:
                entry["vtAccAlias"] = alias
            entry["endpoint"] = "https://broker.example/api"
            entries.append(entry)
        body = {"vtAccList": entries}
        _maybe(body, "serviceTermsExpireDate", "20280101", h[8])
        return _json(body, headers=headers)

    async def _inject(
        self, kind: str, api: str, request: web.Request, headers: dict[str, str]
    ) -> web.StreamResponse:
        if kind == "http500":
            return web.Response(status=500, text="Internal Server Error", headers=headers)
        if kind == "http503":
            return web.Response(status=503, text="busy", headers={**headers, "Retry-After": "1"})
        if kind == "http429":
            return _gateway(429, "API rate limit exceeded", {**headers, "Retry-After": "1"})
        if kind == "html":
            page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            return web.Response(status=502, text=page, content_type="text/html", headers=headers)
        if kind == "truncated":
            return web.Response(status=200, text='{"result": "mem', content_type="application/json")
        if kind == "notjson":
            return web.Response(status=200, text="OK", headers=headers)
        if kind == "slow":
            await asyncio.sleep(self.config.slow_seconds)
            return _json({"result": "member"}, headers=headers)
        if kind == "unknown_result":
            body = {"result": "maybe"} if api == "register/search" else {"vtAccList": "x"}
            return _json(body, headers=headers)
        # reset: drop the connection without a byte of answer
        if request.transport is not None:
            request.transport.abort()
        raise web.HTTPInternalServerError

    async def _stats(self, _: web.Request) -> web.Response:
        return _json(self.stats.as_dict())

    async def _reset_day(self, _: web.Request) -> web.Response:
        self.reset_day()
        return _json({"ok": True})

    async def _no_route(self, _: web.Request) -> web.Response:
        return _gateway(404, "no Route matched with those values")


def _check_envelope(payload: Any) -> tuple[str, str]:
    """The CI and reqIdConsumer of a well-formed envelope (any valid name is accepted)."""
    partner, header, body = payload["partner"], payload["commonHeader"], payload["body"]
    if len(str(partner["comId"])) != 5 or not 1 <= len(str(partner["srvId"])) <= 20:
        raise ValueError("partner")
    if header.get("reqIdPlatform", "") != "":
        raise ValueError("reqIdPlatform")
    ci = str(header["ci"])
    try:
        if len(ci) != 88 or len(base64.b64decode(ci, validate=True)) != 64:
            raise ValueError("ci")
    except binascii.Error:
        raise ValueError("ci") from None
    name = str(body["korName"])
    if not 1 <= len(name) <= 10:
        raise ValueError("korName")
    return ci, str(header.get("reqIdConsumer", ""))


def _maybe(body: dict[str, Any], name: str, value: str, pick: int) -> None:
    """Set a field, or leave it absent / null / "null" / "" as the real API does."""
    choice = pick % 5
    if choice == 0:
        body[name] = value
    elif choice == 1:
        body[name] = None
    elif choice == 2:
        body[name] = "null"
    elif choice == 3:
        body[name] = ""
    else:
        body[name] = value


def _gateway(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json({"message": message}, status=status, headers=headers)


def _platform(status: int, code: str, message: str, headers: dict[str, str]) -> web.Response:
    body = {"category": "common", "code": code, "message": message}
    return _json(body, status=status, headers=headers)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer by orjson: aiohttp's json.dumps took a tenth of the emulator's time."""
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def _day_headers(limit: int, remaining: int) -> dict[str, str]:
    return {"X-RateLimit-Limit-Day": str(limit), "X-RateLimit-Remaining-Day": str(remaining)}


class SandboxThread:
    """The emulator on 127.0.0.1 in a thread of its own, for tests and benchmarks."""

    def __init__(self, sandbox: Sandbox, port: int = 0) -> None:
        self.sandbox = sandbox
        self._port = port
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._serve, name="sandbox", daemon=True)
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{BASE_PATH}"

    def start(self) -> SandboxThread:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("sandbox did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        runner = web.AppRunner(self.sandbox.app(), access_log=None)
        self._runner = runner
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", self._port, backlog=1024)
        loop.run_until_complete(site.start())
        server = site._server  # noqa: SLF001  (aiohttp exposes the bound port nowhere else)
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        loop.run_forever()
        loop.close()
