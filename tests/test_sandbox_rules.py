"""The sandbox's rules without a server: a made-up clock, tables of requests and answers."""

from __future__ import annotations

import gzip
import json

import orjson
import pytest

from jobs.sandbox.config import Fault, Outage, SandboxConfig, config_changes
from jobs.sandbox.rules import (
    Asked,
    SandboxState,
    closes_after,
    decide,
    encoded,
    fault_answer,
    refusing,
)
from jobs.sandbox.truth import Answer, synthetic_ci, synthetic_name

KEY = "k"
CI = synthetic_ci(0, "rules")  # a member: a true answer is a 200


def envelope(ci: str = CI, request_id: str = "r1") -> bytes:
    return orjson.dumps(
        {
            "partner": {"comId": "F0995", "srvId": "297"},
            "commonHeader": {"reqIdPlatform": "", "reqIdConsumer": request_id, "ci": ci},
            "body": {"korName": synthetic_name(ci)},
        }
    )


def ask(
    config: SandboxConfig,
    state: SandboxState,
    now: float,
    api: str = "register/search",
    key: str | None = KEY,
    body: bytes | None = None,
) -> Answer:
    return decide(config, state, Asked(api, key, envelope() if body is None else body), now)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("http500:0.2", Fault("http500", probability=0.2)),
        ("reset:first2:consent/search", Fault("reset", first_attempts=2, api="consent/search")),
        ("duplicate", Fault("duplicate", probability=1.0)),
        ("unknown_shape:1:consent/search", Fault("unknown_shape", 1.0, api="consent/search")),
        ("endless_headers:first1", Fault("endless_headers", first_attempts=1)),
    ],
)
def test_fault_specs(spec: str, expected: Fault) -> None:
    assert Fault.parse(spec) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("html:20", Outage("html", 20.0, 100.0)),
        ("refused:1.5@2", Outage("refused", 1.5, 102.0)),
        ("http503:3@0", Outage("http503", 3.0, 100.0)),
    ],
)
def test_outage_specs(spec: str, expected: Outage) -> None:
    assert Outage.parse(spec, now=100.0) == expected


@pytest.mark.parametrize("spec", ["nope:1", "html", "html:x", "html:0", "html:1@-1", "reset:1@y"])
def test_bad_outage_specs(spec: str) -> None:
    with pytest.raises(ValueError, match=r"outage|SECONDS|AFTER"):
        Outage.parse(spec, now=0.0)


@pytest.mark.parametrize(
    ("config", "key", "body", "status", "message"),
    [
        (SandboxConfig(api_key=KEY), KEY, None, 200, None),
        (SandboxConfig(api_key=KEY), None, None, 401, "No API key found in request"),
        (SandboxConfig(api_key=KEY), "bad", None, 401, "Invalid authentication credentials"),
        (SandboxConfig(api_key=KEY), KEY, b"{}", 400, "invalid request: 'partner'"),
        (SandboxConfig(api_key=KEY, daily_cap=0), KEY, None, 429, "API rate limit exceeded"),
        (SandboxConfig(api_key=KEY, rate_limit=0), KEY, None, 429, "API rate limit exceeded"),
        # The outage comes first: nginx answers before Kong looks at the key.
        (SandboxConfig(api_key=KEY, outage=Outage("http503", 5, 0)), None, None, 503, None),
    ],
)
def test_the_order_of_checks(
    config: SandboxConfig, key: str | None, body: bytes | None, status: int, message: str | None
) -> None:
    answer = ask(config, SandboxState(), 1.0, key=key, body=body)
    assert answer.status == status
    if message is not None:
        assert message in answer.body.decode()


def test_limit_headers_follow_kong_with_a_sliding_second_and_minute() -> None:
    config = SandboxConfig(api_key=KEY, rate_limit=2, minute_limit=3, limit_headers=True)
    state = SandboxState()
    # (time, status, remaining second, remaining minute, RateLimit-Limit/-Remaining/-Reset)
    table = [
        (0.0, 200, "1", "2", ("2", "1", "1")),
        (0.1, 200, "0", "1", ("2", "0", "1")),
        (0.2, 429, "0", "1", ("2", "0", "1")),
        (1.05, 200, "0", "0", ("3", "0", "59")),  # a tie: Kong states the longer window
        (1.2, 429, "1", "0", ("3", "0", "59")),
    ]
    for now, status, second, minute, (limit, remaining, reset) in table:
        answer = ask(config, state, now)
        headers = dict(answer.headers)
        assert answer.status == status, now
        assert headers["X-RateLimit-Limit-Second"] == "2"
        assert headers["X-RateLimit-Remaining-Second"] == second, now
        assert headers["X-RateLimit-Limit-Minute"] == "3"
        assert headers["X-RateLimit-Remaining-Minute"] == minute, now
        assert (headers["RateLimit-Limit"], headers["RateLimit-Remaining"]) == (limit, remaining)
        assert headers["RateLimit-Reset"] == reset, now
    assert state.stats.over_limit == 2
    assert dict(ask(config, state, 1.3).headers)["Retry-After"] == "59"  # the minute is full


def test_limits_are_silent_unless_stated_and_the_day_is_always_stated() -> None:
    config = SandboxConfig(api_key=KEY, rate_limit=1, daily_cap=5)
    state = SandboxState()
    headers = dict(ask(config, state, 0.0).headers)
    assert "RateLimit-Limit" not in headers
    assert headers["X-RateLimit-Remaining-Day"] == "4"
    refused = ask(config, state, 0.5)
    assert (refused.status, dict(refused.headers)["Retry-After"]) == (429, "1")


@pytest.mark.parametrize(
    ("kind", "status", "content_type", "action"),
    [
        ("html", 502, "text/html", None),
        ("http503", 503, "application/json", None),
        ("reset", 0, None, "reset"),
        ("refused", 0, None, "reset"),
    ],
)
def test_an_outage_answers_every_request_while_it_lasts(
    kind: str, status: int, content_type: str | None, action: str | None
) -> None:
    config = SandboxConfig(api_key=KEY, outage=Outage(kind, 2.0, start=10.0))
    state = SandboxState()
    assert ask(config, state, 9.9).status == 200
    during = ask(config, state, 10.0, key=None)
    assert (during.status, during.action) == (status, action)
    assert dict(during.headers).get("Content-Type") == content_type
    assert ask(config, state, 12.0).status == 200
    assert state.stats.in_outage == 1
    assert refusing(config, 11.0) is (kind == "refused")
    assert not refusing(config, 12.0)


@pytest.mark.parametrize(
    ("kind", "api", "status", "body"),
    [
        ("unknown_shape", "consent/search", 200, b'{"data":[]}'),
        ("unknown_result", "register/search", 200, b'{"result":"maybe"}'),
        ("notjson", "register/search", 200, b"OK"),
        ("truncated", "register/search", 200, b'{"result": "mem'),
        ("http500", "consent/search", 500, b"Internal Server Error"),
    ],
)
def test_fault_answers(kind: str, api: str, status: int, body: bytes) -> None:
    answer = fault_answer(kind, api, CI, SandboxConfig(), ())
    assert (answer.status, answer.body, answer.action) == (status, body, None)


def test_a_redirect_points_back_at_the_api_itself() -> None:
    answer = fault_answer("redirect", "consent/search", CI, SandboxConfig(), ())
    assert answer.status == 302
    assert dict(answer.headers)["Location"] == "/v1/common/member/consent/search"


@pytest.mark.parametrize(
    ("kind", "action", "size"),
    [
        ("duplicate", "duplicate", 0),
        ("endless_headers", "endless_headers", 64 * 2**20),
        ("huge_body", "huge_body", 50 * 2**20),
        ("reset", "reset", 0),
    ],
)
def test_connection_faults_are_actions(kind: str, action: str, size: int) -> None:
    answer = fault_answer(kind, "register/search", CI, SandboxConfig(), ())
    assert (answer.action, answer.size) == (action, size)


def test_a_duplicate_carries_the_true_answer() -> None:
    config = SandboxConfig(api_key=KEY, faults=(Fault("duplicate", 1.0),))
    answer = ask(config, SandboxState(), 0.0)
    honest = ask(SandboxConfig(api_key=KEY), SandboxState(), 0.0)
    assert (answer.action, answer.body) == ("duplicate", honest.body)


def test_gzip_regardless_of_what_was_asked() -> None:
    plain = Answer(200, b'{"result":"member"}', (("Content-Type", "application/json"),))
    zipped = encoded(plain, use_gzip=True)
    assert gzip.decompress(zipped.body) == plain.body
    assert ("Content-Encoding", "gzip") in zipped.headers
    assert encoded(plain, use_gzip=False) is plain
    assert encoded(Answer(0, action="reset"), use_gzip=True).headers == ()
    assert ask(SandboxConfig(api_key=KEY, gzip=True), SandboxState(), 0.0, key=None).body[:2] == (
        b"\x1f\x8b"  # even a 401
    )


@pytest.mark.parametrize(
    ("close_after", "silently", "served", "expected"),
    [
        (None, False, 100, None),
        (3, False, 2, None),
        (3, False, 3, "header"),
        (3, True, 3, "silent"),
        (1, True, 1, "silent"),
    ],
)
def test_close_after(close_after: int | None, silently: bool, served: int, expected: str) -> None:
    config = SandboxConfig(close_after=close_after, close_silently=silently)
    assert closes_after(config, served) == expected


def test_first_attempts_and_cis_still_target_faults() -> None:
    other = synthetic_ci(2, "rules")
    fault = Fault("http500", first_attempts=1, cis=frozenset({CI}))
    config = SandboxConfig(api_key=KEY, faults=(fault,))
    state = SandboxState()
    assert ask(config, state, 0.0).status == 500
    assert ask(config, state, 0.1).status == 200
    assert decide(config, state, Asked("register/search", KEY, envelope(other)), 0.2).status == 200
    assert state.stats.faults == {"http500": 1}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"gzip": True, "close_after": 2}, {"gzip": True, "close_after": 2}),
        ({"faults": ["duplicate:0.5"]}, {"faults": (Fault("duplicate", 0.5),)}),
        ({"outage": "html:3@1"}, {"outage": Outage("html", 3.0, 51.0)}),
        ({"outage": None, "rate_limit": None}, {"outage": None, "rate_limit": None}),
        ({"latency": 1}, {"latency": 1.0}),
    ],
)
def test_config_changes_from_json(payload: dict[str, object], expected: dict[str, object]) -> None:
    assert config_changes(json.loads(json.dumps(payload)), now=50.0) == expected


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {"api_key": "x"},
        {"gzip": 1},
        {"close_after": -1},
        {"faults": "reset"},
        {"latency": "1"},
        {"outage": "nope:1"},
        {"rate_limit": True},
    ],
)
def test_bad_config_changes(payload: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        config_changes(payload, now=0.0)


def test_a_live_app_takes_its_swinging_share_of_the_quota() -> None:
    # The app swings 0..50 req/s over 10 s: 250 requests, all within a 100 req/s quota.
    config = SandboxConfig(api_key=KEY, rate_limit=100, app_load=50, app_period=10)
    state = SandboxState()
    statuses = [ask(config, state, i / 20).status for i in range(200)]  # the job: 20 req/s
    assert statuses.count(429) == 0
    assert 245 <= state.stats.app_admitted <= 255
    assert state.stats.app_refused == 0


def test_a_live_app_and_the_job_over_the_quota_are_both_refused() -> None:
    config = SandboxConfig(api_key=KEY, rate_limit=40, app_load=50, app_period=10)
    state = SandboxState()
    statuses = [ask(config, state, i / 20).status for i in range(200)]
    assert statuses.count(429) > 0  # the job's share shrinks while the app is busy...
    assert state.stats.app_refused > 0  # ...and the app, too, meets the limit
    assert state.stats.over_limit == statuses.count(429)
