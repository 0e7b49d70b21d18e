"""What the emulated platform knows: each CI's true answer, and the shapes answers take.

Answers are a pure function of the CI (and a salt), so a test knows the truth in advance
(`truth()`). `Answer` is what the rules hand the server: status, headers and body, or an
action (reset, duplicate, endless headers, huge body) that only a connection can carry out.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

BASE_PATH = "/v1/common/member"
APIS = ("register/search", "consent/search")
Headers = tuple[tuple[str, str], ...]
JSON = ("Content-Type", "application/json")
HTML = ("Content-Type", "text/html")
TEXT = ("Content-Type", "text/plain; charset=utf-8")
_ALIASES = ("주식투자용", "펀드투자용", "연금저축", "", None, "null")
_SURNAMES = "김이박최정강조윤장임"


@dataclass(frozen=True, slots=True)
class Answer:
    """What to answer one request with; `action` names what the connection must do instead."""

    status: int
    body: bytes = b""
    headers: Headers = ()
    action: str | None = None  # None | reset | duplicate | endless_headers | huge_body
    delay: float = 0.0  # seconds to wait before answering
    size: int = 0  # bytes an endless_headers or huge_body answer writes at most


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


def check_envelope(payload: Any) -> tuple[str, str]:
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


def truthful(api: str, ci: str, salt: str, headers: Headers) -> Answer:
    """The platform's true answer for `ci` on `api`, with the fields later revisions add."""
    answer = truth(ci, salt)
    h = hashlib.sha256(ci.encode()).digest()
    if answer.membership == "not_found":
        return platform(500, "3007", "not found user", headers)
    if api == "register/search":
        body: dict[str, Any] = {"result": answer.membership}
        _maybe(body, "commonTermsExpireDate", f"2027{h[5] % 12 + 1:02d}15", h[6])
        body["someNewField"] = {"ignored": True}
        return json_answer(body, headers)
    if answer.consent_not_found:
        return platform(500, "4004", "CI Not Found", headers)
    entries = []
    for com_id, number, alias in answer.accounts:
        entry: dict[str, Any] = {"comId": com_id, "vtAccNo": number}
        if alias is not None or h[7] % 2:
            entry["vtAccAlias"] = alias
        entry["endpoint"] = "https://broker.example/api"
        entries.append(entry)
    body = {"vtAccList": entries}
    _maybe(body, "serviceTermsExpireDate", "20280101", h[8])
    return json_answer(body, headers)


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


def json_answer(body: Any, headers: Headers = (), status: int = 200) -> Answer:
    """A JSON answer by orjson: aiohttp's json.dumps took a tenth of the emulator's time."""
    return Answer(status, orjson.dumps(body), (*headers, JSON))


def gateway(status: int, message: str, headers: Headers = ()) -> Answer:
    """An error from the gateway (Kong) itself: `{"message": ...}`."""
    return json_answer({"message": message}, headers, status)


def platform(status: int, code: str, message: str, headers: Headers) -> Answer:
    """An error from the platform behind the gateway: `{"category", "code", "message"}`."""
    return json_answer({"category": "common", "code": code, "message": message}, headers, status)


def nginx_page(status: int, reason: str) -> bytes:
    """The error page nginx writes for `status`."""
    title = f"{status} {reason}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()
