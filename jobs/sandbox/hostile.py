"""A hostile API for the protection tests: answers that carry CIs and keys, and broken framing.

Each kind replays one attack of a security review. `answer` builds what the rules
send; the server writes the kinds that aiohttp's server would refuse to write (a flood
of 1xx answers, `framing` with conflicting or absurd lengths) straight to the connection.
"""

from __future__ import annotations

import base64
import functools
import gzip
import zlib
from dataclasses import replace
from urllib.parse import quote

from jobs.sandbox.truth import JSON, Answer, Headers, json_answer, truth, truthful

HOSTILE_KINDS = (
    "echo_pieces",  # a platform error quoting the CI's pieces in five forms, and the key's
    "echo_fields",  # a true consent answer whose every account field quotes the CI and key
    "bad_account",  # an account whose vtAccNo is the CI itself
    "many_accounts",  # 48,000 accounts in one answer (under 1 MiB of JSON)
    "continue_flood",  # "100 Continue" answers without end
    "conflicting_lengths",  # two Content-Length headers that disagree
    "huge_length",  # a Content-Length of 2 GB
    "gzip_bomb",  # 64 MB of zeros in 64 KB of gzip
    "deflate_bomb",  # the same in deflate
    "late_duplicate",  # the true answer, then the same bytes again a moment later
)
FRAMING = ("conflicting_lengths", "huge_length")
STREAMED = ("continue_flood", *FRAMING)
BOMB_BYTES = 64 * 2**20
LATE = 0.05  # seconds before the duplicate: the client has reused the connection by then
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n" * 4096


def pieces(text: str) -> str:
    """`text` in every form a review searches for: raw, url-safe, percent, hex, base64, split."""
    return " ".join(
        (
            text,
            text.replace("+", "-").replace("/", "_"),
            quote(text, safe=""),
            text.encode().hex(),
            base64.b64encode(text.encode()).decode(),
            "".join(c if c.isalnum() else " " for c in text),
            text[:50],
        )
    )


def answer(kind: str, api: str, ci: str, headers: Headers, *, key: str, salt: str) -> Answer:
    """The answer that injects hostile `kind`."""
    echoed = f"{pieces(ci)} {pieces(key)}"
    if kind == "echo_pieces":
        body = {"category": "common", "code": ci, "message": f"bad request: {echoed}"}
        return json_answer(body, headers, status=500)
    if kind in ("echo_fields", "bad_account", "many_accounts") and api == "register/search":
        return json_answer({"result": "member", "commonTermsExpireDate": echoed}, headers)
    if kind == "echo_fields":
        accounts = [
            {"comId": " 00002", "vtAccNo": number, "vtAccAlias": alias}
            for number, alias in zip(_numbers(ci, salt), (ci, key, echoed), strict=False)
        ]
        return json_answer({"vtAccList": accounts, "serviceTermsExpireDate": ci}, headers)
    if kind == "bad_account":
        return json_answer({"vtAccList": [{"comId": key, "vtAccNo": ci}]}, headers)
    if kind == "many_accounts":
        return json_answer({"vtAccList": [{"vtAccNo": "1"}] * 48_000}, headers)  # 720 KB
    if kind in ("gzip_bomb", "deflate_bomb"):
        encoding = kind.removesuffix("_bomb")
        return Answer(200, _bomb(encoding), (*headers, JSON, ("Content-Encoding", encoding)))
    if kind == "late_duplicate":
        return replace(truthful(api, ci, salt, headers), action=kind)
    return Answer(200, action=kind)


def _numbers(ci: str, salt: str) -> list[str]:
    """The customer's true account numbers, at least three (to carry three echoes)."""
    numbers = [number for _, number, _ in truth(ci, salt).accounts]
    return [*numbers, "160657695589800099", "160657695589800100", "160657695589800101"][:3]


@functools.cache
def _bomb(encoding: str) -> bytes:
    zeros = bytes(BOMB_BYTES)
    return gzip.compress(zeros, 9, mtime=0) if encoding == "gzip" else zlib.compress(zeros, 9)


def framing(kind: str) -> bytes:
    """The bytes of a framing attack that aiohttp's server would not write itself."""
    if kind == "conflicting_lengths":
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            b'Content-Length: 20\r\nContent-Length: 2\r\n\r\n{"result": "member"}'
        )
    return (  # huge_length
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b'Content-Length: 2147483648\r\n\r\n{"result": "member", "padding": "'
    )
