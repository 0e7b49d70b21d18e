"""The request gate with a stand-in transport: what HTTP's own answers make of one request.

No server is needed to show how the engine reads a 429, a broken 200 or an answer the job
does not claim, so these tests hand `RequestGate` a scripted transport (as httpx's
`transport=` allows) and a job reader that knows only its own answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Self

import orjson
import pytest

from batch.errors import (
    ForeignAnswer,
    RateLimited,
    RequestError,
    ServerFailure,
    UnexpectedAnswer,
)
from batch.http.classify import JsonAnswer
from batch.http.gate import GateRequest, GateSettings, RequestGate
from batch.http.retry import RetryPolicy
from batch.http.transport import HttpAnswer, TransportSettings
from tests.fake_job import QuietLog

GOOD = HttpAnswer(200, {}, b'{"value": 7}')
BROKEN = HttpAnswer(200, {}, b'{"value": 7')  # cut short
STRAY_429 = HttpAnswer(429, {"retry-after": "1"}, b'{"message": "API rate limit exceeded"}')


class ScriptedTransport:
    """Answers each POST with the next of `answers` (the last one again when they run out)."""

    def __init__(self, answers: list[HttpAnswer]) -> None:
        self._answers: Iterator[HttpAnswer] = iter(answers)
        self._last = answers[-1]
        self.posts = 0
        self.unsolicited_answers = 0
        self.distrusted: list[int] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        return None

    async def post(self, path: str, body: bytes) -> HttpAnswer:
        self.posts += 1
        self._last = next(self._answers, self._last)
        return self._last

    def tainted(self) -> set[int]:
        return set()

    def distrust(self, connection: int) -> None:
        self.distrusted.append(connection)


def read_value(answer: JsonAnswer) -> int | None:
    """A job's reader: a 200 with `value` is its answer; anything else is not its own."""
    if answer.status != 200:
        return None
    if not isinstance(answer.payload, dict) or "value" not in answer.payload:
        raise ForeignAnswer("answered without value")
    if not isinstance(answer.payload["value"], int):
        raise UnexpectedAnswer("answered a value that is not a number")
    return int(answer.payload["value"])


async def ask(
    answers: list[HttpAnswer], attempts: int = 4, transport: ScriptedTransport | None = None
) -> tuple[Any, RequestGate, int]:
    """One request through a gate on `answers`: what it ended with, the gate, and the posts."""
    settings = GateSettings(
        transport=TransportSettings(base_url="http://api.invalid/", headers={}, connections=4),
        rate=1000.0,
        # The tests' stamina never sleeps; a stray 429's Retry-After would be honoured.
        retry=RetryPolicy(attempts=attempts, wait_jitter=0, max_retry_after=0.001),
    )
    transport = transport or ScriptedTransport(answers)
    async with RequestGate(settings, QuietLog(), transport=transport) as gate:
        result = await gate.send(GateRequest("things/search", b"{}", cap="things"), read_value)
    return result, gate, transport.posts


async def test_a_broken_200_is_retried_within_the_request_s_attempts() -> None:
    result, gate, posts = await ask([BROKEN, BROKEN, GOOD])
    assert result == 7
    assert (posts, gate.stats.retries) == (3, 2)


async def test_a_200_that_stays_broken_ends_as_a_transient_failure_named_once() -> None:
    result, _, posts = await ask([BROKEN], attempts=3)
    assert isinstance(result, ServerFailure)  # retryable: a rerun asks again
    assert result.reason == "HTTP 200 with truncated or invalid JSON after 3 attempts"
    assert posts == 3


async def test_a_well_formed_answer_the_job_does_not_understand_is_not_retried() -> None:
    result, _, posts = await ask([HttpAnswer(200, {}, b'{"other": 1}')])
    assert isinstance(result, UnexpectedAnswer)
    assert result.reason == "answered without value"
    assert posts == 1


async def test_an_answer_not_its_request_s_on_a_reused_connection_is_asked_again() -> None:
    """A gateway's copy of another request's answer: the connection is suspect, not the API."""
    copy = HttpAnswer(200, {}, b'{"other": 1}', connection=5, reused=True)
    transport = ScriptedTransport([copy, GOOD])
    result, gate, posts = await ask([], transport=transport)
    assert (result, posts, gate.stats.retries) == (7, 2, 1)
    assert transport.distrusted == [5]  # its items are suspects; no connection is reused


async def test_an_unknown_value_on_a_reused_connection_is_the_api_s_own() -> None:
    """Of the asked API's shape: no other request's copy, so nothing is asked again."""
    odd = HttpAnswer(200, {}, b'{"value": "maybe"}', connection=5, reused=True)
    transport = ScriptedTransport([odd, GOOD])
    result, gate, posts = await ask([], transport=transport)
    assert isinstance(result, UnexpectedAnswer)
    assert (posts, gate.stats.retries, transport.distrusted) == (1, 0, [])


def test_a_429_without_retry_after_leaves_the_wait_to_the_pacing() -> None:
    policy = RetryPolicy()
    assert policy.backoff_hook(RateLimited("HTTP 429", None)) == 0.0
    assert policy.backoff_hook(RateLimited("HTTP 429", 2.0)) == 2.0  # the gateway's word
    assert policy.backoff_hook(ServerFailure("HTTP 503", None)) is True  # stamina's backoff


async def test_a_lone_429_is_retried_and_does_not_cut_the_rate() -> None:
    result, gate, posts = await ask([STRAY_429, GOOD])
    assert result == 7
    assert posts == 2
    assert gate.stats.http_429 == 1
    assert gate.stats.rate_cuts == 0
    assert gate.stats.rate_settled == 1000.0


@pytest.mark.parametrize(
    ("answer", "failure", "reason"),
    [
        (HttpAnswer(302, {"location": "/x"}, b""), UnexpectedAnswer, "HTTP 302 redirect"),
        (HttpAnswer(502, {}, b"<html>Bad Gateway</html>"), ServerFailure, "an HTML page"),
        (HttpAnswer(503, {}, b'{"message": "no peer"}'), ServerFailure, "HTTP 503"),
        (HttpAnswer(201, {}, b"{}"), UnexpectedAnswer, "HTTP 201 is not a documented answer"),
    ],
)
async def test_what_the_job_does_not_claim_is_read_by_its_status(
    answer: HttpAnswer, failure: type[RequestError], reason: str
) -> None:
    result, _, _ = await ask([answer], attempts=2)
    assert type(result) is failure
    assert reason in result.reason


async def test_the_job_reads_its_json_once_decoded() -> None:
    seen: list[Any] = []

    def reader(answer: JsonAnswer) -> int:
        seen.append(answer.payload)
        return 1

    settings = GateSettings(
        transport=TransportSettings(base_url="http://api.invalid/", headers={}, connections=1),
        rate=1000.0,
    )
    body = orjson.dumps({"value": [1, 2]})
    async with RequestGate(
        settings, QuietLog(), transport=ScriptedTransport([HttpAnswer(200, {}, body)])
    ) as gate:
        assert await gate.send(GateRequest("p", b"{}", cap="p"), reader) == 1
    assert seen == [{"value": [1, 2]}]
