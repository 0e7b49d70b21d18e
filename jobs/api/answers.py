"""Reading the API's own answers: its JSON and its platform's errors (pure).

The engine (batch/http/classify.py) reads what HTTP says on its own first: 429, redirects,
bodies that are not whole JSON, and any answer this module does not claim (it returns None).
Reasons never name the API: the row's error names it once.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import partial
from typing import Any

from batch import CredentialsRejected, ForeignAnswer, ItemRejected, UnexpectedAnswer, UsageError
from batch.http import JsonAnswer
from jobs.api.models import Api, ConsentAnswer, MembershipAnswer, VirtualAccount
from jobs.privacy import Redactor

# Platform codes that answer "this CI has no user here" rather than report an outage.
NO_USER_CODES = frozenset({"3007", "4004"})
_MISSING = (None, "", "null")
_KNOWN_RESULTS = frozenset({"member", "nonMember"})
# The page's shapes: vtAccNo String(18) of digits, comId String(5), vtAccAlias String(20).
_ACCOUNT_NUMBER = re.compile(r"[0-9]{18}")
_COMPANY = re.compile(r"[0-9A-Za-z]{1,5}")
ALIAS_LENGTH = 20
# Platform codes are a few digits ("3007", "4004"); anything else is not repeated.
_CODE = re.compile(r"[0-9]{1,6}")
# A person links a handful of virtual accounts, one per broker and purpose; an answer
# listing more than this is not a real one, and holding it would bound nothing.
MAX_ACCOUNTS = 100
_NO_SECRETS = Redactor(())
# Gateway messages we repeat to the operator; anything else is summarised, never echoed.
_GATEWAY_MESSAGES = frozenset(
    {
        "No API key found in request",
        "Invalid authentication credentials",
        "no Route matched with those values",
        "API rate limit exceeded",
    }
)


def interpret(
    api: Api, answer: JsonAnswer, redactor: Redactor = _NO_SECRETS
) -> MembershipAnswer | ConsentAnswer | None:
    """The typed answer, None for an answer that is not the API's, or raise what it means.

    Whatever the server wrote that reaches an output is either checked against the
    page's shape or passed through `redactor.outside` (no piece of a CI or the key).
    """
    payload = answer.payload
    if answer.status in (401, 403):
        message = _gateway_message(payload) or f"HTTP {answer.status}"
        raise CredentialsRejected(f"the API key was rejected ({message}); check KOSCOM_API_KEY")
    if answer.status == 404 and _gateway_message(payload):
        raise UsageError(f"the API has no route {api.value} at this --base-url (HTTP 404)")
    platform = _platform_error(payload, redactor)
    if platform is not None:
        code, message = platform
        if api is Api.CONSENT and code in NO_USER_CODES:
            return ConsentAnswer(accounts=(), platform_code=code)
        if api is Api.REGISTER and code in NO_USER_CODES:
            # No portal user for this CI: that is what "not a member" means.
            return MembershipAnswer(result="nonMember")
        raise ItemRejected(f"platform error {code} ({message})")
    if answer.status != 200:
        return None
    if api is Api.REGISTER:
        return parse_membership(payload, redactor)
    return parse_consent(payload, redactor)


def read_membership(
    answer: JsonAnswer, redactor: Redactor = _NO_SECRETS
) -> MembershipAnswer | None:
    """A register/search answer, None if not the API's, or raise the failure it means."""
    result = interpret(Api.REGISTER, answer, redactor)
    assert result is None or isinstance(result, MembershipAnswer)
    return result


def read_consent(answer: JsonAnswer, redactor: Redactor = _NO_SECRETS) -> ConsentAnswer | None:
    """A consent/search answer, None if not the API's, or raise the failure it means."""
    result = interpret(Api.CONSENT, answer, redactor)
    assert result is None or isinstance(result, ConsentAnswer)
    return result


def readers(
    redactor: Redactor,
) -> tuple[partial[MembershipAnswer | None], partial[ConsentAnswer | None]]:
    """Both readers, cleaning what they repeat with the run's redactor (it knows the key)."""
    return partial(read_membership, redactor=redactor), partial(read_consent, redactor=redactor)


def parse_membership(payload: Any, redactor: Redactor = _NO_SECRETS) -> MembershipAnswer:
    """A register/search answer; an unknown `result` is an error, never a guess."""
    if not isinstance(payload, dict):
        raise ForeignAnswer("answered with no JSON object")
    result = payload.get("result")
    if result is None and "result" not in payload:  # consent/search's shape, say
        raise ForeignAnswer("answered an unknown result 'nothing'")
    if result not in _KNOWN_RESULTS:
        shown = redactor.outside(result, 20) if result not in _MISSING else "nothing"
        raise UnexpectedAnswer(f"answered an unknown result {shown!r}")
    return MembershipAnswer(str(result), parse_date(payload.get("commonTermsExpireDate")))


def parse_consent(payload: Any, redactor: Redactor = _NO_SECRETS) -> ConsentAnswer:
    """A consent/search answer; comId is trimmed, an empty vtAccList means no accounts.

    An answer without the field at all is not "no accounts" but an answer we do not
    understand: the API documents vtAccList, or a platform error, and nothing else.
    An account whose number or company is not of the page's shape makes the whole
    answer unusable (the customer ends in `error` saying so): a row is never dropped,
    and a field that is not what the page says is never written as if it were.
    """
    if not isinstance(payload, dict):
        raise ForeignAnswer("answered with no JSON object")
    if "vtAccList" not in payload:  # register/search's shape, say
        raise ForeignAnswer("answered without vtAccList")
    entries = payload["vtAccList"]
    if entries in _MISSING:
        entries = []
    if not isinstance(entries, list):
        raise UnexpectedAnswer("answered a vtAccList that is not a list")
    if len(entries) > MAX_ACCOUNTS:
        raise UnexpectedAnswer(
            f"answered {len(entries)} accounts, more than any person holds "
            f"(at most {MAX_ACCOUNTS} are accepted)"
        )
    accounts = tuple(_account(entry, redactor) for entry in entries)
    return ConsentAnswer(accounts, parse_date(payload.get("serviceTermsExpireDate")))


def _account(entry: Any, redactor: Redactor) -> VirtualAccount:
    if not isinstance(entry, dict):
        raise UnexpectedAnswer("answered an account that is not an object")
    number = _text_or_none(entry.get("vtAccNo"))
    if number is None:
        raise UnexpectedAnswer("answered an account without vtAccNo")
    if not _ACCOUNT_NUMBER.fullmatch(number):
        raise UnexpectedAnswer("answered a vtAccNo that is not 18 digits")
    company = _text_or_none(entry.get("comId")) or ""
    if company and not _COMPANY.fullmatch(company):
        raise UnexpectedAnswer("answered a comId that is not 5 letters or digits")
    alias = _text_or_none(entry.get("vtAccAlias"))
    return VirtualAccount(
        com_id=company,
        vt_acc_no=number,
        vt_acc_alias=redactor.outside(alias, ALIAS_LENGTH) or None if alias else None,
    )


def parse_date(value: Any) -> dt.date | None:
    """YYYYMMDD as a date; missing or unreadable values are None (the field is informative)."""
    text = _text_or_none(value)
    if text is None or len(text) != 8 or not text.isdigit():
        return None
    try:
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if text in ("", "null") else text


def _gateway_message(payload: Any) -> str | None:
    if isinstance(payload, dict) and payload.get("message") in _GATEWAY_MESSAGES:
        return str(payload["message"])
    return None


def _platform_error(payload: Any, redactor: Redactor) -> tuple[str, str] | None:
    """The platform's code (of its documented shape) and message, safe to repeat in an output."""
    if isinstance(payload, dict) and "code" in payload and "category" in payload:
        code = str(payload["code"]).strip()
        shown = code if _CODE.fullmatch(code) else "of unknown shape"
        return shown, redactor.outside(payload.get("message") or "", 60)
    return None
