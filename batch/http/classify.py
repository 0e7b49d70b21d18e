"""What an HTTP answer means before and after the job reads it: the engine's default (pure).

A job reads only its own answers: the JSON it was asked for and its platform's errors.
Everything HTTP says on its own is read here, once, for every job:

* 429 is `RateLimited`, with the Retry-After it carried;
* 3xx is never followed (the credentials would go wherever a Location pointed): an
  `UnexpectedAnswer` that names the base URL;
* a 2xx or 5xx whose body is not whole JSON (cut short, an HTML page, empty) is a
  `ServerFailure`: transient, retried within the request's attempts;
* what the job did not claim: 5xx is a `ServerFailure`, another 2xx an
  `UnexpectedAnswer`, and any other status an `ItemRejected`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from batch.errors import AnswerError, ItemRejected, RateLimited, ServerFailure, UnexpectedAnswer
from batch.http.limits import retry_after
from batch.http.transport import HttpAnswer

T = TypeVar("T")
_NO_JSON = object()


@dataclass(frozen=True, slots=True)
class JsonAnswer:
    """An answer as a job reads it: status, lower-case headers and the decoded JSON body.

    `payload` is None when the body was not JSON (only a 4xx or a 204 reaches a job so).
    """

    status: int
    headers: Mapping[str, str]
    payload: Any


# A job's reader: its typed answer, None for an answer that is not its own (the engine's
# default then says what it was), or a raised `RequestError`/`RunError` of its own.
Reader = Callable[[JsonAnswer], T | None]


def read_answer(answer: HttpAnswer, read: Reader[T]) -> T:
    """The job's answer, or raise the failure `answer` means."""
    status = answer.status
    if status == 429:
        raise RateLimited("HTTP 429", retry_after(answer.headers))
    if 300 <= status < 400:
        raise UnexpectedAnswer(f"HTTP {status} redirect; check the API's base URL")
    payload = _json(answer.body)
    if payload is _NO_JSON:
        if status >= 500 or (200 <= status < 300 and status != 204):
            raise ServerFailure(f"HTTP {status} with {describe_body(answer.body)}", _wait(answer))
        payload = None
    result = read(JsonAnswer(status, answer.headers, payload))
    if result is not None:
        return result
    raise unclaimed(answer, payload)


def unclaimed(answer: HttpAnswer, payload: Any) -> AnswerError:
    """What an answer the job did not claim means, by its status alone."""
    status = answer.status
    body = "JSON that is not an answer" if payload is not None else describe_body(answer.body)
    if status >= 500:
        return ServerFailure(f"HTTP {status} with {body}", _wait(answer))
    if 200 <= status < 300:
        return UnexpectedAnswer(f"HTTP {status} is not a documented answer")
    return ItemRejected(f"HTTP {status} with {body}")


def describe_body(body: bytes) -> str:
    """Name a body's kind without echoing it (it could carry anything)."""
    head = body[:200].lstrip().lower()
    if not head:
        return "an empty body"
    if head.startswith((b"<!doctype", b"<html")) or b"<html" in head:
        return "an HTML page"
    if head.startswith((b"{", b"[")):
        return "truncated or invalid JSON"
    return "a body that is not JSON"


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:  # also raised for bytes that are not UTF-8
        return _NO_JSON


def _wait(answer: HttpAnswer) -> float | None:
    return retry_after(answer.headers)
